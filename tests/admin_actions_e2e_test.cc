// The admin API's actions end to end: the built l4lb with --admin in front of
// three real nginx backends, real curl clients from distinct loopback addresses.
// A backend drained in the middle of a 200 MiB download finishes that download
// byte-exact while no new client reaches it; enable brings clients back; MAINT
// and weights; bans and unbans; bad requests get 400/404 with a reason.

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/http_client.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kBigBytes = 200ull << 20;
const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// curl with `method` on the admin endpoint: a real HTTP client.
struct Reply : HttpReply {
  json Json() const { return json::parse(body, nullptr, /*allow_exceptions=*/false); }
};
Reply Call(const std::string& method, uint16_t port, const std::string& path) {
  return {Http(method, port, path)};
}

class AdminActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const uint16_t port = FreePortOnAll(kHosts);
    for (const std::string& host : kHosts) {
      absl::StatusOr<Server> nginx = StartNginx(host, port, host + "\n");
      ASSERT_TRUE(nginx.ok()) << nginx.status();
      nginx_.push_back(*std::move(nginx));
    }
    backend_port_ = port;
    admin_port_ = FreePortOnAll({"127.0.0.1"});
    std::string backends = "--backends=";
    for (const std::string& host : kHosts) backends += absl::StrCat(host, ":", port, ",");
    backends.pop_back();
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
        L4lb::Start({"--listen=127.0.0.1:0", "--threads=2", backends, "--health_check=tcp",
                     "--health_interval=200ms", "--health_timeout=150ms",
                     absl::StrCat("--admin=127.0.0.1:", admin_port_)});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
    // The flag-defined service is named by its first --listen, as written.
    service_ = Call("GET", admin_port_, "/status").Json()["services"][0]["name"];
    ASSERT_EQ(service_, "127.0.0.1:0");
  }

  std::string BackendPath(int i, const std::string& verb) {
    return absl::StrCat("/services/", service_, "/backends/", kHosts[i], ":", backend_port_, "/",
                        verb);
  }
  // The body nginx `i` serves at /, through l4lb, from `source`: its host name.
  std::string Fetch(const std::string& source) {
    const CommandResult r =
        RunCommand({"curl", "-s", "-m", "5", "--interface", source,
                    absl::StrCat("http://127.0.0.1:", l4lb_->port(), "/")},
                   absl::Seconds(10));
    return r.exit_code == 0 ? r.out : "";
  }
  // Which backends 60 new clients (distinct addresses) reach, by index.
  std::vector<int> Spread(int base) {
    std::vector<int> hits(kHosts.size());
    for (int c = 0; c < 60; ++c) {
      const std::string body = Fetch(absl::StrCat("127.0.", base, ".", c + 1));
      for (size_t i = 0; i < kHosts.size(); ++i) hits[i] += body == kHosts[i] + "\n";
    }
    return hits;
  }
  json BackendStatus(int i) {
    const json status = Call("GET", admin_port_, "/status").Json();
    for (const json& b : status["services"][0]["backends"]) {
      if (b["name"] == absl::StrCat(kHosts[i], ":", backend_port_)) return b;
    }
    return nullptr;
  }

  std::vector<Server> nginx_;
  uint16_t backend_port_ = 0;
  uint16_t admin_port_ = 0;
  std::string service_;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(AdminActionsTest, DrainDuringA200MiBDownloadFinishesItAndSendsNobodyNew) {
  for (Server& n : nginx_) WriteRandomFile(n.files + "/big", kBigBytes, 11);
  const std::string want = TempDir() + "/big.want";
  WriteRandomFile(want, kBigBytes, 11);
  const std::string got = TempDir() + "/big.got";
  // Slow enough to still be running after the drain and the new clients below.
  CommandResult download;
  std::thread client;
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{client};
  client = std::thread([&] {
    download = RunCommand({"curl", "-sS", "-m", "120", "--limit-rate", "20M", "--interface",
                           "127.0.40.1", "-o", got,
                           absl::StrCat("http://127.0.0.1:", l4lb_->port(), "/big")},
                          absl::Seconds(130));
  });
  // The backend carrying it: the one with an active connection.
  int carrier = -1;
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    for (int i = 0; i < 3; ++i) {
      const json b = BackendStatus(i);
      if (b.is_object() && b["active_connections"] == 1) carrier = i;
    }
    return carrier >= 0;
  }));
  const Reply drained = Call("POST", admin_port_, BackendPath(carrier, "drain"));
  ASSERT_EQ(drained.code, 200) << drained.body;
  EXPECT_EQ(drained.Json()["state"], "DRAIN") << drained.body;
  const std::vector<int> while_drained = Spread(41);
  EXPECT_EQ(while_drained[carrier], 0) << "a new client reached the drained backend";
  EXPECT_EQ(while_drained[0] + while_drained[1] + while_drained[2], 60) << "all served";
  EXPECT_EQ(BackendStatus(carrier)["state"], "DRAIN");
  EXPECT_EQ(BackendStatus(carrier)["active_connections"], 1) << "the download goes on";
  client.join();
  ASSERT_EQ(download.exit_code, 0) << download.err;
  EXPECT_EQ(RunCommand({"cmp", want, got}, absl::Seconds(30)).exit_code, 0) << "not byte-exact";
  unlink(got.c_str());
  unlink(want.c_str());
  // Enable: new clients reach it again.
  const Reply enabled = Call("POST", admin_port_, BackendPath(carrier, "enable"));
  ASSERT_EQ(enabled.code, 200) << enabled.body;
  EXPECT_EQ(enabled.Json()["state"], "UP");
  EXPECT_GT(Spread(42)[carrier], 5);
}

