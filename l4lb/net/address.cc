#include "l4lb/net/address.h"

#include <arpa/inet.h>
#include <string.h>

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace l4lb::net {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
}

}  // namespace

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view text) {
  absl::string_view host;
  absl::string_view port_text;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return Bad(text, "missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return Bad(text, "expected ':PORT' after ']'");
    }
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return Bad(text, "expected ADDRESS:PORT");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return Bad(text, "IPv6 addresses need brackets, e.g. [::1]:80");
    }
  }
  if (host.empty()) return Bad(text, "missing address");
  if (port_text.empty()) return Bad(text, "missing port");
  uint32_t port = 0;
  if (port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port_text, &port)) {
    return Bad(text, "port is not a number");
  }
  if (port > 65535) return Bad(text, "port out of range");

  SocketAddress out;
  const std::string host_str(host);
  if (v6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    if (inet_pton(AF_INET6, host_str.c_str(), &sin6->sin6_addr) != 1) {
      return Bad(text, "not an IPv6 address");
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage_);
    if (inet_pton(AF_INET, host_str.c_str(), &sin->sin_addr) != 1) {
      return Bad(text, "not an IPv4 address (hostnames are not resolved)");
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
  }
  return out;
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  memcpy(&out.storage_, sa, std::min<size_t>(len, sizeof(out.storage_)));
  return out;
}

uint16_t SocketAddress::port() const {
  if (is_v4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
}

void SocketAddress::set_port(uint16_t port) {
  if (is_v4()) {
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  }
}

bool SocketAddress::is_wildcard() const {
  if (is_v4()) return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == 0;
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
}

std::array<uint8_t, 16> SocketAddress::IpBytes16() const {
  std::array<uint8_t, 16> out{};
  if (is_v4()) {
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(&out[12], &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, 4);
  } else {
    memcpy(out.data(), &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, 16);
  }
  return out;
}

std::string SocketAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
              sizeof(buf));
    return absl::StrCat(buf, ":", port());
  }
  if (family() != AF_INET6) return "(none)";
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
            sizeof(buf));
  return absl::StrCat("[", buf, "]:", port());
}

std::string SocketAddress::IpString() const {
  const std::array<uint8_t, 16> ip = IpBytes16();
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::equal(ip.begin(), ip.begin() + 12, kMapped)) {
    inet_ntop(AF_INET, ip.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  }
  return buf;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.family() == b.family() && a.port() == b.port() && a.IpBytes16() == b.IpBytes16();
}

absl::StatusOr<std::vector<SocketAddress>> ParseListenAddress(absl::string_view text) {
  const size_t colon = text.rfind(':');
  const size_t dash = text.rfind('-');
  if (colon == absl::string_view::npos || dash == absl::string_view::npos || dash < colon) {
    absl::StatusOr<SocketAddress> one = SocketAddress::Parse(text);
    if (!one.ok()) return one.status();
    return std::vector<SocketAddress>{*one};
  }
  // ADDRESS:FIRST-LAST: parse ADDRESS:FIRST, then LAST.
  absl::StatusOr<SocketAddress> first = SocketAddress::Parse(text.substr(0, dash));
  if (!first.ok()) return first.status();
  uint32_t last = 0;
  const absl::string_view last_text = text.substr(dash + 1);
  if (last_text.empty() || last_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(last_text, &last) || last > 65535) {
    return Bad(text, "port range end is not a port");
  }
  if (first->port() == 0 || last < first->port()) {
    return Bad(text, "want a port range FIRST-LAST with 0 < FIRST <= LAST");
  }
  if (last - first->port() + 1 > static_cast<uint32_t>(kMaxPortRange)) {
    return Bad(text, absl::StrCat("port range over ", kMaxPortRange, " ports"));
  }
  std::vector<SocketAddress> out;
  for (uint32_t port = first->port(); port <= last; ++port) {
    SocketAddress a = *first;
    a.set_port(static_cast<uint16_t>(port));
    out.push_back(a);
  }
  return out;
}

}  // namespace l4lb::net
