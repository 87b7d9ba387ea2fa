#include "l4lb/stats/service_counters.h"

#include "gtest/gtest.h"

namespace l4lb::stats {
namespace {

TEST(ServiceCountersTest, SumAddsEachBackendAcrossWorkers) {
  ServiceCounters a(2);
  ServiceCounters b(2);
  a.accepted.Add(3);
  b.accepted.Add(4);
  a.refused_banned.Add();
  a.backends[0].connections.Add(2);
  b.backends[0].connections.Add(1);
  b.backends[1].bytes_up.Add(100);
  b.backends[1].bytes_down.Add(7);
  a.backends[1].connect_time.Observe(300'000);  // 300 µs
  b.backends[1].connect_time.Observe(300'000);
  const ServiceCounters* workers[] = {&a, &b};
  const ServiceTotals t = SumService(workers);
  EXPECT_EQ(t.accepted, 7u);
  EXPECT_EQ(t.refused_banned, 1u);
  ASSERT_EQ(t.backends.size(), 2u);
  EXPECT_EQ(t.backends[0].connections, 3u);
  EXPECT_EQ(t.backends[1].connections, 0u);
  EXPECT_EQ(t.backends[1].bytes_up, 100u);
  EXPECT_EQ(t.backends[1].bytes_down, 7u);
  EXPECT_EQ(t.backends[1].connect_time.count(), 2u);
  EXPECT_EQ(t.backends[0].connect_time.count(), 0u);
}

TEST(ServiceCountersTest, TotalsOfTwoConfigsAdd) {
  ServiceCounters a(1);
  ServiceCounters b(1);
  a.accepted.Add(3);
  b.accepted.Add(4);
  b.no_backend.Add();
  a.duration.Observe(1'000'000);
  a.backends[0].bytes_up.Add(10);
  b.backends[0].bytes_up.Add(5);
  b.backends[0].connect_time.Observe(300'000);
  const ServiceCounters* first[] = {&a};
  const ServiceCounters* second[] = {&b};
  ServiceTotals t = SumService(first);
  const ServiceTotals u = SumService(second);
  t.AddServiceOnly(u);
  EXPECT_EQ(t.accepted, 7u);
  EXPECT_EQ(t.no_backend, 1u);
  EXPECT_EQ(t.duration.count(), 1u);
  EXPECT_EQ(t.backends[0].bytes_up, 10u) << "backends are added by name, not here";
  t.backends[0].Add(u.backends[0]);
  EXPECT_EQ(t.backends[0].bytes_up, 15u);
  EXPECT_EQ(t.backends[0].connect_time.count(), 1u);
  ServiceTotals empty;
  empty.AddServiceOnly(t);
  EXPECT_EQ(empty.duration.count(), 1u);
}

}  // namespace
}  // namespace l4lb::stats
