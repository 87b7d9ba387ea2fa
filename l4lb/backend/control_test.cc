#include "l4lb/backend/control.h"

#include <thread>

#include "gtest/gtest.h"

#include "l4lb/backend/test_backends.h"

namespace l4lb::backend {
namespace {

class ServiceControlTest : public ::testing::Test {
 protected:
  ServiceControlTest()
      : publisher_(*BackendSnapshot::Build(Backends(4), {}, {.maglev_table_size = 65537})),
        control_(&publisher_, {.maglev_table_size = 65537}) {}
  SnapshotPublisher publisher_;
  ServiceControl control_;
};

TEST_F(ServiceControlTest, FindsBackendsByTheirConfiguredName) {
  EXPECT_EQ(*control_.Find("10.0.0.3:80"), 2u);
  EXPECT_EQ(control_.Find("10.0.0.9:80").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceControlTest, AdminStatesAndHealthDoNotOverwriteEachOther) {
  const uint64_t generation = publisher_.generation();
  control_.SetAdmin(1, AdminState::kDrain);
  control_.SetHealth({true, true, false, true});
  control_.SetAdmin(3, AdminState::kMaint);
  const auto now = publisher_.Current();
  EXPECT_EQ(now->admin(1), AdminState::kDrain);
  EXPECT_EQ(now->admin(3), AdminState::kMaint);
  EXPECT_FALSE(now->healthy(2));
  EXPECT_EQ(now->healthy_count(), 1u);
  EXPECT_EQ(publisher_.generation(), generation + 3);
  control_.SetAdmin(3, AdminState::kMaint);
  EXPECT_EQ(publisher_.generation(), generation + 3) << "no change, no publish";
}

TEST_F(ServiceControlTest, AWeightChangeMovesClientsOntoThatBackendOnly) {
  control_.SetAdmin(0, AdminState::kDrain);
  control_.SetHealth({true, true, true, false});
  const auto before = publisher_.Current();
  const auto after = control_.SetWeight(1, 3);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)->backends()[1].weight, 3u);
  EXPECT_EQ((*after)->admin(0), AdminState::kDrain) << "kept across the rebuild";
  EXPECT_FALSE((*after)->healthy(3)) << "kept across the rebuild";
  // Backends 1 and 2 take every new client: 1/2 each before, 3/4 and 1/4 after.
  int to_one = 0, elsewhere = 0, at_one = 0;
  constexpr int kKeys = 100000;
  for (uint64_t i = 1; i <= kKeys; ++i) {
    const uint64_t key = i * 0x9E3779B97F4A7C15ull;
    const int a = before->Pick(key, {});
    const int b = (*after)->Pick(key, {});
    at_one += b == 1;
    if (a == b) continue;
    (b == 1 ? to_one : elsewhere) += 1;
  }
  EXPECT_NEAR(at_one, kKeys * 0.75, kKeys * 0.03);
  // Maglev is near-minimal: almost every moved client moved onto backend 1.
  EXPECT_GT(to_one, kKeys / 5);
  EXPECT_LT(elsewhere, to_one / 20) << to_one << " moved to 1, " << elsewhere << " elsewhere";
  EXPECT_FALSE(control_.SetWeight(1, 0).ok());
  EXPECT_FALSE(control_.SetWeight(1, kMaxWeight + 1).ok());
}

TEST_F(ServiceControlTest, ConcurrentWritersLoseNoChange) {
  std::thread health([&] {
    for (int i = 0; i < 200; ++i) control_.SetHealth({true, i % 2 == 0, true, true});
  });
  std::thread admin([&] {
    for (int i = 0; i < 200; ++i) {
      control_.SetAdmin(2, i % 2 == 0 ? AdminState::kDrain : AdminState::kMaint);
    }
  });
  std::thread weight([&] {
    for (int i = 1; i <= 20; ++i) ASSERT_TRUE(control_.SetWeight(0, i).ok());
  });
  health.join();
  admin.join();
  weight.join();
  const auto now = publisher_.Current();
  EXPECT_FALSE(now->healthy(1)) << "the last health (i = 199) is kept";
  EXPECT_EQ(now->admin(2), AdminState::kMaint) << "the last admin state is kept";
  EXPECT_EQ(now->backends()[0].weight, 20u) << "the last weight is kept";
}

}  // namespace
}  // namespace l4lb::backend
