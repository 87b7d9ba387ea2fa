#include "l4lb/stats/counters.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::stats {
namespace {

TEST(CountersTest, SumAddsEveryWorkersCounters) {
  WorkerCounters a;
  WorkerCounters b;
  a.accepted.Add(3);
  b.accepted.Add(4);
  a.active.Add(2);
  a.active.Sub();
  b.bytes_up.Add(1 << 20);
  const WorkerCounters* workers[] = {&a, &b};
  const Totals t = Sum(workers);
  EXPECT_EQ(t.accepted, 7u);
  EXPECT_EQ(t.active, 1u);
  EXPECT_EQ(t.bytes_up, 1u << 20);
  EXPECT_NE(t.ToString().find("accepted=7 active=1"), std::string::npos) << t.ToString();
}

TEST(CountersTest, OneWriterPerCounterLosesNothingWhileOthersRead) {
  std::vector<WorkerCounters> workers(2);
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&w] {
      for (int i = 0; i < 100000; ++i) w.accepted.Add();
    });
  }
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    const WorkerCounters* p[] = {&workers[0], &workers[1]};
    const uint64_t now = Sum(p).accepted;
    EXPECT_GE(now, last);  // a reader never sees a counter go backwards
    last = now;
  }
  for (auto& t : threads) t.join();
  const WorkerCounters* p[] = {&workers[0], &workers[1]};
  EXPECT_EQ(Sum(p).accepted, 200000u);
}

TEST(CountersTest, TotalsAddFieldByField) {
  WorkerCounters a, b;
  a.accepted.Add(2);
  b.accepted.Add(3);
  b.access_log_dropped.Add(7);  // the last field
  a.bytes_down.Add(11);
  const WorkerCounters* first[] = {&a};
  const WorkerCounters* second[] = {&b};
  Totals t = Sum(first);
  t.Add(Sum(second));
  EXPECT_EQ(t.accepted, 5u);
  EXPECT_EQ(t.access_log_dropped, 7u);
  EXPECT_EQ(t.bytes_down, 11u);
}

}  // namespace
}  // namespace l4lb::stats
