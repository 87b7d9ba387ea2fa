#include "l4lb/backend/slow_start.h"

#include "gtest/gtest.h"

#include "l4lb/backend/snapshot.h"
#include "l4lb/backend/test_backends.h"

namespace l4lb::backend {
namespace {

TEST(SlowStartTest, TenEqualStepsFromATenthToAllOfTheWeight) {
  const SlowStart ramp(absl::Seconds(30));
  EXPECT_EQ(ramp.Step(absl::ZeroDuration()), 0);
  EXPECT_EQ(ramp.Step(absl::Milliseconds(2999)), 0);
  EXPECT_EQ(ramp.Step(absl::Seconds(3)), 1);
  EXPECT_EQ(ramp.Step(absl::Milliseconds(29999)), 9);
  EXPECT_EQ(ramp.Step(absl::Seconds(30)), SlowStart::kSteps);
  EXPECT_EQ(ramp.Step(absl::Hours(1)), SlowStart::kSteps);
  EXPECT_DOUBLE_EQ(SlowStart::Fraction(0), 0.1);
  EXPECT_DOUBLE_EQ(SlowStart::Fraction(5), 0.55);
  EXPECT_DOUBLE_EQ(SlowStart::Fraction(SlowStart::kSteps), 1.0);
  EXPECT_EQ(ramp.NextStepAt(absl::ZeroDuration()), absl::Seconds(3));
  EXPECT_EQ(ramp.NextStepAt(absl::Milliseconds(3001)), absl::Seconds(6));
  EXPECT_EQ(ramp.NextStepAt(absl::Seconds(29)), absl::Seconds(30));
  EXPECT_EQ(ramp.NextStepAt(absl::Seconds(30)), absl::InfiniteDuration());
  // Off: every backend has all of its weight at once.
  EXPECT_FALSE(SlowStart(absl::ZeroDuration()).enabled());
  EXPECT_EQ(SlowStart(absl::ZeroDuration()).Step(absl::ZeroDuration()), SlowStart::kSteps);
}

TEST(SlowStartTest, WeightsAreScaledWhileARampRuns) {
  const std::vector<BackendSpec> backends = Backends(3);
  const int none[] = {SlowStart::kSteps, SlowStart::kSteps, SlowStart::kSteps};
  EXPECT_EQ(SlowStart::TableWeights(backends, none), (std::vector<uint32_t>{1, 1, 1}));
  // Weight 1 cannot be a tenth: everyone is scaled by 10000 / (heaviest weight).
  const int first[] = {SlowStart::kSteps, SlowStart::kSteps, 0};
  EXPECT_EQ(SlowStart::TableWeights(backends, first), (std::vector<uint32_t>{10000, 10000, 1000}));
  const int fifth[] = {SlowStart::kSteps, SlowStart::kSteps, 5};
  EXPECT_EQ(SlowStart::TableWeights(backends, fifth), (std::vector<uint32_t>{10000, 10000, 5500}));
  // The heaviest at kMaxWeight leaves no room to scale: a weight-1 ramp stays at 1.
  std::vector<BackendSpec> heavy = Backends(2);
  heavy[0].weight = kMaxWeight;
  const int light_ramps[] = {SlowStart::kSteps, 0};
  EXPECT_EQ(SlowStart::TableWeights(heavy, light_ramps), (std::vector<uint32_t>{kMaxWeight, 1}));
}

// Why the scaling is free: Maglev's apportionment depends on weight ratios only,
// so weights all multiplied by one factor give the very same table.
TEST(SlowStartTest, ScaledWeightsGiveTheSameTable) {
  std::vector<BackendSpec> backends = Backends(7);
  backends[2].weight = 3;
  backends[5].weight = 2;
  std::vector<uint32_t> scaled;
  for (const BackendSpec& b : backends) scaled.push_back(b.weight * 3333);
  const auto plain = BackendSnapshot::Build(backends, {}, {});
  const auto times = BackendSnapshot::Build(backends, {}, {}, scaled);
  ASSERT_TRUE(plain.ok() && times.ok());
  for (uint64_t key = 0; key < 65537; ++key) {
    ASSERT_EQ((*plain)->Pick(key, {}), (*times)->Pick(key, {})) << "slot " << key;
  }
}

}  // namespace
}  // namespace l4lb::backend
