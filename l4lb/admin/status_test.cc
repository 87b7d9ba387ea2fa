#include "l4lb/admin/status.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

#include "l4lb/admin/test_view.h"

namespace l4lb::admin {
namespace {

using nlohmann::json;

TEST(StatusTest, ListsEveryBackendWithStateWeightAndCounts) {
  const json j = json::parse(RenderStatus(TestView(), nullptr));
  ASSERT_EQ(j["services"].size(), 1u);
  const json& s = j["services"][0];
  EXPECT_EQ(s["name"], "web");
  EXPECT_EQ(s["refused"]["banned"], 1);
  ASSERT_EQ(s["backends"].size(), 2u);
  EXPECT_EQ(s["backends"][0]["name"], "10.0.0.1:80");
  EXPECT_EQ(s["backends"][0]["state"], "UP");
  EXPECT_EQ(s["backends"][0]["connections_total"], 3);
  EXPECT_EQ(s["backends"][0]["bytes"]["down"], 900);
  EXPECT_EQ(s["backends"][1]["state"], "DOWN");
  EXPECT_EQ(s["backends"][1]["weight"], 3);
  EXPECT_DOUBLE_EQ(s["backends"][1]["seconds_since_state_change"].get<double>(), 10.0);
  EXPECT_TRUE(s["backends"][0]["last_check"].is_null());  // no probes in TestView
  EXPECT_TRUE(s["backends"][0]["dns_name"].is_null()) << "an address, not a name";
  EXPECT_FALSE(j.contains("dns_refreshes"));
}

TEST(StatusTest, NamedBackendsSayTheirNameAndRefreshesAreCounted) {
  View v = TestView();
  v.services[0].backends[1].dns_name = "web.farm.internal";
  v.dns_refreshes = DnsRefreshes{.changed = 1, .unchanged = 5, .failure = 2};
  const json j = json::parse(RenderStatus(v, nullptr));
  EXPECT_EQ(j["services"][0]["backends"][1]["dns_name"], "web.farm.internal");
  EXPECT_EQ(j["dns_refreshes"]["changed"], 1);
  EXPECT_EQ(j["dns_refreshes"]["failure"], 2);
}

TEST(StatusTest, ThroughputIsMeasuredFromThePreviousView) {
  View before = TestView();
  View now = TestView();
  now.now = before.now + absl::Seconds(2);
  now.services[0].backends[0].counters.bytes_down += 4000;
  const json j = json::parse(RenderStatus(now, &before));
  const json& t = j["services"][0]["backends"][0]["throughput_bytes_per_second"];
  EXPECT_DOUBLE_EQ(t["down"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(t["up"].get<double>(), 0.0);
  // Without a previous view: since start (10 s): 900 bytes down.
  const json first = json::parse(RenderStatus(TestView(), nullptr));
  EXPECT_DOUBLE_EQ(
      first["services"][0]["backends"][0]["throughput_bytes_per_second"]["down"].get<double>(),
      90.0);
}

TEST(StatusTest, LastCheckShowsResultAgeAndReason) {
  View v = TestView();
  auto& h = v.services[0].backends[1].health;
  h.probed = true;
  h.failed = 4;
  h.last_ok = false;
  h.last_reason = "connect: Connection refused";
  h.last_check = v.now - absl::Milliseconds(500);
  h.last_duration = absl::Microseconds(250);
  const json j = json::parse(RenderStatus(v, nullptr));
  const json& c = j["services"][0]["backends"][1]["last_check"];
  EXPECT_EQ(c["result"], "fail");
  EXPECT_EQ(c["reason"], "connect: Connection refused");
  EXPECT_DOUBLE_EQ(c["age_seconds"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(c["duration_seconds"].get<double>(), 0.00025);
}

TEST(StatusTest, InvalidUtf8InANameDoesNotThrow) {
  View v = TestView();
  v.services[0].name = "bad\xff";
  const std::string out = RenderStatus(v, nullptr);
  const json j = json::parse(out);
  EXPECT_EQ(j["services"][0]["name"], "bad\xEF\xBF\xBD");  // U+FFFD
}

}  // namespace
}  // namespace l4lb::admin
