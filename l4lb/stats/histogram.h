#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

#include "l4lb/stats/counter.h"

namespace l4lb::stats {

// Upper bounds (nanoseconds, ascending) of a histogram's buckets; one more
// bucket, +Inf, is implied. Prometheus' `le` labels are these in seconds.
using Bounds = absl::Span<const int64_t>;

// Backend connect time: 100 µs (loopback, a LAN) .. 2.5 s (past the default
// 2 s connect timeout, which ends every attempt).
Bounds ConnectBounds();
// Relayed connection lifetime: 1 ms (one request) .. 1 h (a long download).
Bounds DurationBounds();

// Histogram is one worker's: written by that worker alone (stats::Counter: a
// relaxed load + store per Observe, no lock, no locked add), read by any thread,
// which sums the workers' (HistogramTotals::Add). Buckets are not cumulative
// here; rendering makes them so. Observe is a scan of at most kMaxBuckets
// bounds, done once per connect or close, never per byte.
class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 15;  // bounds; +Inf comes on top

  explicit Histogram(Bounds bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(int64_t ns) {
    size_t i = 0;
    while (i < bounds_.size() && ns > bounds_[i]) ++i;
    buckets_[i].Add();
    sum_ns_.Add(static_cast<uint64_t>(ns < 0 ? 0 : ns));
  }
  Bounds bounds() const { return bounds_; }

 private:
  friend struct HistogramTotals;
  Bounds bounds_;
  Counter buckets_[kMaxBuckets + 1];  // the last one: above every bound (+Inf)
  Counter sum_ns_;
};

// Histograms of several workers (same bounds) summed, for a scrape.
struct HistogramTotals {
  Bounds bounds;
  std::vector<uint64_t> buckets;  // bounds.size() + 1, not cumulative
  uint64_t sum_ns = 0;

  void Add(const Histogram& h);
  void Add(const HistogramTotals& other);  // same bounds, or either empty
  uint64_t count() const;
};

}  // namespace l4lb::stats
