#pragma once

#include <unistd.h>

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::net {

// Fd owns one file descriptor and closes it on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A nonblocking TCP listening socket, TCP_NODELAY and SO_OOBINLINE set (which
// the sockets it accepts inherit). With `reuse_port` several sockets share the address and the
// kernel spreads connections over them (one per worker).
// Errors name the address: `listen 127.0.0.1:80: Address already in use`.
absl::StatusOr<Fd> OpenTcpListener(const SocketAddress& address, bool reuse_port, int backlog);

// A nonblocking TCP socket for a backend connection, TCP_NODELAY set (the relay
// forwards what arrives at once, so Nagle would only add latency) and
// SO_OOBINLINE (see SetOobInline).
absl::StatusOr<Fd> OpenTcpClientSocket(int family);

// A nonblocking UDP socket bound to `address` (SO_REUSEPORT as above: the kernel
// keeps each client address on one of the sockets, so a session lives on one
// worker), with a large receive buffer to ride out bursts.
absl::StatusOr<Fd> OpenUdpListener(const SocketAddress& address, bool reuse_port);

// A nonblocking UDP socket connected to `target`: the kernel delivers only the
// target's datagrams to it, and an ICMP port unreachable comes back as
// ECONNREFUSED on the next send or receive, with the ICMP itself in the socket's
// error queue (IP_RECVERR / IPV6_RECVERR: udp/refusal.h reads it). Out of fds or
// local ports (EMFILE, ENFILE, ENOBUFS, ENOMEM at socket; EAGAIN, EADDRNOTAVAIL,
// EADDRINUSE at connect, which binds a port from net.ipv4.ip_local_port_range) is
// ResourceExhausted: closing another socket of ours makes room.
absl::StatusOr<Fd> OpenUdpClientSocket(const SocketAddress& target);

// Gives up the local port of a UDP socket that OpenUdpClientSocket connected
// (connect AF_UNSPEC unbinds a port the kernel chose), at once, even while a
// request in flight still holds the socket open.
void ReleaseUdpPort(int fd);

// net.ipv4.ip_local_port_range: the ports the kernel binds a socket to when no
// port is asked for (every connected UDP session holds one). Shared by IPv6.
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  uint32_t size() const { return last >= first ? last - first + 1u : 0u; }
};
// "32768\t60999\n" -> {32768, 60999}; InvalidArgument names what is wrong.
absl::StatusOr<PortRange> ParsePortRange(absl::string_view text);
// Reads /proc/sys/net/ipv4/ip_local_port_range (of the caller's network
// namespace). File I/O: at start-up only, never on a worker.
absl::StatusOr<PortRange> LocalPortRange();

// What the kernel says the socket is bound to / connected to.
absl::StatusOr<SocketAddress> LocalAddress(int fd);
absl::StatusOr<SocketAddress> PeerAddress(int fd);

void SetNoDelay(int fd);
// SO_OOBINLINE: a TCP peer's urgent byte (MSG_OOB: telnet's Synch, FTP's ABOR) is
// read in stream order like any other, so the relay forwards it as a plain byte
// where it was sent. Out of line, recv() would skip it (lost) and splice() would
// stop at it for good (a stall, or an early EOF when the FIN is in too).
void SetOobInline(int fd);
// SO_LINGER {1, 0}: the next close() sends RST, so a reset on one side of a relayed
// connection reaches the other side as a reset, not as a clean FIN.
void SetResetOnClose(int fd);

}  // namespace l4lb::net
