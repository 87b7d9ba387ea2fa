#include "l4lb/balancer/maglev.h"

#include <algorithm>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include "l4lb/balancer/flow_hash.h"

namespace l4lb::balancer {
namespace {

// Two independent hashes of the name give each backend its own permutation of
// the slots (offset, skip). Fixed seeds: part of the on-the-wire agreement
// between instances, like the golden values of flow_hash.
constexpr uint64_t kOffsetSeed = 0x6d61676c65763031ULL;  // "maglev01"
constexpr uint64_t kSkipSeed = 0x6d61676c65763032ULL;    // "maglev02"
constexpr uint32_t kEmpty = UINT32_MAX;

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<MaglevTable> MaglevTable::Build(absl::Span<const Backend> backends,
                                               const Options& options) {
  const uint32_t m = options.table_size;
  if (!IsPrime(m)) {
    return absl::InvalidArgumentError(absl::StrCat("maglev table size ", m, " is not prime"));
  }
  if (m > kMaxTableSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("maglev table size ", m, " is above the limit ", kMaxTableSize));
  }
  if (backends.empty()) return absl::InvalidArgumentError("maglev table with no backend");
  if (m < backends.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("maglev table size ", m, " is below the ", backends.size(), " backends"));
  }
  absl::flat_hash_set<std::string> names;
  for (const Backend& b : backends) {
    if (b.weight < 1 || b.weight > kMaxWeight) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend ", b.name, ": weight ", b.weight, " is not 1..", kMaxWeight));
    }
    if (!names.insert(b.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("backend ", b.name, " is listed twice"));
    }
  }

  // Fill in name order, not list order: the table depends only on the set.
  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].name < backends[b].name; });

  const size_t n = backends.size();
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; ++i) {
    offset[i] = StableHash64(backends[i].name, kOffsetSeed) % m;
    skip[i] = m == 1 ? 1 : StableHash64(backends[i].name, kSkipSeed) % (m - 1) + 1;
  }
  std::vector<uint32_t> slots(m, kEmpty);
  uint32_t filled = 0;
  // Each round, a backend claims `weight` slots, the next free ones of its own
  // permutation: shares follow weights, and a backend's slots stay where they are
  // when others come or go, apart from the slots that change hands.
  while (true) {
    for (const uint32_t i : order) {
      for (uint32_t w = 0; w < backends[i].weight; ++w) {
        uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
        while (slots[slot] != kEmpty) {
          ++next[i];
          slot = (offset[i] + next[i] * skip[i]) % m;
        }
        slots[slot] = i;
        ++next[i];
        if (++filled == m) return MaglevTable(std::move(slots));
      }
    }
  }
}

}  // namespace l4lb::balancer
