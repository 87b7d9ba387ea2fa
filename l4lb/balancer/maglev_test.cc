#include "l4lb/balancer/maglev.h"

#include <stdio.h>

#include <algorithm>
#include <cmath>
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

// Weighted backends for the extreme cases: `weights[i]` for "10.0.0.<i+1>:80"
// (more than 254 backends spill into 10.0.<i/254>.x).
Backends Weighted(const std::vector<uint32_t>& weights) {
  Backends out;
  for (size_t i = 0; i < weights.size(); ++i) {
    out.push_back(
        {.name = "10." + std::to_string(i / 254) + ".0." + std::to_string(i % 254 + 1) + ":80",
         .weight = weights[i]});
  }
  return out;
}

struct WeightCase {
  std::string name;
  std::vector<uint32_t> weights;
  // Slots a share may be off. One, unless backends owed under half a slot get
  // the slot every listed backend has: those come out of the others' shares.
  double max_slots_off = 1.0;
};

class MaglevWeightTest : public ::testing::TestWithParam<WeightCase> {};

// Every backend's share of the table is its share of the weights, to a slot:
// 1/65537 of the table, far inside the 1 % (absolute, of the table) promised
// for any weights the flags accept. One slot is also the best a table of whole
// slots can do: a backend owed 6.55 slots gets 6 or 7.
TEST_P(MaglevWeightTest, EveryShareIsItsWeightToASlot) {
  const Backends backends = Weighted(GetParam().weights);
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(backends, {});
  ASSERT_TRUE(table.ok()) << table.status();
  std::vector<int> slots(backends.size());
  for (uint32_t s = 0; s < table->size(); ++s) ++slots[table->Pick(s)];
  double total_weight = 0;
  for (const auto& b : backends) total_weight += b.weight;
  double worst_slots = 0;
  double worst_points = 0;  // percentage points of the table
  size_t worst = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const double want = table->size() * backends[i].weight / total_weight;
    const double off = std::abs(slots[i] - want);
    if (off > worst_slots) worst_slots = off, worst = i;
    worst_points = std::max(worst_points, 100.0 * off / table->size());
    EXPECT_GE(slots[i], 1) << backends[i].name << " is listed, so it gets clients";
  }
  const double want = table->size() * backends[worst].weight / total_weight;
  printf("%s: worst %s weight %u: %d slots, want %.2f (%.2f slots, %.4f points off)\n",
         GetParam().name.c_str(), backends[worst].name.c_str(), backends[worst].weight,
         slots[worst], want, worst_slots, worst_points);
  if (backends.size() <= 3) {
    for (size_t i = 0; i < backends.size(); ++i) {
      printf("  %s weight %u: %.3f %% of the table\n", backends[i].name.c_str(), backends[i].weight,
             100.0 * slots[i] / table->size());
    }
  }
  EXPECT_LE(worst_points, 1.0);
  EXPECT_LE(worst_slots, GetParam().max_slots_off);
}

std::vector<uint32_t> Mixed(int n) {
  std::vector<uint32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint32_t>(i * 7919 % 10000 + 1));
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Extremes, MaglevWeightTest,
    ::testing::Values(WeightCase{"three_of_10000", {10000, 10000, 10000}},
                      WeightCase{"1_and_10000", {1, 10000}}, WeightCase{"10000_and_1", {10000, 1}},
                      WeightCase{"primes", {2, 3, 5, 7, 11, 13, 9973, 9967}},
                      WeightCase{"mixed_300", Mixed(300)},
                      WeightCase{"all_10000_x300", std::vector<uint32_t>(300, 10000)},
                      WeightCase{"one_light_among_300_heavy",
                                 [] {
                                   std::vector<uint32_t> w(300, 10000);
                                   w[150] = 1;
                                   return w;
                                 }()},
                      // 290 backends owed 0.02 slots get one each: 29 fewer for
                      // each heavy one (of 6535), 0.04 points of the table.
                      WeightCase{"290_light_10_heavy",
                                 [] {
                                   std::vector<uint32_t> w(300, 1);
                                   for (int i = 0; i < 300; i += 30) w[i] = 10000;
                                   return w;
                                 }(),
                                 30}),
    [](const auto& info) { return info.param.name; });

TEST(MaglevTableTest, RemovingOneWeightedBackendMovesLittleMoreThanItsShare) {
  const Backends all = Weighted({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  Backends fewer = all;
  fewer.erase(fewer.begin() + 4);  // weight 5 of 55
  const absl::StatusOr<MaglevTable> before = MaglevTable::Build(all, {});
  const absl::StatusOr<MaglevTable> after = MaglevTable::Build(fewer, {});
  ASSERT_TRUE(before.ok() && after.ok());
  std::mt19937_64 rng(20161);
  int moved = 0;
  constexpr int kKeys = 1'000'000;
  for (int i = 0; i < kKeys; ++i) {
    const uint64_t key = rng();
    moved += all[before->Pick(key)].name != fewer[after->Pick(key)].name;
  }
  const double moved_over_ideal = (static_cast<double>(moved) / kKeys) / (5.0 / 55);
  printf("removing weight 5 of 55: moved_over_ideal %.4f\n", moved_over_ideal);
  EXPECT_LE(moved_over_ideal, 1.5);
  EXPECT_GE(moved_over_ideal, 0.95);
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
