#include "l4lb/backend/host_key.h"

#include "absl/container/flat_hash_map.h"

namespace l4lb::backend {

std::vector<std::string> HostKeys(absl::Span<const BackendSpec> backends) {
  std::vector<std::string> keys;
  keys.reserve(backends.size());
  absl::flat_hash_map<std::string, int> count;
  for (const BackendSpec& b : backends) {
    keys.push_back(b.address.IpString());
    ++count[keys.back()];
  }
  for (size_t i = 0; i < backends.size(); ++i) {
    if (count[keys[i]] > 1) keys[i] = backends[i].name;
  }
  return keys;
}

}  // namespace l4lb::backend
