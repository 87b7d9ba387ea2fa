#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4lb::net {

// SocketAddress is an IPv4 or IPv6 address with a port, as the kernel wants it
// (sockaddr_storage). A value type: copy freely, any thread.
class SocketAddress {
 public:
  SocketAddress() = default;

  // "1.2.3.4:80" or "[::1]:80". Port 0 is allowed (the caller decides whether it
  // means "any"). Errors name the text: `"1.2.3.4:99999": port out of range`.
  static absl::StatusOr<SocketAddress> Parse(absl::string_view text);
  // From what accept()/getpeername() wrote.
  static SocketAddress FromSockaddr(const sockaddr* sa, socklen_t len);

  int family() const { return storage_.ss_family; }
  bool is_v4() const { return family() == AF_INET; }
  uint16_t port() const;
  void set_port(uint16_t port);

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t sockaddr_len() const { return is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6); }

  // The address as 16 bytes, IPv4 mapped into IPv6 (::ffff:a.b.c.d), so a client
  // hashes the same whether it reached a v4 or a dual-stack v6 listener.
  std::array<uint8_t, 16> IpBytes16() const;
  // 0.0.0.0 or [::]: bound, it receives for every local address of its family.
  bool is_wildcard() const;

  // "1.2.3.4:80" / "[::1]:80"; the form Parse() reads.
  std::string ToString() const;
  // The host alone: "1.2.3.4", "::1"; an IPv4-mapped IPv6 address as its IPv4
  // one (the host IpBytes16() names). What names a host whatever its port.
  std::string IpString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
};

// A listen address that may name a port range: "0.0.0.0:30000-30099" gives 100
// addresses, "[::]:21" one. At most kMaxPortRange ports; FIRST <= LAST; no port 0
// inside a range. Errors name the text like Parse() does.
inline constexpr int kMaxPortRange = 4096;
absl::StatusOr<std::vector<SocketAddress>> ParseListenAddress(absl::string_view text);

}  // namespace l4lb::net
