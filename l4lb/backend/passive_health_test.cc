#include "l4lb/backend/passive_health.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::backend {
namespace {

TEST(PassiveHealthTest, OneClientCountsOncePerWindow) {
  PassiveHealth passive(2);
  for (int i = 0; i < 1000; ++i) passive.Report(0, /*client_key=*/42);
  const PassiveHealth::Taken taken = passive.Take(0);
  EXPECT_EQ(taken.failures, 1u);
  EXPECT_EQ(taken.reports, 1000u);
  passive.Report(0, 42);
  EXPECT_EQ(passive.Take(0).failures, 0u) << "same window: already counted";
  passive.NewWindow(0);
  passive.Report(0, 42);
  EXPECT_EQ(passive.Take(0).failures, 1u) << "a new window counts it again";
  EXPECT_EQ(passive.Take(1).reports, 0u) << "other backends untouched";
}

TEST(PassiveHealthTest, DistinctClientsCountUpToTheBound) {
  PassiveHealth passive(1);
  for (uint64_t c = 0; c < 10'000; ++c) passive.Report(0, c);
  const PassiveHealth::Taken taken = passive.Take(0);
  EXPECT_EQ(taken.failures, PassiveHealth::kMaxClients);
  EXPECT_EQ(taken.reports, 10'000u);
}

TEST(PassiveHealthTest, OutOfRangeBackendIsIgnored) {
  PassiveHealth passive(1);
  passive.Report(5, 1);
  EXPECT_EQ(passive.Take(5).reports, 0u);
  EXPECT_EQ(passive.Take(0).reports, 0u);
}

TEST(PassiveHealthTest, ReportsFromManyThreadsAreAllSeen) {
  PassiveHealth passive(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&passive, t] {
      for (int i = 0; i < 1000; ++i) passive.Report(0, static_cast<uint64_t>(t));
    });
  }
  for (std::thread& t : threads) t.join();
  const PassiveHealth::Taken taken = passive.Take(0);
  EXPECT_EQ(taken.failures, 4u);
  EXPECT_EQ(taken.reports, 4000u);
}

}  // namespace
}  // namespace l4lb::backend
