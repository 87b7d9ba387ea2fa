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

}  // namespace
}  // namespace l4lb::stats
