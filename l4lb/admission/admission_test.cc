#include "l4lb/admission/admission.h"

#include "gtest/gtest.h"

#include "l4lb/net/address.h"

namespace l4lb::admission {
namespace {

std::array<uint8_t, 16> Ip(const std::string& ip) {
  return net::SocketAddress::Parse(ip + ":1")->IpBytes16();
}

TEST(AdmissionTest, NothingConfiguredIsOpen) {
  Admission gate({});
  EXPECT_TRUE(gate.open());
  Admission::Pass pass;
  EXPECT_EQ(gate.Decide(Ip("192.0.2.1"), 0, &pass), Refusal::kNone);
}

TEST(AdmissionTest, DenyComesFirstThenLimitsThenTheServiceBound) {
  Admission gate({.allow = {},
                  .deny = *ParseCidrList("192.0.2.0/24"),
                  .max_connections = 3,
                  .client = {.max_connections = 2}});
  EXPECT_FALSE(gate.open());
  Admission::Pass a, b, c, d, e;
  EXPECT_EQ(gate.Decide(Ip("192.0.2.9"), 0, &e), Refusal::kDenied);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.1"), 0, &a), Refusal::kNone);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.1"), 0, &b), Refusal::kNone);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.1"), 0, &e), Refusal::kLimited) << "per client";
  EXPECT_EQ(gate.Decide(Ip("198.51.100.2"), 0, &c), Refusal::kNone);
  EXPECT_EQ(gate.live(), 3u);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.3"), 0, &d), Refusal::kLimited) << "the service bound";
  gate.Leave(Ip("198.51.100.1"), a);
  EXPECT_EQ(gate.live(), 2u);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.3"), 0, &d), Refusal::kNone);
  // A refusal by the service bound gives the client's place back.
  EXPECT_EQ(gate.Decide(Ip("198.51.100.1"), 0, &e), Refusal::kLimited);
  gate.Leave(Ip("198.51.100.1"), b);
  gate.Leave(Ip("198.51.100.2"), c);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.1"), 0, &a), Refusal::kNone);
  EXPECT_EQ(gate.Decide(Ip("198.51.100.1"), 0, &b), Refusal::kNone);
}

TEST(AdmissionTest, BansAreTheirOwnRefusal) {
  Admission gate({.client = {.rate = 1, .burst = 1, .ban_after = 2}});
  Admission::Pass p;
  EXPECT_EQ(gate.Decide(Ip("203.0.113.5"), 0, &p), Refusal::kNone);
  EXPECT_EQ(gate.Decide(Ip("203.0.113.5"), 1, &p), Refusal::kLimited);
  EXPECT_EQ(gate.Decide(Ip("203.0.113.5"), 2, &p), Refusal::kBanned);
  EXPECT_EQ(gate.Decide(Ip("203.0.113.6"), 3, &p), Refusal::kNone);
  EXPECT_STREQ(RefusalName(Refusal::kBanned), "banned");
}

TEST(AdmissionTest, AdminBansWorkWithoutClientLimitsAndExpire) {
  constexpr int64_t kS = 1'000'000'000;
  Admission gate({});
  ASSERT_TRUE(gate.open());
  gate.Ban(Ip("192.0.2.7"), absl::Seconds(10), 0);
  EXPECT_FALSE(gate.open()) << "the worker must ask from now on";
  Admission::Pass pass;
  EXPECT_EQ(gate.Decide(Ip("192.0.2.7"), 5 * kS, &pass), Refusal::kBanned);
  EXPECT_EQ(gate.Decide(Ip("192.0.2.8"), 5 * kS, &pass), Refusal::kNone);
  EXPECT_EQ(gate.Decide(Ip("192.0.2.7"), 11 * kS, &pass), Refusal::kNone) << "expired";
  gate.Ban(Ip("[2001:db8::1]"), absl::Hours(1), 20 * kS);
  EXPECT_EQ(gate.Decide(Ip("[2001:db8::1]"), 21 * kS, &pass), Refusal::kBanned);
  EXPECT_TRUE(gate.Unban(Ip("[2001:db8::1]"), 22 * kS));
  EXPECT_FALSE(gate.Unban(Ip("[2001:db8::1]"), 22 * kS)) << "not banned any more";
  EXPECT_EQ(gate.Decide(Ip("[2001:db8::1]"), 23 * kS, &pass), Refusal::kNone);
}

TEST(AdmissionTest, ConnectionBudgetLeavesRoomForPipes) {
  EXPECT_EQ(ConnectionBudget(20'000, 100, false), 6633u);
  EXPECT_EQ(ConnectionBudget(20'000, 100, true), 3316u) << "UDP sessions keep half";
  EXPECT_EQ(ConnectionBudget(50, 100, false), 1u) << "never 0: that would refuse everyone";
}

TEST(AdmissionTest, ParseBandwidth) {
  EXPECT_EQ(*ParseBandwidth("10MiB/s"), 10u << 20);
  EXPECT_EQ(*ParseBandwidth("500KB/s"), 500'000u);
  EXPECT_EQ(*ParseBandwidth("1G"), 1'000'000'000u);
  EXPECT_EQ(*ParseBandwidth("1.5MiB"), 3u << 19);
  EXPECT_EQ(*ParseBandwidth("1000000"), 1'000'000u);
  EXPECT_EQ(*ParseBandwidth("8192B/s"), 8192u);
  for (const char* bad : {"", "/s", "10MiB/m", "-1M", "0", "x", "10 MiB", "1TiB", "100", "1e300"}) {
    EXPECT_FALSE(ParseBandwidth(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseBandwidth("10MiB/m").status().message(),
            "\"10MiB/m\": bytes per second: the unit after / must be s");
}

TEST(AdmissionTest, ParseRate) {
  EXPECT_DOUBLE_EQ(*ParseRate("20/s"), 20);
  EXPECT_DOUBLE_EQ(*ParseRate("600/m"), 10);
  EXPECT_DOUBLE_EQ(*ParseRate("3600/h"), 1);
  EXPECT_DOUBLE_EQ(*ParseRate("0.5/s"), 0.5);
  for (const char* bad : {"", "20", "20/", "/s", "0/s", "-1/s", "20/d", "x/s", "nan/s", "1e99/s"}) {
    EXPECT_FALSE(ParseRate(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseRate("20/d").status().message(), "\"20/d\": the unit after / must be s, m or h");
}

}  // namespace
}  // namespace l4lb::admission
