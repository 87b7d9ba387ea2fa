#include "l4lb/relay/throttle.h"

#include "gtest/gtest.h"

namespace l4lb::relay {
namespace {

constexpr int64_t kMs = 1'000'000;

Connection* Relaying(ConnectionTable& table, const char* client) {
  Connection* c = table.Alloc();
  c->client = *net::SocketAddress::Parse(client);
  c->up.LimitReads();
  c->down.LimitReads();
  return c;
}

TEST(ThrottleTest, RefillGrantsOnlyASpentBudgetFromTheClientsBucket) {
  admission::ClientLimits limits({.bandwidth = 1 << 20});
  ConnectionTable table;
  Connection* c = Relaying(table, "10.0.0.1:1000");
  EXPECT_EQ(Throttle::Refill(limits, *c, /*up=*/true, 0), limits.grant_bytes());
  EXPECT_EQ(Throttle::Refill(limits, *c, /*up=*/true, 0), limits.grant_bytes())
      << "a budget left: no second grant";
  EXPECT_EQ(c->down.read_budget(), 0u);
  // Another connection of the same client draws on the same bucket.
  Connection* d = Relaying(table, "10.0.0.1:2000");
  uint64_t total = c->up.read_budget();
  for (int i = 0; i < 100; ++i) {
    d->up = Flow();
    d->up.LimitReads();
    total += Throttle::Refill(limits, *d, /*up=*/true, 0);
  }
  EXPECT_EQ(total, limits.burst_bytes());
}

TEST(ThrottleTest, ParksOnceAndHandsBackWhatIsStillLive) {
  ConnectionTable table;
  Throttle throttle;
  Connection* a = Relaying(table, "10.0.0.1:1");
  Connection* b = Relaying(table, "10.0.0.2:1");
  throttle.Park(*a, 10 * kMs);
  throttle.Park(*a, 11 * kMs);  // its other direction: still one entry
  throttle.Park(*b, 12 * kMs);
  EXPECT_EQ(throttle.due_ns(), 10 * kMs + Throttle::kRetryNs);
  table.Free(b);
  const auto taken = throttle.TakeAll(table);
  EXPECT_TRUE(throttle.empty());
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_FALSE(a->throttled);
  EXPECT_NE(table.Find(taken[0].first, taken[0].second), nullptr);
  EXPECT_EQ(table.Find(taken[1].first, taken[1].second), nullptr) << "freed meanwhile";
}

}  // namespace
}  // namespace l4lb::relay
