#include "l4lb/announce/vip.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "l4lb/net/socket.h"

namespace l4lb::announce {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
}

std::string IpText(const net::SocketAddress& address) {
  std::string text = address.ToString();  // "10.0.0.1:0", "[2001:db8::1]:0"
  text.resize(text.rfind(':'));
  if (!address.is_v4()) text = text.substr(1, text.size() - 2);
  return text;
}

// One request, one acknowledgement: RTM_NEWADDR / RTM_DELADDR with NLM_F_ACK;
// the kernel's answer is an NLMSG_ERROR whose error is 0 or -errno: that errno.
absl::StatusOr<int> AddressRequest(const Vip& vip, uint16_t type, uint16_t flags) {
  struct {
    nlmsghdr header;
    ifaddrmsg ifa;
    char attributes[64];
  } request{};
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  request.header.nlmsg_type = type;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  request.header.nlmsg_seq = 1;
  const bool v4 = vip.address.is_v4();
  request.ifa.ifa_family = v4 ? AF_INET : AF_INET6;
  request.ifa.ifa_prefixlen = static_cast<uint8_t>(vip.prefix_len);
  // Global, not host, scope: BIRD's direct protocol and FRR's zebra skip
  // host-scoped addresses (127.0.0.1 on lo), and the VIP is for the world.
  request.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  // An IPv6 VIP is usable at once: no duplicate address detection to wait for.
  request.ifa.ifa_flags = v4 ? 0 : IFA_F_NODAD;
  request.ifa.ifa_index = static_cast<uint32_t>(vip.ifindex);
  const std::array<uint8_t, 16> ip = vip.address.IpBytes16();
  const uint8_t* bytes = v4 ? ip.data() + 12 : ip.data();
  const size_t length = v4 ? 4 : 16;
  for (const uint16_t attribute : {IFA_LOCAL, IFA_ADDRESS}) {
    auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&request) +
                                          NLMSG_ALIGN(request.header.nlmsg_len));
    rta->rta_type = attribute;
    rta->rta_len = RTA_LENGTH(length);
    memcpy(RTA_DATA(rta), bytes, length);
    request.header.nlmsg_len = NLMSG_ALIGN(request.header.nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }

  net::Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "netlink socket");
  // A bounded wait: the kernel answers at once, but main must never hang here.
  const timeval timeout{.tv_sec = 2, .tv_usec = 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd.get(), &request, request.header.nlmsg_len, 0,
             reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return absl::ErrnoToStatus(errno, "netlink send");
  }
  alignas(nlmsghdr) char answer[4096];
  const ssize_t got = recv(fd.get(), answer, sizeof(answer), 0);
  if (got < 0) return absl::ErrnoToStatus(errno, "netlink receive");
  const auto* header = reinterpret_cast<const nlmsghdr*>(answer);
  if (!NLMSG_OK(header, static_cast<size_t>(got)) || header->nlmsg_type != NLMSG_ERROR) {
    return absl::InternalError("netlink: unexpected answer");
  }
  return -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(header))->error;
}

absl::Status Failed(absl::string_view verb, const Vip& vip, const absl::StatusOr<int>& error) {
  const absl::Status st = error.ok() ? absl::ErrnoToStatus(*error, "") : error.status();
  return absl::Status(st.code(), absl::StrCat(verb, " ", VipText(vip), ": ", st.message()));
}

}  // namespace

absl::StatusOr<Vip> ParseVip(absl::string_view text) {
  Vip vip;
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  const absl::string_view prefix = absl::StripAsciiWhitespace(parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view option = absl::StripAsciiWhitespace(parts[i]);
    if (!absl::ConsumePrefix(&option, "dev=") || option.empty() || option.size() >= IFNAMSIZ) {
      return Bad(text, absl::StrCat("want dev=INTERFACE after the prefix, got \"", parts[i], "\""));
    }
    vip.device = std::string(option);
  }
  const size_t slash = prefix.rfind('/');
  if (slash == absl::string_view::npos) {
    return Bad(text, "want ADDRESS/PREFIX, e.g. 192.0.2.10/32");
  }
  const absl::string_view ip = prefix.substr(0, slash);
  const bool v6 = absl::StrContains(ip, ':');
  absl::StatusOr<net::SocketAddress> address =
      net::SocketAddress::Parse(v6 ? absl::StrCat("[", ip, "]:0") : absl::StrCat(ip, ":0"));
  if (!address.ok()) return Bad(text, absl::StrCat("\"", ip, "\" is not an IP address"));
  vip.address = *address;
  const int max = vip.address.is_v4() ? 32 : 128;
  if (!absl::SimpleAtoi(prefix.substr(slash + 1), &vip.prefix_len) || vip.prefix_len < 0 ||
      vip.prefix_len > max) {
    return Bad(text, absl::StrCat("prefix length must be 0..", max));
  }
  vip.ifindex = static_cast<int>(if_nametoindex(vip.device.c_str()));
  if (vip.ifindex == 0) return Bad(text, absl::StrCat("dev=", vip.device, ": no such interface"));
  return vip;
}

std::string VipText(const Vip& vip) {
  return absl::StrCat(IpText(vip.address), "/", vip.prefix_len, " dev ", vip.device);
}

absl::Status AddVip(const Vip& vip) {
  const absl::StatusOr<int> error = AddressRequest(vip, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  if (error.ok() && (*error == 0 || *error == EEXIST)) return absl::OkStatus();
  return Failed("add", vip, error);
}

absl::Status RemoveVip(const Vip& vip) {
  const absl::StatusOr<int> error = AddressRequest(vip, RTM_DELADDR, 0);
  // EADDRNOTAVAIL: not there (someone else removed it, or it never was).
  if (error.ok() && (*error == 0 || *error == EADDRNOTAVAIL)) return absl::OkStatus();
  return Failed("remove", vip, error);
}

}  // namespace l4lb::announce
