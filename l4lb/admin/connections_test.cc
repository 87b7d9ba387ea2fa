#include "l4lb/admin/connections.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace l4lb::admin {
namespace {

TEST(ConnectionsTest, OneObjectPerConnectionWithItsServiceName) {
  ConnectionsView v;
  v.services = {"web", "ftp"};
  v.truncated = true;
  v.connections.push_back({.service = 1,
                           .client = "192.0.2.7:51234",
                           .backend = "10.0.0.1:21",
                           .state = "relaying",
                           .age = absl::Milliseconds(1500),
                           .bytes_up = 12,
                           .bytes_down = 900});
  v.connections.push_back({.service = 0,
                           .client = "192.0.2.8:1",
                           .backend = "",
                           .state = "connecting",
                           .age = absl::ZeroDuration(),
                           .bytes_up = 0,
                           .bytes_down = 0});
  const nlohmann::json j = nlohmann::json::parse(RenderConnections(v));
  EXPECT_EQ(j["truncated"], true);
  ASSERT_EQ(j["connections"].size(), 2u);
  EXPECT_EQ(j["connections"][0]["service"], "ftp");
  EXPECT_EQ(j["connections"][0]["backend"], "10.0.0.1:21");
  EXPECT_DOUBLE_EQ(j["connections"][0]["age_seconds"].get<double>(), 1.5);
  EXPECT_EQ(j["connections"][0]["bytes_down"], 900);
  EXPECT_TRUE(j["connections"][1]["backend"].is_null());
  EXPECT_EQ(j["connections"][1]["state"], "connecting");
}

}  // namespace
}  // namespace l4lb::admin
