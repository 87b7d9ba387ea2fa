#include "l4lb/balancer/flow_hash.h"

#include <string.h>

namespace l4lb::balancer {

uint64_t StableHash64(absl::Span<const uint8_t> bytes, uint64_t seed) {
  constexpr uint64_t kMul = 0xc6a4a7935bd1e995ULL;
  constexpr int kShift = 47;
  const uint8_t* data = bytes.data();
  const size_t len = bytes.size();
  uint64_t h = seed ^ (len * kMul);
  const size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; ++i) {
    uint64_t k;
    memcpy(&k, data + i * 8, 8);  // unaligned-safe; little-endian hosts only (x86-64, arm64)
    k *= kMul;
    k ^= k >> kShift;
    k *= kMul;
    h ^= k;
    h *= kMul;
  }
  const uint8_t* tail = data + blocks * 8;
  switch (len & 7) {
    case 7:
      h ^= uint64_t{tail[6]} << 48;
      [[fallthrough]];
    case 6:
      h ^= uint64_t{tail[5]} << 40;
      [[fallthrough]];
    case 5:
      h ^= uint64_t{tail[4]} << 32;
      [[fallthrough]];
    case 4:
      h ^= uint64_t{tail[3]} << 24;
      [[fallthrough]];
    case 3:
      h ^= uint64_t{tail[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint64_t{tail[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint64_t{tail[0]};
      h *= kMul;
  }
  h ^= h >> kShift;
  h *= kMul;
  h ^= h >> kShift;
  return h;
}

uint64_t StableHash64(absl::string_view bytes, uint64_t seed) {
  return StableHash64(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), seed);
}

}  // namespace l4lb::balancer
