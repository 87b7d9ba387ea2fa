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
  const AffinityTable::Token a = table.Acquire(Ip(1), Ip(100), 0);
  const AffinityTable::Token b = table.Acquire(Ip(1), Ip(100), 1 * kSecond);
  EXPECT_EQ(a, b) << "one client, one entry";
  // An hour-long control connection keeps the pin, whatever the ttl.
  EXPECT_EQ(table.Lookup(Ip(1), 3600 * kSecond), Ip(100));
  table.Release(Ip(1), a, 3600 * kSecond);
  EXPECT_EQ(table.Lookup(Ip(1), 3700 * kSecond), Ip(100));  // one still open
  table.Release(Ip(1), b, 3700 * kSecond);
  EXPECT_EQ(table.Lookup(Ip(1), 3709 * kSecond), Ip(100));
  EXPECT_FALSE(table.Lookup(Ip(1), 3711 * kSecond).has_value());
  EXPECT_EQ(table.size(), 0u);  // the expired lookup freed it
}

TEST(AffinityTableTest, NewPinReplacesTheOldOneAndKeepsTheCount) {
  AffinityTable table({.ttl = absl::Seconds(10)});
  const AffinityTable::Token first = table.Acquire(Ip(1), Ip(100), 0);
  table.Acquire(Ip(1), Ip(200), 0);  // e.g. 100 was down for this connection
  EXPECT_EQ(table.Lookup(Ip(1), 0), Ip(200));
  table.Release(Ip(1), first, 0);
  EXPECT_EQ(table.Lookup(Ip(1), 20 * kSecond), Ip(200)) << "one connection is still open";
}

TEST(AffinityTableTest, ExpiredPinStartsAFreshCount) {
  AffinityTable table({.ttl = absl::Seconds(1)});
  table.Release(Ip(1), table.Acquire(Ip(1), Ip(100), 0), 0);
  table.Release(Ip(1), table.Acquire(Ip(1), Ip(200), 5 * kSecond), 5 * kSecond);
  EXPECT_FALSE(table.Lookup(Ip(1), 7 * kSecond).has_value());
}

TEST(AffinityTableTest, BoundedUnderAFloodOfClients) {
  AffinityTable table({.ttl = absl::Seconds(60), .max_clients = 1600});
  for (uint32_t i = 0; i < 100000; ++i) {
    table.Release(Ip(i), table.Acquire(Ip(i), Ip(7), i), i);
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
    const int64_t now = int64_t{i} * 2 * kSecond;
    table.Release(Ip(i), table.Acquire(Ip(i), Ip(7), now), now);
  }
  EXPECT_EQ(table.evictions(), 0u);
}

TEST(AffinityTableTest, AConnectionFromBeforeAnEvictionDoesNotReleaseTheNewPin) {
  // One entry per shard: every other client evicts client 1 sooner or later.
  AffinityTable table({.ttl = absl::Seconds(10), .max_clients = 16});
  const AffinityTable::Token old_connection = table.Acquire(Ip(1), Ip(100), 0);
  for (uint32_t i = 2; i < 1000 && table.Lookup(Ip(1), 0).has_value(); ++i) {
    table.Acquire(Ip(i), Ip(7), 0);
  }
  ASSERT_FALSE(table.Lookup(Ip(1), 0).has_value()) << "client 1 was never evicted";
  ASSERT_GT(table.evictions(), 0u);
  // The client connects again: a new entry, counting only the new connection.
  const AffinityTable::Token new_connection = table.Acquire(Ip(1), Ip(200), kSecond);
  EXPECT_NE(new_connection, old_connection);
  // The old connection closes. Counted against the new entry, it would bring it
  // to no connection, and the pin would expire while the new one is still open.
  table.Release(Ip(1), old_connection, 2 * kSecond);
  EXPECT_EQ(table.Lookup(Ip(1), 3600 * kSecond), Ip(200)) << "the live connection lost its pin";
  table.Release(Ip(1), new_connection, 3600 * kSecond);
  EXPECT_EQ(table.Lookup(Ip(1), 3609 * kSecond), Ip(200));
  EXPECT_FALSE(table.Lookup(Ip(1), 3611 * kSecond).has_value());
}

TEST(AffinityTableTest, ConcurrentWorkers) {
  AffinityTable table({.ttl = absl::Seconds(60), .max_clients = 4096});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&table, t] {
      for (uint32_t i = 0; i < 20000; ++i) {
        const auto client = Ip(i % 3000);
        const AffinityTable::Token token = table.Acquire(client, Ip(t), i);
        table.Lookup(client, i);
        table.Release(client, token, i);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(table.size(), 3000u);
}

}  // namespace
}  // namespace l4lb::balancer
