#include "l4lb/admission/limits.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::admission {
namespace {

constexpr int64_t kMs = 1'000'000;

ClientLimits::Ip V4(uint32_t a) {
  ClientLimits::Ip ip{};
  ip[10] = ip[11] = 0xff;
  for (int i = 0; i < 4; ++i) ip[12 + i] = static_cast<uint8_t>(a >> (24 - 8 * i));
  return ip;
}

using Verdict = ClientLimits::Verdict;

TEST(ClientLimitsTest, TokenBucketAdmitsBurstThenRate) {
  ClientLimits limits({.rate = 10, .burst = 5});
  ClientLimits::Ticket t;
  int admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += limits.Admit(V4(1), 0, &t) == Verdict::kAdmit;
  EXPECT_EQ(admitted, 5) << "the burst";
  EXPECT_EQ(limits.Admit(V4(1), 50 * kMs, &t), Verdict::kLimited) << "half a token";
  EXPECT_EQ(limits.Admit(V4(1), 100 * kMs, &t), Verdict::kAdmit) << "10/s: one per 100 ms";
  EXPECT_EQ(limits.Admit(V4(1), 100 * kMs, &t), Verdict::kLimited);
  EXPECT_EQ(limits.Admit(V4(2), 100 * kMs, &t), Verdict::kAdmit) << "another client";
  // A long pause refills to the burst, not beyond.
  admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += limits.Admit(V4(1), 60'000 * kMs, &t) == Verdict::kAdmit;
  EXPECT_EQ(admitted, 5);
}

TEST(ClientLimitsTest, BandwidthGrantsTheBurstThenTheRateEachWay) {
  ClientLimits limits({.bandwidth = 1 << 20});  // 1 MiB/s
  EXPECT_EQ(limits.grant_bytes(), (1u << 20) / 50);
  EXPECT_EQ(limits.burst_bytes(), (1u << 20) / 10);
  uint64_t granted = 0;
  for (int i = 0; i < 100; ++i) granted += limits.Grant(V4(1), 0, limits.grant_bytes(), 0);
  EXPECT_EQ(granted, limits.burst_bytes()) << "the bucket, then nothing";
  EXPECT_EQ(limits.Grant(V4(1), 0, 1 << 20, 0), 0u);
  EXPECT_EQ(limits.Grant(V4(1), 1, 1 << 20, 0), limits.burst_bytes()) << "down has its own";
  // 10 ms at 1 MiB/s refills 10 KiB (up to the bucket), whoever of the client asks.
  EXPECT_NEAR(static_cast<double>(limits.Grant(V4(1), 0, 1 << 20, 10 * kMs)), 10485.76, 1);
  EXPECT_EQ(limits.Grant(V4(2), 0, 1000, 10 * kMs), 1000u) << "another client";
  // Over 5 s of steady asking, the client gets 5 s worth plus the burst.
  granted = 0;
  for (int64_t t = 10; t <= 5010; t += 5) granted += limits.Grant(V4(1), 0, 1 << 20, t * kMs);
  EXPECT_NEAR(static_cast<double>(granted), 5.0 * (1 << 20), 2.0 * 4096);
}

TEST(ClientLimitsTest, BandwidthIsSharedByAClientsPrefix) {
  ClientLimits limits({.prefix_v4 = 24, .bandwidth = 100'000});
  EXPECT_EQ(limits.grant_bytes(), 4096u) << "at least a page";
  EXPECT_EQ(limits.burst_bytes(), 10'000u);
  EXPECT_EQ(limits.Grant(V4(0x0a000001), 0, 6000, 0), 6000u);
  EXPECT_EQ(limits.Grant(V4(0x0a000002), 0, 6000, 0), 4000u) << "same /24: the rest";
  EXPECT_EQ(limits.Grant(V4(0x0a000102), 0, 6000, 0), 6000u) << "another /24";
}

TEST(ClientLimitsTest, NoBandwidthBoundGrantsAll) {
  ClientLimits limits({});
  EXPECT_EQ(limits.Grant(V4(1), 0, 123456789, 0), 123456789u);
  EXPECT_EQ(limits.size(), 0u) << "no entry for it";
}

TEST(ClientLimitsTest, ConcurrencyBoundCountsLiveConnections) {
  ClientLimits limits({.max_connections = 2});
  ClientLimits::Ticket a, b, c;
  EXPECT_EQ(limits.Admit(V4(1), 0, &a), Verdict::kAdmit);
  EXPECT_EQ(limits.Admit(V4(1), 0, &b), Verdict::kAdmit);
  EXPECT_EQ(limits.Admit(V4(1), 0, &c), Verdict::kLimited);
  limits.Release(V4(1), a);
  EXPECT_EQ(limits.Admit(V4(1), 0, &c), Verdict::kAdmit);
  EXPECT_EQ(limits.Admit(V4(1), 0, &a), Verdict::kLimited);
}

TEST(ClientLimitsTest, RepeatedRateViolationsBanUntilBanTime) {
  ClientLimits limits({.rate = 1,
                       .burst = 1,
                       .ban_after = 3,
                       .ban_window = absl::Seconds(10),
                       .ban_time = absl::Seconds(60)});
  ClientLimits::Ticket t;
  EXPECT_EQ(limits.Admit(V4(9), 0, &t), Verdict::kAdmit);
  EXPECT_EQ(limits.Admit(V4(9), 1 * kMs, &t), Verdict::kLimited);
  EXPECT_EQ(limits.Admit(V4(9), 2 * kMs, &t), Verdict::kLimited);
  EXPECT_EQ(limits.Admit(V4(9), 3 * kMs, &t), Verdict::kBanned) << "the third violation";
  EXPECT_TRUE(limits.Banned(V4(9), 4 * kMs));
  // Banned even with tokens back: until ban_time runs out.
  EXPECT_EQ(limits.Admit(V4(9), 30'000 * kMs, &t), Verdict::kBanned);
  EXPECT_EQ(limits.Admit(V4(9), 60'004 * kMs, &t), Verdict::kAdmit) << "the ban expired";
  EXPECT_FALSE(limits.Banned(V4(9), 60'005 * kMs));
}

TEST(ClientLimitsTest, ViolationsOutsideTheWindowDoNotAddUp) {
  ClientLimits limits({.rate = 1, .burst = 1, .ban_after = 3, .ban_window = absl::Seconds(1)});
  ClientLimits::Ticket t;
  for (int second = 0; second < 10; ++second) {
    const int64_t now = second * 2000 * kMs;
    EXPECT_EQ(limits.Admit(V4(5), now, &t), Verdict::kAdmit);
    EXPECT_EQ(limits.Admit(V4(5), now + 1, &t), Verdict::kLimited);
    EXPECT_EQ(limits.Admit(V4(5), now + 2, &t), Verdict::kLimited);  // two per window
  }
}

TEST(ClientLimitsTest, AdminBanAndUnban) {
  ClientLimits limits({.max_connections = 100});
  ClientLimits::Ticket t;
  limits.Ban(V4(7), absl::Seconds(5), 0);
  EXPECT_EQ(limits.Admit(V4(7), 1, &t), Verdict::kBanned);
  limits.Unban(V4(7));
  EXPECT_EQ(limits.Admit(V4(7), 2, &t), Verdict::kAdmit);
}

TEST(ClientLimitsTest, PrefixesAggregateClients) {
  ClientLimits limits({.max_connections = 1, .prefix_v4 = 24, .prefix_v6 = 64});
  ClientLimits::Ticket t;
  EXPECT_EQ(limits.Admit(V4(0x0A000001), 0, &t), Verdict::kAdmit);    // 10.0.0.1
  EXPECT_EQ(limits.Admit(V4(0x0A0000FE), 0, &t), Verdict::kLimited);  // 10.0.0.254: same /24
  EXPECT_EQ(limits.Admit(V4(0x0A000101), 0, &t), Verdict::kAdmit);    // 10.0.1.1
  ClientLimits::Ip v6a{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  ClientLimits::Ip v6b = v6a;
  v6b[15] = 2;  // same /64
  EXPECT_EQ(limits.Admit(v6a, 0, &t), Verdict::kAdmit);
  EXPECT_EQ(limits.Admit(v6b, 0, &t), Verdict::kLimited);
  EXPECT_EQ(limits.Key(v6b), limits.Key(v6a));
}

TEST(ClientLimitsTest, TableStaysBoundedUnderAnAddressFloodAndKeepsBans) {
  ClientLimits limits({.max_connections = 10, .ban_time = absl::Hours(1), .max_clients = 1600});
  ClientLimits::Ticket t;
  limits.Ban(V4(0xCB007101), absl::Hours(1), 0);  // 203.0.113.1
  for (uint32_t a = 0; a < 100'000; ++a) limits.Admit(V4(0x0B000000 + a), 1, &t);
  EXPECT_LE(limits.size(), 1600u + 16u);
  EXPECT_GT(limits.evictions(), 90'000u);
  EXPECT_TRUE(limits.Banned(V4(0xCB007101), 2)) << "a flood of new addresses evicted a ban";
}

TEST(ClientLimitsTest, AReleaseAfterEvictionDoesNotFreeTheNewEntry) {
  ClientLimits limits({.max_connections = 1, .max_clients = 16});  // one entry per shard
  ClientLimits::Ticket old_ticket, t;
  ASSERT_EQ(limits.Admit(V4(1), 0, &old_ticket), Verdict::kAdmit);
  for (uint32_t a = 2; a < 2000; ++a) limits.Admit(V4(a), 0, &t);  // evicts V4(1)'s entry
  ClientLimits::Ticket fresh;
  ASSERT_EQ(limits.Admit(V4(1), 0, &fresh), Verdict::kAdmit);
  limits.Release(V4(1), old_ticket);  // from before the eviction: must not count
  EXPECT_EQ(limits.Admit(V4(1), 0, &t), Verdict::kLimited);
}

TEST(ClientLimitsTest, ManyThreadsKeepTheConcurrencyBound) {
  ClientLimits limits({.max_connections = 50});
  std::atomic<int> live{0}, peak{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        ClientLimits::Ticket t;
        if (limits.Admit(V4(42), i, &t) != Verdict::kAdmit) continue;
        const int now = ++live;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        --live;
        limits.Release(V4(42), t);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(peak.load(), 50);
  ClientLimits::Ticket t;
  EXPECT_EQ(limits.Admit(V4(42), 0, &t), Verdict::kAdmit) << "every ticket was given back";
}

}  // namespace
}  // namespace l4lb::admission
