#include "l4lb/balancer/policy.h"

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/balancer/flow_hash.h"

namespace l4lb::balancer {
namespace {

std::shared_ptr<const backend::BackendSnapshot> Snapshot(const std::string& list) {
  return *backend::BackendSnapshot::Build(*backend::ParseBackendList(list), {},
                                          {.maglev_table_size = 1009});
}

TEST(PolicyTest, NamesParseBothWays) {
  for (Balance b : {Balance::kMaglev, Balance::kMaglevBounded, Balance::kLeastConn,
                    Balance::kRoundRobin}) {
    EXPECT_EQ(*ParseBalance(BalanceName(b)), b);
  }
  const absl::StatusOr<Balance> bad = ParseBalance("leastconn");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "\"leastconn\": want maglev, maglev_bounded, least_conn or round_robin");
}

TEST(PolicyTest, RoundRobinIsSmoothAndWeighted) {
  const auto s = Snapshot("10.0.0.1:80=5,10.0.0.2:80,10.0.0.3:80");
  Picker p(Balance::kRoundRobin, 1.25, 0);
  const auto none = [](uint32_t) { return uint64_t{0}; };
  std::string order;
  for (int i = 0; i < 7; ++i) order += static_cast<char>('a' + p.Pick(*s, 0, {}, none));
  EXPECT_EQ(order, "aabacaa") << "nginx's smooth order";
  std::vector<int> count(3);
  for (int i = 0; i < 700; ++i) ++count[p.Pick(*s, 0, {}, none)];
  EXPECT_EQ(count, (std::vector<int>{500, 100, 100}));
  // A down backend and a tried one are skipped.
  const auto down = s->WithHealth({true, false, true});
  std::vector<int> seen(3);
  const uint32_t tried[] = {0};
  for (int i = 0; i < 10; ++i) ++seen[p.Pick(*down, 0, tried, none)];
  EXPECT_EQ(seen, (std::vector<int>{0, 0, 10}));
}

TEST(PolicyTest, LeastConnTakesTheLeastLoadedPerWeightAndRotatesTies) {
  const auto s = Snapshot("10.0.0.1:80=4,10.0.0.2:80,10.0.0.3:80");
  std::vector<uint64_t> load = {4, 2, 1};
  const auto by = [&](uint32_t b) { return load[b]; };
  Picker p(Balance::kLeastConn, 1.25, 0);
  EXPECT_EQ(p.Pick(*s, 0, {}, by), 0) << "1 per unit of weight ties with backend 2: the scan's first wins";
  load = {8, 2, 1};
  EXPECT_EQ(p.Pick(*s, 0, {}, by), 2) << "8/4 = 2 > 1";
  load = {0, 0, 0};
  std::vector<int> first(3);
  for (int i = 0; i < 30; ++i) ++first[p.Pick(*s, 0, {}, by)];
  EXPECT_EQ(first, (std::vector<int>{10, 10, 10})) << "ties go round";
  Picker other(Balance::kLeastConn, 1.25, 1);
  Picker again(Balance::kLeastConn, 1.25, 0);
  EXPECT_NE(other.Pick(*s, 0, {}, by), again.Pick(*s, 0, {}, by)) << "workers start apart";
  const uint32_t tried[] = {0, 1};
  load = {0, 0, 9};
  EXPECT_EQ(p.Pick(*s, 0, tried, by), 2);
  EXPECT_EQ(p.Pick(*s->WithHealth({false, false, false}), 0, {}, by),
            backend::BackendSnapshot::kNone);
}

// A skewed key distribution: half the connections come from one client network
// (one key), the rest spread. Plain Maglev puts the hot half on one backend;
// bounded loads keep every backend within the factor of the mean while the
// spread clients keep the backend Maglev gives them.
TEST(PolicyTest, BoundedLoadsCapTheHotBackendAndMoveFewClients) {
  const auto s = Snapshot(
      "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80,10.0.0.4:80,10.0.0.5:80,10.0.0.6:80,10.0.0.7:80,"
      "10.0.0.8:80");
  constexpr int kConnections = 4000;
  constexpr double kFactor = 1.25;
  const auto run = [&](Balance balance, int* moved) {
    std::vector<uint64_t> load(8);
    Picker p(balance, kFactor, 0);
    *moved = 0;
    for (int i = 0; i < kConnections; ++i) {
      const uint64_t key = i % 2 == 0 ? 42 : Mix64(i);
      const int b = p.Pick(*s, key, {}, [&](uint32_t x) { return load[x]; });
      *moved += key != 42 && b != s->Pick(key, {});
      ++load[b];
    }
    const double mean = static_cast<double>(kConnections) / 8;
    return static_cast<double>(*std::max_element(load.begin(), load.end())) / mean;
  };
  int moved_plain = 0;
  int moved_bounded = 0;
  const double plain = run(Balance::kMaglev, &moved_plain);
  const double bounded = run(Balance::kMaglevBounded, &moved_bounded);
  EXPECT_GT(plain, 4.0) << "the hot key's backend holds half of everything";
  EXPECT_LE(bounded, kFactor + 8.0 / kConnections) << "max/mean over the bound";
  // The hot half has to go somewhere: it fills each backend up to the bound, so
  // spread clients of full backends move too, but far from all of them.
  EXPECT_LT(moved_bounded, kConnections / 2 / 2) << moved_bounded << " spread clients moved";
  RecordProperty("max_over_mean_plain", std::to_string(plain));
  RecordProperty("max_over_mean_bounded", std::to_string(bounded));
}

TEST(PolicyTest, BoundedLoadsWithoutPressureIsMaglev) {
  const auto s = Snapshot("10.0.0.1:80,10.0.0.2:80=3,10.0.0.3:80");
  Picker p(Balance::kMaglevBounded, 1.25, 0);
  for (uint64_t key = 0; key < 1000; ++key) {
    const uint64_t k = Mix64(key);
    // Each key alone on an idle farm, or against loads at their fair shares.
    ASSERT_EQ(p.Pick(*s, k, {}, [](uint32_t) { return uint64_t{0}; }), s->Pick(k, {})) << key;
    ASSERT_EQ(p.Pick(*s, k, {}, [](uint32_t b) { return uint64_t{b == 1 ? 30u : 10u}; }),
              s->Pick(k, {}))
        << key;
  }
}

}  // namespace
}  // namespace l4lb::balancer
