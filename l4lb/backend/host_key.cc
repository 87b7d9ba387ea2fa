#include "l4lb/backend/host_key.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/container/flat_hash_map.h"

namespace l4lb::backend {
namespace {

std::string HostText(const net::SocketAddress& address) {
  const std::array<uint8_t, 16> ip = address.IpBytes16();
  char buf[INET6_ADDRSTRLEN] = {};
  // IpBytes16 maps IPv4 into ::ffff:0:0/96: a v4 backend and the same host
  // written as v4-mapped v6 are one host.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(ip.begin(), ip.begin() + 12, kMapped)) {
    inet_ntop(AF_INET, ip.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  }
  return buf;
}

}  // namespace

std::vector<std::string> HostKeys(absl::Span<const BackendSpec> backends) {
  std::vector<std::string> keys;
  keys.reserve(backends.size());
  absl::flat_hash_map<std::string, int> count;
  for (const BackendSpec& b : backends) {
    keys.push_back(HostText(b.address));
    ++count[keys.back()];
  }
  for (size_t i = 0; i < backends.size(); ++i) {
    if (count[keys[i]] > 1) keys[i] = backends[i].name;
  }
  return keys;
}

}  // namespace l4lb::backend
