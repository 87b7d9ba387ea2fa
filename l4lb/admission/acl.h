#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

#include "l4lb/admission/cidr.h"

namespace l4lb::admission {

// PrefixSet answers "is this address in any of these prefixes" in O(log n):
// the prefixes become disjoint, sorted 128-bit ranges, searched by binary
// search, so a deny list of 100,000 entries costs about 17 comparisons per
// accept (bench/acl_benchmark.cc), not a scan.
//
// Thread safety: immutable after construction; Contains() from any thread.
class PrefixSet {
 public:
  PrefixSet() = default;
  explicit PrefixSet(absl::Span<const Cidr> prefixes);

  // `ip`: net::SocketAddress::IpBytes16() (IPv4 mapped).
  bool Contains(const std::array<uint8_t, 16>& ip) const;
  bool empty() const { return ranges_.empty(); }
  // Disjoint ranges left after merging (for tests and the start-up log).
  size_t ranges() const { return ranges_.size(); }

 private:
  struct Range {
    unsigned __int128 first;
    unsigned __int128 last;
  };
  std::vector<Range> ranges_;  // sorted, disjoint, not adjacent
};

// Acl is a service's access list: deny wins; an empty allow list allows everyone.
class Acl {
 public:
  enum class Decision : uint8_t { kAllow, kDeny };

  Acl() = default;
  Acl(absl::Span<const Cidr> allow, absl::Span<const Cidr> deny) : allow_(allow), deny_(deny) {}

  Decision Decide(const std::array<uint8_t, 16>& ip) const {
    if (deny_.Contains(ip)) return Decision::kDeny;
    if (!allow_.empty() && !allow_.Contains(ip)) return Decision::kDeny;
    return Decision::kAllow;
  }
  // Nothing to check: every client is allowed without a lookup.
  bool allows_all() const { return allow_.empty() && deny_.empty(); }

 private:
  PrefixSet allow_;
  PrefixSet deny_;
};

}  // namespace l4lb::admission