TEST_F(AdminActionsTest, MaintWeightBansAndBadRequests) {
  // MAINT: nobody new; checks paused, so a stopped server stays MAINT, not DOWN.
  Reply r = Call("POST", admin_port_, BackendPath(2, "maint"));
  ASSERT_EQ(r.code, 200) << r.body;
  EXPECT_EQ(r.Json()["state"], "MAINT");
  nginx_[2].process->Stop(SIGTERM, absl::Seconds(5));
  absl::SleepFor(absl::Seconds(1));  // five check intervals
  EXPECT_EQ(BackendStatus(2)["state"], "MAINT");
  EXPECT_EQ(Spread(43)[2], 0);
  // Enabled with the server gone: the resumed checks find it DOWN.
  EXPECT_EQ(Call("POST", admin_port_, BackendPath(2, "enable")).code, 200);
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return BackendStatus(2)["state"] == "DOWN"; }));
  // Weight: 1 -> 8 on backend 0 gives it most of the new clients (8 of 9 shares).
  r = Call("POST", admin_port_, BackendPath(0, "weight?value=8"));
  ASSERT_EQ(r.code, 200) << r.body;
  EXPECT_EQ(r.Json()["weight"], 8);
  EXPECT_EQ(BackendStatus(0)["weight"], 8);
  const std::vector<int> weighted = Spread(44);
  EXPECT_GT(weighted[0], 40) << weighted[0] << "/" << weighted[1];
  // Bans, across services, expiring and lifted by hand.
  ASSERT_FALSE(Fetch("127.0.45.1").empty());
  r = Call("POST", admin_port_, "/bans/127.0.45.1?time=1h");
  ASSERT_EQ(r.code, 200) << r.body;
  EXPECT_EQ(r.Json()["banned"], true);
  EXPECT_EQ(Fetch("127.0.45.1"), "") << "a banned client was served";
  EXPECT_FALSE(Fetch("127.0.45.2").empty()) << "only that client";
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb_->HasLine("client=127.0.45.1:", "close=banned"); }));
  r = Call("DELETE", admin_port_, "/bans/127.0.45.1");
  ASSERT_EQ(r.code, 200) << r.body;
  EXPECT_FALSE(Fetch("127.0.45.1").empty()) << "unbanned";
  EXPECT_EQ(Call("POST", admin_port_, "/bans/127.0.45.3?time=1s").code, 200);
  EXPECT_EQ(Fetch("127.0.45.3"), "");
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_FALSE(Fetch("127.0.45.3").empty()) << "the ban expired";
  // Bad requests: a reason, never a change.
  struct Bad {
    std::string method, path;
    int code;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"POST", BackendPath(0, "weight?value=zero"), 400},
           {"POST", BackendPath(0, "weight"), 400},
           {"POST", BackendPath(0, "weight?value=0"), 400},
           {"POST", BackendPath(0, "explode"), 400},
           {"POST", absl::StrCat("/services/", service_, "/backends/10.9.9.9:1/drain"), 404},
           {"POST", "/services/nope/backends/10.0.0.1:80/drain", 404},
           {"POST", "/bans/not-an-address?time=1m", 400},
           {"POST", "/bans/127.0.45.4?time=forever", 400},
       }) {
    r = Call(bad.method, admin_port_, bad.path);
    EXPECT_EQ(r.code, bad.code) << bad.method << " " << bad.path << ": " << r.body;
    EXPECT_TRUE(r.Json().contains("error")) << r.body;
  }
  EXPECT_EQ(BackendStatus(0)["weight"], 8) << "a bad request changed something";
  // Actions are POST: a GET changes nothing.
  EXPECT_NE(Call("GET", admin_port_, BackendPath(1, "drain")).code, 200);
  EXPECT_EQ(BackendStatus(1)["state"], "UP");
}

}  // namespace
}  // namespace l4lb::testing
