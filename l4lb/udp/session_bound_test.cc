#include "l4lb/udp/session_bound.h"

#include "gtest/gtest.h"

namespace l4lb::udp {
namespace {

TEST(SessionBoundTest, TheNarrowerOfFdsAndPortsSplitOverWorkersAndServices) {
  // The host: 1,000 local ports, 20,000 fds, one worker, one UDP service.
  const SessionBound one = DeriveSessionBound(
      {.open_files = 20000, .reserved_fds = 100, .local_ports = 1000, .workers = 1});
  EXPECT_EQ(one.by_fds, 19900u);
  EXPECT_EQ(one.by_ports, 1000u);
  EXPECT_EQ(one.Apply(100000), 1000u) << "the default flag is above what the ports allow";

  const SessionBound split = DeriveSessionBound({.open_files = 20000,
                                                 .reserved_fds = 100,
                                                 .tcp_services = true,
                                                 .local_ports = 28232,
                                                 .workers = 2,
                                                 .udp_services = 2});
  EXPECT_EQ(split.by_fds, 19900u / 2 / 4) << "half for TCP, a quarter of that each";
  EXPECT_EQ(split.by_ports, 28232u / 4);
  EXPECT_EQ(split.Apply(100000), 19900u / 2 / 4);
}

TEST(SessionBoundTest, TheFlagOnlyLowersIt) {
  const SessionBound bound = DeriveSessionBound(
      {.open_files = 1 << 20, .reserved_fds = 100, .local_ports = 28232, .workers = 1});
  EXPECT_EQ(bound.Apply(500), 500u);
  EXPECT_EQ(bound.Apply(10'000'000), 28232u);
}

TEST(SessionBoundTest, AnUnknownRangeIsNoBoundAndNothingLeftIsStillOne) {
  const SessionBound unknown =
      DeriveSessionBound({.open_files = 1000, .reserved_fds = 100, .local_ports = 0});
  EXPECT_EQ(unknown.Apply(100000), 900u);
  const SessionBound none =
      DeriveSessionBound({.open_files = 50, .reserved_fds = 100, .local_ports = 1000});
  EXPECT_EQ(none.by_fds, 0u);
  EXPECT_EQ(none.Apply(100000), 1u) << "a session needs at least one socket to exist";
}

TEST(SessionBoundTest, ReadHostLimitsFindsTheOpenFilesLimitAndThePortRange) {
  SessionBoundInputs in;
  const absl::Status status = ReadHostLimits(in);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_GT(in.open_files, 0u);
  EXPECT_GT(in.local_ports, 0u);
}

}  // namespace
}  // namespace l4lb::udp
