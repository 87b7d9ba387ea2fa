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
#include "absl/types/span.h"

#include "l4lb/net/socket.h"

namespace l4lb::announce {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
}

// One rtnetlink request (header, one fixed struct, attributes) and its
// acknowledgement: with NLM_F_ACK the kernel answers an NLMSG_ERROR whose error
// is 0 or -errno. Send() returns that errno.
class Request {
 public:
  Request(uint16_t type, uint16_t flags) {
    header()->nlmsg_type = type;
    header()->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header()->nlmsg_seq = 1;
  }

  // The fixed part after the header (ifaddrmsg, rtmsg): call once, first.
  template <typename T>
  T* Body() {
    header()->nlmsg_len = NLMSG_LENGTH(sizeof(T));
    return reinterpret_cast<T*>(NLMSG_DATA(header()));
  }

  void Attribute(uint16_t type, const void* data, size_t length) {
    auto* rta = reinterpret_cast<rtattr*>(buffer_ + NLMSG_ALIGN(header()->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = RTA_LENGTH(length);
    memcpy(RTA_DATA(rta), data, length);
    header()->nlmsg_len = NLMSG_ALIGN(header()->nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }

  absl::StatusOr<int> Send() {
    net::Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, "netlink socket");
    // A bounded wait: the kernel answers at once, but main must never hang here.
    const timeval timeout{.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd.get(), buffer_, header()->nlmsg_len, 0,
               reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel)) < 0) {
      return absl::ErrnoToStatus(errno, "netlink send");
    }
    alignas(nlmsghdr) char answer[4096];
    const ssize_t got = recv(fd.get(), answer, sizeof(answer), 0);
    if (got < 0) return absl::ErrnoToStatus(errno, "netlink receive");
    const auto* reply = reinterpret_cast<const nlmsghdr*>(answer);
    if (!NLMSG_OK(reply, static_cast<size_t>(got)) || reply->nlmsg_type != NLMSG_ERROR) {
      return absl::InternalError("netlink: unexpected answer");
    }
    return -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(reply))->error;
  }

 private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_); }

  alignas(nlmsghdr) char buffer_[256] = {};
};

// The VIP's bytes as an attribute wants them: 4 for IPv4, 16 for IPv6.
absl::Span<const uint8_t> IpBytes(const Vip& vip, std::array<uint8_t, 16>* storage) {
  *storage = vip.address.IpBytes16();
  return vip.address.is_v4() ? absl::MakeConstSpan(storage->data() + 12, 4)
                             : absl::MakeConstSpan(storage->data(), 16);
}

absl::StatusOr<int> AddressRequest(const Vip& vip, uint16_t type, uint16_t flags) {
  Request request(type, flags);
  auto* ifa = request.Body<ifaddrmsg>();
  const bool v4 = vip.address.is_v4();
  ifa->ifa_family = v4 ? AF_INET : AF_INET6;
  ifa->ifa_prefixlen = static_cast<uint8_t>(vip.prefix_len);
  // Global, not host, scope: the VIP is for the world (127.0.0.1 on lo is host).
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  // An IPv6 VIP is usable at once: no duplicate address detection to wait for.
  ifa->ifa_flags = v4 ? 0 : IFA_F_NODAD;
  ifa->ifa_index = static_cast<uint32_t>(vip.ifindex);
  std::array<uint8_t, 16> storage;
  const absl::Span<const uint8_t> ip = IpBytes(vip, &storage);
  request.Attribute(IFA_LOCAL, ip.data(), ip.size());
  request.Attribute(IFA_ADDRESS, ip.data(), ip.size());
  return request.Send();
}

// VIP/PREFIX dev DEVICE in the announce table, proto static: what `ip route
// add 192.0.2.10/32 dev lo table 200` makes. No rule looks that table up, so
// it routes nothing; it is there for the daemon to see.
absl::StatusOr<int> RouteRequest(const Vip& vip, uint16_t type, uint16_t flags) {
  Request request(type, flags);
  auto* rt = request.Body<rtmsg>();
  rt->rtm_family = vip.address.is_v4() ? AF_INET : AF_INET6;
  rt->rtm_dst_len = static_cast<uint8_t>(vip.prefix_len);
  rt->rtm_table = RT_TABLE_UNSPEC;   // RTA_TABLE says which: tables above 255 too
  rt->rtm_protocol = RTPROT_STATIC;  // not the kernel's own: BIRD's `learn` takes it
  rt->rtm_scope = RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  std::array<uint8_t, 16> storage;
  const absl::Span<const uint8_t> ip = IpBytes(vip, &storage);
  request.Attribute(RTA_DST, ip.data(), ip.size());
  const uint32_t oif = static_cast<uint32_t>(vip.ifindex);
  request.Attribute(RTA_OIF, &oif, sizeof(oif));
  const uint32_t table = vip.table;
  request.Attribute(RTA_TABLE, &table, sizeof(table));
  return request.Send();
}

absl::Status Failed(absl::string_view verb, const Vip& vip, const absl::StatusOr<int>& error) {
  const absl::Status st = error.ok() ? absl::ErrnoToStatus(*error, "") : error.status();
  const std::string why = error.ok() ? strerror(*error) : std::string(st.message());
  return absl::Status(st.code(), absl::StrCat(verb, " ", VipText(vip), ": ", why));
}

}  // namespace

absl::StatusOr<Vip> ParseVip(absl::string_view text) {
  Vip vip;
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  const absl::string_view prefix = absl::StripAsciiWhitespace(parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view option = absl::StripAsciiWhitespace(parts[i]);
    if (absl::ConsumePrefix(&option, "table=")) {
      // 0 is "unspecified", 253-255 are the kernel's default, main and local.
      if (!absl::SimpleAtoi(option, &vip.table) || vip.table == 0 ||
          (vip.table >= 253 && vip.table <= 255)) {
        return Bad(text, absl::StrCat("table=", option,
                                      ": want a table number other than 0 "
                                      "and the kernel's 253-255"));
      }
      continue;
    }
    if (!absl::ConsumePrefix(&option, "dev=") || option.empty() || option.size() >= IFNAMSIZ) {
      return Bad(text, absl::StrCat("want dev=INTERFACE or table=N after the prefix, got \"",
                                    parts[i], "\""));
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
  return absl::StrCat(vip.address.IpString(), "/", vip.prefix_len, " dev ", vip.device);
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

absl::Status AddRoute(const Vip& vip) {
  const absl::StatusOr<int> error = RouteRequest(vip, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  if (error.ok() && (*error == 0 || *error == EEXIST)) return absl::OkStatus();
  return Failed(absl::StrCat("route add table ", vip.table), vip, error);
}

absl::Status RemoveRoute(const Vip& vip) {
  const absl::StatusOr<int> error = RouteRequest(vip, RTM_DELROUTE, 0);
  // ESRCH: no such route.
  if (error.ok() && (*error == 0 || *error == ESRCH)) return absl::OkStatus();
  return Failed(absl::StrCat("route del table ", vip.table), vip, error);
}

}  // namespace l4lb::announce
