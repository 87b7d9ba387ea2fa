#include "l4lb/net/socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace l4lb::net {
namespace {

absl::Status Errno(absl::string_view what, const SocketAddress& address, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, " ", address.ToString(), ": ", strerror(err)));
}

// For a session socket: fds or local ports ran out (ResourceExhausted, which the
// caller answers by closing an old one), or something else (the errno's code).
absl::Status LocalShortage(absl::string_view what, const SocketAddress& address, int err) {
  const absl::Status status = Errno(what, address, err);
  switch (err) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EAGAIN:  // connect's autobind found no free port in the range
    case EADDRNOTAVAIL:
    case EADDRINUSE:
      return absl::ResourceExhaustedError(status.message());
    default:
      return status;
  }
}

absl::Status SetInt(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return absl::ErrnoToStatus(errno, "setsockopt");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Fd> OpenTcpListener(const SocketAddress& address, bool reuse_port, int backlog) {
  Fd fd(socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) return Errno("socket for", address, errno);
  // SO_REUSEADDR lets a restarted l4lb bind while old connections sit in TIME_WAIT.
  if (!SetInt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1).ok() ||
      (reuse_port && !SetInt(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1).ok())) {
    return Errno("setsockopt on", address, errno);
  }
  // Accepted sockets inherit both: no setsockopt per client.
  SetNoDelay(fd.get());
  SetOobInline(fd.get());
  if (bind(fd.get(), address.sockaddr_ptr(), address.sockaddr_len()) != 0) {
    return Errno("bind", address, errno);
  }
  if (listen(fd.get(), backlog) != 0) return Errno("listen", address, errno);
  return fd;
}

absl::StatusOr<Fd> OpenUdpListener(const SocketAddress& address, bool reuse_port) {
  Fd fd(socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!fd.valid()) return Errno("socket for", address, errno);
  if (!SetInt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1).ok() ||
      (reuse_port && !SetInt(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1).ok())) {
    return Errno("setsockopt on", address, errno);
  }
  // A wildcard address receives for every local address: ask the kernel which
  // one each datagram was sent to, so replies can leave from it (worker_udp.cc).
  if (address.is_wildcard() &&
      !(address.is_v4() ? SetInt(fd.get(), IPPROTO_IP, IP_PKTINFO, 1)
                        : SetInt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1))
           .ok()) {
    return Errno("setsockopt on", address, errno);
  }
  // 4 MiB: a burst of datagrams waits here while the worker is busy. FORCE goes
  // past net.core.rmem_max when we may (root); otherwise the plain one is capped.
  if (!SetInt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20).ok()) {
    (void)SetInt(fd.get(), SOL_SOCKET, SO_RCVBUF, 4 << 20);
  }
  if (bind(fd.get(), address.sockaddr_ptr(), address.sockaddr_len()) != 0) {
    return Errno("bind", address, errno);
  }
  return fd;
}

absl::StatusOr<Fd> OpenUdpClientSocket(const SocketAddress& target) {
  Fd fd(socket(target.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!fd.valid()) return LocalShortage("socket for", target, errno);
  // The ICMP behind an ECONNREFUSED, kept so a forged one can be told apart.
  if (!(target.is_v4() ? SetInt(fd.get(), IPPROTO_IP, IP_RECVERR, 1)
                       : SetInt(fd.get(), IPPROTO_IPV6, IPV6_RECVERR, 1))
           .ok()) {
    return Errno("setsockopt on a socket for", target, errno);
  }
  if (connect(fd.get(), target.sockaddr_ptr(), target.sockaddr_len()) != 0) {
    return LocalShortage("connect", target, errno);
  }
  return fd;
}

void ReleaseUdpPort(int fd) {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  (void)connect(fd, &unspec, sizeof(unspec));
}

absl::StatusOr<PortRange> ParsePortRange(absl::string_view text) {
  const std::vector<absl::string_view> fields =
      absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  uint32_t first = 0, last = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &first) ||
      !absl::SimpleAtoi(fields[1], &last) || first == 0 || last > 65535 || first > last) {
    return absl::InvalidArgumentError(
        absl::StrCat("ip_local_port_range \"", absl::CEscape(text), "\": want FIRST LAST"));
  }
  return PortRange{.first = static_cast<uint16_t>(first), .last = static_cast<uint16_t>(last)};
}

absl::StatusOr<PortRange> LocalPortRange() {
  constexpr char kPath[] = "/proc/sys/net/ipv4/ip_local_port_range";
  std::ifstream in(kPath);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return absl::ErrnoToStatus(errno, kPath);
  return ParsePortRange(text);
}

absl::StatusOr<Fd> OpenTcpClientSocket(int family) {
  Fd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket");
  SetNoDelay(fd.get());
  SetOobInline(fd.get());
  return fd;
}

absl::StatusOr<SocketAddress> LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return absl::ErrnoToStatus(errno, "getsockname");
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

absl::StatusOr<SocketAddress> PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return absl::ErrnoToStatus(errno, "getpeername");
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

void SetNoDelay(int fd) { (void)SetInt(fd, IPPROTO_TCP, TCP_NODELAY, 1); }

void SetOobInline(int fd) { (void)SetInt(fd, SOL_SOCKET, SO_OOBINLINE, 1); }

void SetResetOnClose(int fd) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

}  // namespace l4lb::net
