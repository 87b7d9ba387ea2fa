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
  // Who claims the next slot: the backend whose next claim is due first, claim
  // k of a backend of weight w being due at (k - 1/2) / w (Webster's method of
  // apportionment: unbiased between heavy and light weights; ties in name order,
  // so equal weights take turns as in the paper). Each backend's share of the
  // table is then its share of the weights to about a slot, whatever the
  // weights. (Rounds of `weight` claims each stopped wherever the table filled
  // up: three weights of 10000 in 65537 slots came out 39/30.5/30.5 %, and past
  // 6 such backends the others got no slot at all.) The first claim of every
  // backend is due at once: a listed backend owed less than half a slot still
  // gets one. A backend keeps claiming the next free slot of its own
  // permutation: its slots stay where they are when others come or go, apart
  // from the slots that change hands.
  std::vector<uint64_t> claimed(n, 0);
  std::vector<uint32_t> rank(n);  // position in name order, for ties
  for (uint32_t r = 0; r < n; ++r) rank[order[r]] = r;
  // Due times scaled by 2: 0 for the first claim, 2k - 1 over the weight after.
  // claimed <= 10^7 and weights <= 10^4: the cross products fit in 64 bits.
  const auto due_times_weight = [&](uint32_t i, uint32_t other) {
    return (claimed[i] == 0 ? 0 : 2 * claimed[i] + 1) * backends[other].weight;
  };
  // Heap order: `a` after `b` when a is due later.
  const auto later = [&](uint32_t a, uint32_t b) {
    const uint64_t due_a = due_times_weight(a, b);
    const uint64_t due_b = due_times_weight(b, a);
    return due_a != due_b ? due_a > due_b : rank[a] > rank[b];
  };
  std::vector<uint32_t> due = order;
  std::make_heap(due.begin(), due.end(), later);
  for (uint32_t filled = 0; filled < m; ++filled) {
    std::pop_heap(due.begin(), due.end(), later);
    const uint32_t i = due.back();
    uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
    while (slots[slot] != kEmpty) {
      ++next[i];
      slot = (offset[i] + next[i] * skip[i]) % m;
    }
    slots[slot] = i;
    ++next[i];
    ++claimed[i];
    std::push_heap(due.begin(), due.end(), later);
  }
  return MaglevTable(std::move(slots));
}

}  // namespace l4lb::balancer
