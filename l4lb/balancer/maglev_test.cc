#include "l4lb/balancer/maglev.h"

#include <stdio.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::balancer {
namespace {

using Backends = std::vector<MaglevTable::Backend>;

Backends MakeBackends(int n) {
  Backends out;
  for (int i = 1; i <= n; ++i) out.push_back({.name = "10.0.0." + std::to_string(i) + ":80"});
  return out;
}

TEST(MaglevTableTest, MaxOverMeanLoadAtMost1_05) {
  const Backends backends = MakeBackends(10);
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(backends, {});
  ASSERT_TRUE(table.ok()) << table.status();

  std::mt19937_64 rng(20161);  // fixed seed: reproducible figures
  std::vector<int> load(backends.size());
  for (int i = 0; i < 1'000'000; ++i) ++load[table->Pick(rng())];

  const double mean = 1'000'000.0 / backends.size();
  const double max_over_mean = *std::max_element(load.begin(), load.end()) / mean;
  printf("max/mean load over 1M keys, 10 backends: %.4f\n", max_over_mean);
  EXPECT_LE(max_over_mean, 1.05);
}

TEST(MaglevTableTest, SlotsPerBackendDifferByAtMostOne) {
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(MakeBackends(10), {});
  ASSERT_TRUE(table.ok()) << table.status();
  std::vector<int> slots(10);
  for (uint32_t s = 0; s < table->size(); ++s) ++slots[table->Pick(s)];
  const auto [min, max] = std::minmax_element(slots.begin(), slots.end());
  printf("slots per backend: min %d max %d\n", *min, *max);
  EXPECT_LE(*max - *min, 1);
}

TEST(MaglevTableTest, RemovingOneOfTenMovesAtMost1_2TimesTheIdeal) {
  const Backends all = MakeBackends(10);
  Backends fewer = all;
  fewer.erase(fewer.begin() + 3);  // 10.0.0.4:80 goes away
  const absl::StatusOr<MaglevTable> before = MaglevTable::Build(all, {});
  const absl::StatusOr<MaglevTable> after = MaglevTable::Build(fewer, {});
  ASSERT_TRUE(before.ok() && after.ok());

  std::mt19937_64 rng(20161);
  int moved = 0;
  int moved_from_survivors = 0;
  constexpr int kKeys = 1'000'000;
  for (int i = 0; i < kKeys; ++i) {
    const uint64_t key = rng();
    const std::string& was = all[before->Pick(key)].name;
    const std::string& now = fewer[after->Pick(key)].name;
    if (was != now) {
      ++moved;
      if (was != "10.0.0.4:80") ++moved_from_survivors;
    }
  }
  const double moved_over_ideal = (static_cast<double>(moved) / kKeys) / (1.0 / 10);
  printf(
      "removing 1 of 10: moved %.4f of keys, moved_over_ideal %.4f, survivors' keys moved %.4f\n",
      static_cast<double>(moved) / kKeys, moved_over_ideal,
      static_cast<double>(moved_from_survivors) / kKeys);
  EXPECT_LE(moved_over_ideal, 1.2);
  // Every key of the removed backend must move; that alone is the ideal.
  EXPECT_GE(moved_over_ideal, 0.95);
}

TEST(MaglevTableTest, WeightsWithinFivePercentOfTheirShare) {
  Backends backends = MakeBackends(4);
  for (int i = 0; i < 4; ++i) backends[i].weight = i + 1;  // 1, 2, 3, 4: sum 10
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(backends, {});
  ASSERT_TRUE(table.ok()) << table.status();
  std::mt19937_64 rng(20161);
  std::vector<int> load(4);
  for (int i = 0; i < 1'000'000; ++i) ++load[table->Pick(rng())];
  for (int i = 0; i < 4; ++i) {
    const double share = load[i] / 1'000'000.0;
    const double want = (i + 1) / 10.0;
    printf("weight %d: share %.4f (want %.4f, off by %.2f%%)\n", i + 1, share, want,
           100 * std::abs(share - want) / want);
    EXPECT_NEAR(share, want, 0.05 * want);
  }
}

TEST(MaglevTableTest, SameSetSameTableWhateverTheOrder) {
  const Backends backends = MakeBackends(7);
  Backends reversed(backends.rbegin(), backends.rend());
  const absl::StatusOr<MaglevTable> a = MaglevTable::Build(backends, {});
  const absl::StatusOr<MaglevTable> b = MaglevTable::Build(backends, {});
  const absl::StatusOr<MaglevTable> r = MaglevTable::Build(reversed, {});
  ASSERT_TRUE(a.ok() && b.ok() && r.ok());
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t key = rng();
    ASSERT_EQ(a->Pick(key), b->Pick(key));
    ASSERT_EQ(backends[a->Pick(key)].name, reversed[r->Pick(key)].name);
  }
}

TEST(MaglevTableTest, PinnedPicksDoNotChangeAcrossBuilds) {
  // Instances of different versions must agree: if this fails, the permutation,
  // the seeds or the fill order changed and every deployed client would move.
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(MakeBackends(5), {});
  ASSERT_TRUE(table.ok());
  std::vector<uint32_t> picks;
  for (uint64_t key : {0ULL, 1ULL, 65536ULL, 123456789ULL, 0xFFFFFFFFFFFFFFFFULL}) {
    picks.push_back(table->Pick(key));
  }
  EXPECT_EQ(picks, (std::vector<uint32_t>{0, 4, 2, 1, 0}));
}

TEST(MaglevTableTest, SmallTables) {
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(MakeBackends(3), {.table_size = 7});
  ASSERT_TRUE(table.ok()) << table.status();
  std::vector<int> slots(3);
  for (uint32_t s = 0; s < 7; ++s) ++slots[table->Pick(s)];
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 0), 0);  // everyone has a slot
  EXPECT_TRUE(MaglevTable::Build(MakeBackends(1), {.table_size = 2}).ok());
}

TEST(MaglevTableTest, InvalidInputIsAnErrorThatSaysWhat) {
  struct Case {
    Backends backends;
    uint32_t table_size;
    const char* message;
  };
  Backends zero_weight = MakeBackends(2);
  zero_weight[1].weight = 0;
  Backends heavy = MakeBackends(2);
  heavy[0].weight = 10001;
  Backends repeated = MakeBackends(2);
  repeated[1].name = repeated[0].name;
  for (const Case& c : {
           Case{MakeBackends(3), 65536, "maglev table size 65536 is not prime"},
           Case{MakeBackends(3), 1, "maglev table size 1 is not prime"},
           Case{{}, 65537, "maglev table with no backend"},
           Case{zero_weight, 65537, "backend 10.0.0.2:80: weight 0 is not 1..10000"},
           Case{heavy, 65537, "backend 10.0.0.1:80: weight 10001 is not 1..10000"},
           Case{repeated, 65537, "backend 10.0.0.1:80 is listed twice"},
           Case{MakeBackends(5), 3, "maglev table size 3 is below the 5 backends"},
           Case{MakeBackends(1), 10'000'079, "above the limit"},
       }) {
    const absl::StatusOr<MaglevTable> table =
        MaglevTable::Build(c.backends, {.table_size = c.table_size});
    ASSERT_FALSE(table.ok()) << c.message;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(table.status().message().find(c.message), std::string::npos)
        << "got: " << table.status().message();
  }
}

}  // namespace
}  // namespace l4lb::balancer
