#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace l4lb::balancer {

// StableHash64 is MurmurHash64A (Appleby) over `bytes`: the same value on every
// machine, run and build, unlike absl::Hash (seeded per process). Flow keys and
// Maglev permutations use it so that every l4lb instance picks the same backend.
// Golden values are pinned in flow_hash_test.cc: changing them re-shuffles every
// client of every deployment.
uint64_t StableHash64(absl::Span<const uint8_t> bytes, uint64_t seed = 0);
uint64_t StableHash64(absl::string_view bytes, uint64_t seed = 0);

// Mix64 is the splitmix64 finalizer: spreads any 64-bit value (e.g. key + attempt)
// over all 64 bits.
constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace l4lb::balancer
