#include "l4lb/admission/acl.h"

#include <algorithm>

namespace l4lb::admission {
namespace {

unsigned __int128 ToU128(const std::array<uint8_t, 16>& bytes) {
  unsigned __int128 v = 0;
  for (uint8_t b : bytes) v = v << 8 | b;
  return v;
}

}  // namespace

PrefixSet::PrefixSet(absl::Span<const Cidr> prefixes) {
  ranges_.reserve(prefixes.size());
  for (const Cidr& c : prefixes) {
    const unsigned __int128 first = ToU128(c.address);
    const unsigned __int128 host_mask =
        c.length == 0 ? ~static_cast<unsigned __int128>(0)
                      : (static_cast<unsigned __int128>(1) << (128 - c.length)) - 1;
    ranges_.push_back({first, first | host_mask});
  }
  std::sort(ranges_.begin(), ranges_.end(),
            [](const Range& a, const Range& b) { return a.first < b.first; });
  // Merge overlapping and adjacent ranges: the search then needs one candidate.
  size_t out = 0;
  for (size_t i = 0; i < ranges_.size(); ++i) {
    if (out > 0 && (ranges_[out - 1].last == ~static_cast<unsigned __int128>(0) ||
                    ranges_[i].first <= ranges_[out - 1].last + 1)) {
      ranges_[out - 1].last = std::max(ranges_[out - 1].last, ranges_[i].last);
    } else {
      ranges_[out++] = ranges_[i];
    }
  }
  ranges_.resize(out);
  ranges_.shrink_to_fit();
}

bool PrefixSet::Contains(const std::array<uint8_t, 16>& ip) const {
  const unsigned __int128 v = ToU128(ip);
  // The last range starting at or before v is the only one that can hold it.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v,
                             [](unsigned __int128 x, const Range& r) { return x < r.first; });
  if (it == ranges_.begin()) return false;
  return v <= std::prev(it)->last;
}

}  // namespace l4lb::admission
