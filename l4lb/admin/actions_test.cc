#include "l4lb/admin/actions.h"

#include "gtest/gtest.h"

#include "nlohmann/json.hpp"

namespace l4lb::admin {
namespace {

constexpr int64_t kS = 1'000'000'000;

class ActionsTest : public ::testing::Test {
 protected:
  ActionsTest()
      : publisher_(*backend::BackendSnapshot::Build(
            *backend::ParseBackendList("10.0.0.1:21,10.0.0.2:21,[2001:db8::3]:21"), {},
            {.maglev_table_size = 1009})),
        control_(&publisher_, {.maglev_table_size = 1009}),
        ftp_({}),
        web_({}),
        actions_({{"ftp", &control_, &ftp_}, {"web", &web_control_, &web_}},
                 [this] { return now_; }) {}

  nlohmann::json Json(const Actions::Answer& a) { return nlohmann::json::parse(a.json); }

  backend::SnapshotPublisher publisher_;
  backend::ServiceControl control_;
  backend::SnapshotPublisher web_publisher_{
      *backend::BackendSnapshot::Build(*backend::ParseBackendList("10.0.1.1:80"), {}, {})};
  backend::ServiceControl web_control_{&web_publisher_, {}};
  admission::Admission ftp_;
  admission::Admission web_;
  int64_t now_ = 100 * kS;
  Actions actions_;
};

TEST_F(ActionsTest, DrainMaintEnableAnswerWithTheNewState) {
  Actions::Answer a = actions_.OnBackend("ftp", "10.0.0.2:21", "drain", "");
  ASSERT_EQ(a.status, 200) << a.json;
  EXPECT_EQ(Json(a)["state"], "DRAIN");
  EXPECT_EQ(Json(a)["backend"], "10.0.0.2:21");
  EXPECT_EQ(publisher_.Current()->admin(1), backend::AdminState::kDrain);
  a = actions_.OnBackend("ftp", "[2001:db8::3]:21", "maint", "");
  EXPECT_EQ(Json(a)["state"], "MAINT");
  EXPECT_EQ(publisher_.Current()->healthy_count(), 1u);
  a = actions_.OnBackend("ftp", "10.0.0.2:21", "enable", "");
  EXPECT_EQ(Json(a)["state"], "UP");
  EXPECT_EQ(Json(a)["admin"], "ready");
  control_.SetHealth({true, false, true});
  EXPECT_EQ(Json(actions_.OnBackend("ftp", "10.0.0.2:21", "enable", ""))["state"], "DOWN");
}

TEST_F(ActionsTest, WeightRebuildsAndBadValuesAre400) {
  Actions::Answer a = actions_.OnBackend("ftp", "10.0.0.1:21", "weight", "5");
  ASSERT_EQ(a.status, 200) << a.json;
  EXPECT_EQ(Json(a)["weight"], 5);
  EXPECT_EQ(publisher_.Current()->backends()[0].weight, 5u);
  for (const char* bad : {"", "0", "x", "-1", "10001", "1.5"}) {
    a = actions_.OnBackend("ftp", "10.0.0.1:21", "weight", bad);
    EXPECT_EQ(a.status, 400) << bad;
    EXPECT_TRUE(Json(a).contains("error")) << a.json;
  }
  EXPECT_EQ(publisher_.Current()->backends()[0].weight, 5u);
}

TEST_F(ActionsTest, UnknownNamesAndVerbsSayWhich) {
  Actions::Answer a = actions_.OnBackend("sftp", "10.0.0.1:21", "drain", "");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(Json(a)["error"], "no service \"sftp\"");
  a = actions_.OnBackend("ftp", "10.0.0.9:21", "drain", "");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(Json(a)["error"], "no backend \"10.0.0.9:21\" in service \"ftp\"");
  a = actions_.OnBackend("ftp", "10.0.0.1:21", "shutdown", "");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(Json(a)["error"], "\"shutdown\": want drain, maint, enable or weight");
}

TEST_F(ActionsTest, BansReachEveryServiceOrOneAndExpire) {
  const auto ip = [](const char* a) { return net::SocketAddress::Parse(a)->IpBytes16(); };
  admission::Admission::Pass pass;
  Actions::Answer a = actions_.Ban("192.0.2.7", "1m", "");
  ASSERT_EQ(a.status, 200) << a.json;
  EXPECT_EQ(Json(a)["services"], nlohmann::json::array({"ftp", "web"}));
  EXPECT_EQ(Json(a)["seconds"], 60);
  EXPECT_EQ(ftp_.Decide(ip("192.0.2.7:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(web_.Decide(ip("192.0.2.7:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(ftp_.Decide(ip("192.0.2.7:1"), now_ + 61 * kS, &pass), admission::Refusal::kNone);
  a = actions_.Ban("2001:db8::9", "", "web");
  ASSERT_EQ(a.status, 200) << a.json;
  EXPECT_EQ(Json(a)["seconds"], 600) << "10m by default";
  EXPECT_EQ(web_.Decide(ip("[2001:db8::9]:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(ftp_.Decide(ip("[2001:db8::9]:1"), now_, &pass), admission::Refusal::kNone);
  a = actions_.Unban("2001:db8::9", "");
  EXPECT_EQ(Json(a)["lifted_in"], nlohmann::json::array({"web"}));
  EXPECT_EQ(web_.Decide(ip("[2001:db8::9]:1"), now_, &pass), admission::Refusal::kNone);
  EXPECT_EQ(actions_.Ban("10.0.0.0/8", "1m", "").status, 400);
  EXPECT_EQ(actions_.Ban("nobody", "1m", "").status, 400);
  EXPECT_EQ(actions_.Ban("192.0.2.1", "forever", "").status, 400);
  EXPECT_EQ(actions_.Ban("192.0.2.1", "-1m", "").status, 400);
  EXPECT_EQ(actions_.Ban("192.0.2.1", "1m", "smtp").status, 404);
}

// A reload gives the services new gates: the API's bans are set there again for
// what is left of their time, lifted ones are not, and actions reach the new
// services.
TEST_F(ActionsTest, RetargetSetsTheBansAgainInTheNextConfigsGates) {
  const auto ip = [](const char* a) { return net::SocketAddress::Parse(a)->IpBytes16(); };
  admission::Admission::Pass pass;
  ASSERT_EQ(actions_.Ban("192.0.2.7", "1m", "").status, 200);
  ASSERT_EQ(actions_.Ban("192.0.2.8", "1m", "web").status, 200);
  ASSERT_EQ(actions_.Ban("192.0.2.9", "1m", "").status, 200);
  ASSERT_EQ(actions_.Unban("192.0.2.9", "ftp").status, 200);  // still banned on web
  ASSERT_EQ(actions_.Ban("192.0.2.10", "10s", "").status, 200);
  ASSERT_EQ(actions_.Ban("192.0.2.11", "1m", "").status, 200);
  ASSERT_EQ(actions_.Unban("192.0.2.11", "").status, 200);
  now_ += 20 * kS;
  admission::Admission ftp2({});
  admission::Admission web2({});
  backend::SnapshotPublisher publisher2(*backend::BackendSnapshot::Build(
      *backend::ParseBackendList("10.0.0.5:21"), {}, {.maglev_table_size = 1009}));
  backend::ServiceControl control2(&publisher2, {.maglev_table_size = 1009});
  actions_.Retarget({{"ftp", &control2, &ftp2}, {"web", &web_control_, &web2}});
  EXPECT_EQ(ftp2.Decide(ip("192.0.2.7:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(web2.Decide(ip("192.0.2.7:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(web2.Decide(ip("192.0.2.7:1"), now_ + 41 * kS, &pass), admission::Refusal::kNone)
      << "the ban keeps its end, not a new minute";
  EXPECT_EQ(ftp2.Decide(ip("192.0.2.8:1"), now_, &pass), admission::Refusal::kNone);
  EXPECT_EQ(web2.Decide(ip("192.0.2.8:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(ftp2.Decide(ip("192.0.2.9:1"), now_, &pass), admission::Refusal::kNone);
  EXPECT_EQ(web2.Decide(ip("192.0.2.9:1"), now_, &pass), admission::Refusal::kBanned);
  EXPECT_EQ(web2.Decide(ip("192.0.2.10:1"), now_, &pass), admission::Refusal::kNone) << "expired";
  EXPECT_EQ(web2.Decide(ip("192.0.2.11:1"), now_, &pass), admission::Refusal::kNone) << "lifted";
  Actions::Answer a = actions_.OnBackend("ftp", "10.0.0.5:21", "drain", "");
  ASSERT_EQ(a.status, 200) << a.json;
  EXPECT_EQ(publisher2.Current()->admin(0), backend::AdminState::kDrain);
  EXPECT_EQ(actions_.OnBackend("ftp", "10.0.0.1:21", "drain", "").status, 404);
}

}  // namespace
}  // namespace l4lb::admin
