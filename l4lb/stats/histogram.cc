#include "l4lb/stats/histogram.h"

#include "glog/logging.h"

namespace l4lb::stats {
namespace {

constexpr int64_t kUs = 1'000;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

constexpr int64_t kConnect[] = {100 * kUs, 250 * kUs, 500 * kUs, 1 * kMs,   2500 * kUs,
                                5 * kMs,   10 * kMs,  25 * kMs,  50 * kMs,  100 * kMs,
                                250 * kMs, 500 * kMs, 1 * kS,    2500 * kMs};
constexpr int64_t kDuration[] = {1 * kMs, 10 * kMs, 100 * kMs, 1 * kS,    10 * kS,
                                 60 * kS, 300 * kS, 1800 * kS, 3600 * kS};

}  // namespace

Bounds ConnectBounds() { return kConnect; }
Bounds DurationBounds() { return kDuration; }

Histogram::Histogram(Bounds bounds) : bounds_(bounds) {
  CHECK_LE(bounds.size(), kMaxBuckets) << "histogram bounds";
}

void HistogramTotals::Add(const Histogram& h) {
  if (buckets.empty()) {
    bounds = h.bounds_;
    buckets.assign(bounds.size() + 1, 0);
  }
  DCHECK_EQ(bounds.size(), h.bounds_.size());
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += h.buckets_[i].Get();
  sum_ns += h.sum_ns_.Get();
}

void HistogramTotals::Add(const HistogramTotals& other) {
  if (other.buckets.empty()) return;
  if (buckets.empty()) {
    *this = other;
    return;
  }
  DCHECK_EQ(buckets.size(), other.buckets.size());
  for (size_t i = 0; i < buckets.size() && i < other.buckets.size(); ++i) {
    buckets[i] += other.buckets[i];
  }
  sum_ns += other.sum_ns;
}

uint64_t HistogramTotals::count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

}  // namespace l4lb::stats
