#include "l4lb/stats/histogram.h"

#include <thread>

#include "gtest/gtest.h"

namespace l4lb::stats {
namespace {

constexpr int64_t kBounds[] = {1000, 2000, 5000};

TEST(HistogramTest, EachObservationLandsInTheFirstBucketAtOrAboveIt) {
  Histogram h(kBounds);
  for (int64_t ns : {0, 1000, 1001, 2000, 4999, 5001, 1'000'000}) h.Observe(ns);
  HistogramTotals t;
  t.Add(h);
  // le=1000: 0, 1000; le=2000: 1001, 2000; le=5000: 4999; +Inf: 5001, 1e6.
  EXPECT_EQ(t.buckets, (std::vector<uint64_t>{2, 2, 1, 2}));
  EXPECT_EQ(t.count(), 7u);
  EXPECT_EQ(t.sum_ns, 0u + 1000 + 1001 + 2000 + 4999 + 5001 + 1'000'000);
}

TEST(HistogramTest, TotalsSumWorkersWhileTheyWrite) {
  Histogram a(kBounds);
  Histogram b(kBounds);
  std::thread wa([&] {
    for (int i = 0; i < 50000; ++i) a.Observe(1500);
  });
  std::thread wb([&] {
    for (int i = 0; i < 50000; ++i) b.Observe(9000);
  });
  uint64_t last = 0;
  for (int i = 0; i < 200; ++i) {
    HistogramTotals t;
    t.Add(a);
    t.Add(b);
    EXPECT_GE(t.count(), last);  // never backwards
    last = t.count();
  }
  wa.join();
  wb.join();
  HistogramTotals t;
  t.Add(a);
  t.Add(b);
  EXPECT_EQ(t.buckets, (std::vector<uint64_t>{0, 50000, 0, 50000}));
}

TEST(HistogramTest, ShippedBoundsAscendAndFit) {
  for (Bounds bounds : {ConnectBounds(), DurationBounds()}) {
    ASSERT_LE(bounds.size(), Histogram::kMaxBuckets);
    for (size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]);
  }
}

}  // namespace
}  // namespace l4lb::stats
