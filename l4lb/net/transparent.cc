#include "l4lb/net/transparent.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

#include "l4lb/net/socket.h"
#include "l4lb/net/source.h"

namespace l4lb::net {
namespace {

absl::Status SetTransparent(int fd, int family) {
  const int one = 1;
  const bool v4 = family == AF_INET;
  if (setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one,
                 sizeof(one)) == 0) {
    return absl::OkStatus();
  }
  const int err = errno;
  const char* option = v4 ? "IP_TRANSPARENT" : "IPV6_TRANSPARENT";
  if (err == EPERM) {
    return absl::PermissionDeniedError(absl::StrCat(
        "needs CAP_NET_ADMIN (or CAP_NET_RAW) to set ", option,
        "; run l4lb with that capability (systemd: AmbientCapabilities=CAP_NET_ADMIN)"));
  }
  return absl::ErrnoToStatus(err, absl::StrCat("setsockopt ", option));
}

}  // namespace

absl::StatusOr<SocketAddress> TransparentSource(const SocketAddress& client, int backend_family) {
  SocketAddress source = client;
  source.set_port(0);
  const std::array<uint8_t, 16> bytes = client.IpBytes16();
  const bool mapped = client.family() == AF_INET6 &&
                      IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(bytes.data()));
  if (mapped && backend_family == AF_INET) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    memcpy(&v4.sin_addr, &bytes[12], 4);
    source = SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4));
  }
  if (source.family() != backend_family || (mapped && backend_family == AF_INET6)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "client ", client.ToString(), " is ", client.is_v4() || mapped ? "IPv4" : "IPv6",
        ", the backend ", backend_family == AF_INET ? "IPv4" : "IPv6",
        ": the client's address cannot be the source"));
  }
  return source;
}

absl::Status BindTransparent(int fd, const SocketAddress& source) {
  if (absl::Status st = SetTransparent(fd, source.family()); !st.ok()) return st;
  return BindSource(fd, source);
}

absl::Status CheckTransparent(int family) {
  absl::StatusOr<Fd> fd = OpenTcpClientSocket(family);
  if (!fd.ok()) return fd.status();
  return SetTransparent(fd->get(), family);
}

}  // namespace l4lb::net
