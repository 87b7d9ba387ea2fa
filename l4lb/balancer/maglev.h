#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace l4lb::balancer {

// MaglevTable maps a flow key to a backend (Maglev, NSDI 2016, 3.4). The same
// backends give the same table on every machine and run, whatever order they are
// listed in: instances agree.
//
// Thread safety: immutable after Build(); Pick() is safe from any thread, lock-free.
// A changed backend set means a new table, built off the data path and published
// in a BackendSnapshot. Memory: 4 bytes per slot (256 KiB by default).
class MaglevTable {
 public:
  struct Backend {
    std::string name;  // stable identity, e.g. "10.0.0.1:80"; seeds the permutation
    // Relative share of the table, 1..kMaxWeight: weight / (sum of weights) of
    // the slots, to about a slot (Build() says how), so to well within 1 % of
    // the table when it has 100 slots per backend or more.
    uint32_t weight = 1;
  };

  struct Options {
    // Prime, and above 100 x backends: a bigger table moves fewer keys on change.
    uint32_t table_size = 65537;
  };

  static constexpr uint32_t kMaxWeight = 10000;
  static constexpr uint32_t kMaxTableSize = 10'000'019;  // a prime; 40 MB of slots

  // InvalidArgument if table_size is not prime, below the backend count or above
  // kMaxTableSize, `backends` is empty, a weight is 0 or above kMaxWeight, or a
  // name repeats. Down backends are left out by the caller.
  static absl::StatusOr<MaglevTable> Build(absl::Span<const Backend> backends,
                                           const Options& options);

  // Index into the `backends` given to Build(). `key` must already be mixed
  // (balancer/flow_hash.h); Pick only reduces it modulo the table size.
  uint32_t Pick(uint64_t key) const { return slots_[key % slots_.size()]; }
  uint32_t size() const { return static_cast<uint32_t>(slots_.size()); }

 private:
  explicit MaglevTable(std::vector<uint32_t> slots) : slots_(std::move(slots)) {}

  std::vector<uint32_t> slots_;  // slot -> backend index
};

}  // namespace l4lb::balancer
