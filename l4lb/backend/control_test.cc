#include "l4lb/backend/control.h"

#include <cstdio>
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


// Slow start, on a clock the test moves.
class SlowStartControlTest : public ::testing::Test {
 protected:
  SlowStartControlTest()
      : publisher_(*BackendSnapshot::Build(Backends(4), {}, {})),
        control_(&publisher_, {},
                 {.duration = absl::Seconds(10), .service = "t", .clock = [this] { return now_; }}) {}

  // Backend 3's share of 100,000 keys, and the keys that changed backend since `before`.
  struct Moves {
    double share = 0;
    double moved = 0;
    double moved_elsewhere = 0;  // moved, but not onto backend 3
  };
  Moves Compare(const BackendSnapshot& before, const BackendSnapshot& after) {
    constexpr int kKeys = 100000;
    Moves m;
    for (uint64_t i = 1; i <= kKeys; ++i) {
      const uint64_t key = i * 0x9E3779B97F4A7C15ull;
      const int a = before.Pick(key, {});
      const int b = after.Pick(key, {});
      m.share += b == 3;
      m.moved += a != b;
      m.moved_elsewhere += a != b && b != 3;
    }
    m.share /= kKeys;
    m.moved /= kKeys;
    m.moved_elsewhere /= kKeys;
    return m;
  }

  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
  SnapshotPublisher publisher_;
  ServiceControl control_;
};

TEST_F(SlowStartControlTest, NobodyRampsAtStart) {
  EXPECT_EQ(control_.Tick(), absl::InfiniteDuration());
  EXPECT_EQ(publisher_.Current()->table_weights(), (std::vector<uint32_t>{1, 1, 1, 1}));
}

TEST_F(SlowStartControlTest, UpAfterDownRampsInTenStepsMovingOnlyWhatMust) {
  const auto all_up = publisher_.Current();
  control_.SetHealth({true, true, true, false});
  now_ += absl::Seconds(5);
  auto previous = control_.SetHealth({true, true, true, true});
  EXPECT_EQ(previous->table_weights(), (std::vector<uint32_t>{10000, 10000, 10000, 1000}));
  EXPECT_EQ(control_.Tick(), absl::Seconds(1)) << "the next step is due in a tenth of 10 s";
  Moves first = Compare(*all_up, *previous);
  EXPECT_NEAR(first.share, 0.1 / 3.1, 0.005);
  for (int step = 1; step <= SlowStart::kSteps; ++step) {
    now_ += absl::Seconds(1);
    control_.Tick();
    const auto next = publisher_.Current();
    ASSERT_NE(next, previous) << "step " << step << " was not published";
    const double f = SlowStart::Fraction(step);
    const double f_before = SlowStart::Fraction(step - 1);
    const double ideal = f / (3 + f) - f_before / (3 + f_before);
    const Moves m = Compare(*previous, *next);
    std::printf("step %2d: backend 3 has %.4f of the keys (ideal %.4f); moved %.4f (ideal %.4f)\n",
                step, m.share, f / (3 + f), m.moved, ideal);
    EXPECT_NEAR(m.share, f / (3 + f), 0.005) << "step " << step;
    // Near-minimal: about the ideal fraction moves, nearly all of it onto backend 3.
    EXPECT_LE(m.moved, 1.1 * ideal + 0.001) << "step " << step;
    EXPECT_LE(m.moved_elsewhere, 0.2 * ideal + 0.002) << "step " << step;
    previous = next;
  }
  EXPECT_EQ(control_.Tick(), absl::InfiniteDuration()) << "the ramp is over";
  EXPECT_EQ(previous->table_weights(), (std::vector<uint32_t>{1, 1, 1, 1}));
  const Moves back = Compare(*all_up, *previous);
  EXPECT_EQ(back.moved, 0) << "at full weight the table is the one before the ramp";
}

TEST_F(SlowStartControlTest, MaintEnableRampsDrainDoesNotDownEndsTheRamp) {
  control_.SetAdmin(1, AdminState::kDrain);
  control_.SetAdmin(1, AdminState::kReady);
  EXPECT_EQ(control_.Tick(), absl::InfiniteDuration()) << "a drained backend had kept its weight";
  control_.SetAdmin(2, AdminState::kMaint);
  EXPECT_EQ(control_.Tick(), absl::InfiniteDuration());
  now_ += absl::Seconds(30);
  control_.SetAdmin(2, AdminState::kReady);
  EXPECT_EQ(publisher_.Current()->table_weights()[2], 1000u) << "enabled from MAINT: a tenth";
  now_ += absl::Seconds(3);
  control_.Tick();
  EXPECT_EQ(publisher_.Current()->table_weights()[2], 3700u);
  // DOWN mid-ramp: the ramp ends (its clients are re-picked anyway)...
  control_.SetHealth({true, true, false, true});
  EXPECT_EQ(publisher_.Current()->table_weights(), (std::vector<uint32_t>{1, 1, 1, 1}));
  EXPECT_EQ(control_.Tick(), absl::InfiniteDuration());
  // ...and UP again starts a new one from a tenth.
  now_ += absl::Seconds(1);
  control_.SetHealth({true, true, true, true});
  EXPECT_EQ(publisher_.Current()->table_weights()[2], 1000u);
  // A backend in MAINT that comes UP does not ramp until enabled.
  control_.SetAdmin(0, AdminState::kMaint);
  control_.SetHealth({false, true, true, true});
  control_.SetHealth({true, true, true, true});
  EXPECT_FALSE(control_.RampsSince()[0].has_value());
}

TEST_F(SlowStartControlTest, AWeightChangeMidRampRampsTowardTheNewWeight) {
  control_.SetHealth({true, false, true, true});
  control_.SetHealth({true, true, true, true});
  ASSERT_TRUE(control_.SetWeight(1, 4).ok());
  // Scaled by 10000 / 4: the others 2500, backend 1 a tenth of 4 x 2500.
  EXPECT_EQ(publisher_.Current()->table_weights(), (std::vector<uint32_t>{2500, 1000, 2500, 2500}));
  EXPECT_EQ(publisher_.Current()->backends()[1].weight, 4u);
  now_ += absl::Seconds(10);
  control_.Tick();
  EXPECT_EQ(publisher_.Current()->table_weights(), (std::vector<uint32_t>{1, 4, 1, 1}));
}

TEST_F(SlowStartControlTest, StartRampsGoesOnFromWhereTheRampWas) {
  // A reload: backend 0 was 4 s into its ramp, backend 2 is new, the others had none.
  control_.StartRamps({now_ - absl::Seconds(4), std::nullopt, now_, std::nullopt});
  const std::vector<uint32_t> weights = publisher_.Current()->table_weights();
  EXPECT_EQ(weights[0], 4600u);  // step 4: 46 %
  EXPECT_EQ(weights[1], 10000u);
  EXPECT_EQ(weights[2], 1000u);
  EXPECT_EQ(control_.RampsSince()[0], now_ - absl::Seconds(4));
  EXPECT_FALSE(control_.RampsSince()[1].has_value());
  // A DOWN backend does not ramp until it is UP.
  control_.SetHealth({true, true, true, false});
  control_.StartRamps({std::nullopt, std::nullopt, std::nullopt, now_});
  EXPECT_FALSE(control_.RampsSince()[3].has_value());
}

}  // namespace
}  // namespace l4lb::backend
