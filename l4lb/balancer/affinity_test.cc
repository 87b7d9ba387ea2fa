#include "l4lb/balancer/affinity.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::balancer {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

AffinityTable::Ip Ip(uint32_t n) {
  AffinityTable::Ip ip{};
  ip[10] = ip[11] = 0xff;
  ip[12] = n >> 24;
  ip[13] = n >> 16;
  ip[14] = n >> 8;
  ip[15] = n;
  return ip;
}

TEST(AffinityTableTest, UnknownClientHasNoPin) {
  AffinityTable table({});
  EXPECT_FALSE(table.Lookup(Ip(1), 0).has_value());
}

TEST(AffinityTableTest, PinLastsWhileConnectionsLiveAndTtlAfterTheLast) {
  AffinityTable table({.ttl = absl::Seconds(10)});
  EXPECT_EQ(table.ttl(), absl::Seconds(10));
  table.Acquire(Ip(1), Ip(100), 0);
  table.Acquire(Ip(1), Ip(100), 1 * kSecond);
  // An hour-long control connection keeps the pin, whatever the ttl.
  EXPECT_EQ(table.Lookup(Ip(1), 3600 * kSecond), Ip(100));
  table.Release(Ip(1), 3600 * kSecond);
  EXPECT_EQ(table.Lookup(Ip(1), 3700 * kSecond), Ip(100));  // one still open
  table.Release(Ip(1), 3700 * kSecond);
  EXPECT_EQ(table.Lookup(Ip(1), 3709 * kSecond), Ip(100));
  EXPECT_FALSE(table.Lookup(Ip(1), 3711 * kSecond).has_value());
  EXPECT_EQ(table.size(), 0u);  // the expired lookup freed it
}

TEST(AffinityTableTest, NewPinReplacesTheOldOneAndKeepsTheCount) {
  AffinityTable table({.ttl = absl::Seconds(10)});
  table.Acquire(Ip(1), Ip(100), 0);
  table.Acquire(Ip(1), Ip(200), 0);  // e.g. 100 was down for this connection
  EXPECT_EQ(table.Lookup(Ip(1), 0), Ip(200));
  table.Release(Ip(1), 0);
  EXPECT_EQ(table.Lookup(Ip(1), 20 * kSecond), Ip(200)) << "one connection is still open";
}

TEST(AffinityTableTest, ExpiredPinStartsAFreshCount) {
  AffinityTable table({.ttl = absl::Seconds(1)});
  table.Acquire(Ip(1), Ip(100), 0);
  table.Release(Ip(1), 0);
  table.Acquire(Ip(1), Ip(200), 5 * kSecond);
  table.Release(Ip(1), 5 * kSecond);
  EXPECT_FALSE(table.Lookup(Ip(1), 7 * kSecond).has_value());
}

TEST(AffinityTableTest, BoundedUnderAFloodOfClients) {
  AffinityTable table({.ttl = absl::Seconds(60), .max_clients = 1600});
  for (uint32_t i = 0; i < 100000; ++i) {
    table.Acquire(Ip(i), Ip(7), i);
    table.Release(Ip(i), i);
  }
  EXPECT_LE(table.size(), 1600u);
  EXPECT_GE(table.size(), 1500u);
  EXPECT_EQ(table.evictions(), 100000 - table.size());
  // The most recent clients are the ones kept.
  EXPECT_EQ(table.Lookup(Ip(99999), 100000), Ip(7));
  EXPECT_FALSE(table.Lookup(Ip(0), 100000).has_value());
}

TEST(AffinityTableTest, ExpiredEntriesMakeRoomWithoutCountingAsEvictions) {
  AffinityTable table({.ttl = absl::Seconds(1), .max_clients = 16});
  for (uint32_t i = 0; i < 1000; ++i) {
    table.Acquire(Ip(i), Ip(7), int64_t{i} * 2 * kSecond);
    table.Release(Ip(i), int64_t{i} * 2 * kSecond);
  }
  EXPECT_EQ(table.evictions(), 0u);
}

TEST(AffinityTableTest, ConcurrentWorkers) {
  AffinityTable table({.ttl = absl::Seconds(60), .max_clients = 4096});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&table, t] {
      for (uint32_t i = 0; i < 20000; ++i) {
        const auto client = Ip(i % 3000);
        table.Acquire(client, Ip(t), i);
        table.Lookup(client, i);
        table.Release(client, i);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(table.size(), 3000u);
}

}  // namespace
}  // namespace l4lb::balancer
