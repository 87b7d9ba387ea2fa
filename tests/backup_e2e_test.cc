// Backup backends and slow start end to end: the built l4lb in front of real
// nginx backends on 127.0.0.2-4, each answering its own name, and clients from
// distinct loopback addresses (the hash key). A backup gets clients only while
// both primaries are DOWN, and new clients go back to a primary as soon as one
// is UP; a backend that comes back with slow_start="3s" gets a small share of
// new clients at first and its fair share once the ramp is over.

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

#include "tests/harness/http_client.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

using nlohmann::json;

const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

class BackupTest : public ::testing::Test {
 protected:
  // nginx on every host; l4lb with `backends_suffix[i]` after each backend and `flags`.
  void Start(const std::vector<std::string>& suffix, const std::vector<std::string>& flags) {
    port_ = FreePortOnAll(kHosts);
    for (const std::string& host : kHosts) {
      absl::StatusOr<Server> nginx = StartNginx(host, port_, host + "\n");
      ASSERT_TRUE(nginx.ok()) << nginx.status();
      nginx_.push_back(*std::move(nginx));
    }
    admin_port_ = FreePortOnAll({"127.0.0.1"});
    std::vector<std::string> backends;
    for (size_t i = 0; i < kHosts.size(); ++i) {
      backends.push_back(absl::StrCat(kHosts[i], ":", port_, suffix[i]));
    }
    std::vector<std::string> argv = {"--listen=127.0.0.1:0",
                                     "--threads=2",
                                     "--backends=" + absl::StrJoin(backends, ","),
                                     "--health_check=tcp",
                                     "--health_interval=200ms",
                                     "--health_timeout=150ms",
                                     absl::StrCat("--admin=127.0.0.1:", admin_port_)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(argv);
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  // The name of the backend that answered a GET from `source` through l4lb, or "".
  std::string Fetch(const std::string& source) {
    const int fd = ConnectTcp("127.0.0.1", l4lb_->port(), source);
    if (fd < 0) return "";
    SetRecvTimeout(fd, absl::Seconds(3));
    SendAll(fd, "GET / HTTP/1.0\r\nHost: t\r\n\r\n");
    const std::string reply = ReadToEof(fd);
    close(fd);
    const size_t body = reply.find("\r\n\r\n");
    return body == std::string::npos ? "" : reply.substr(body + 4);
  }
  // Which backends `n` new clients (127.0.BASE.1 ...) reach, by index; the last
  // entry counts clients nobody served.
  std::vector<int> Spread(int base, int n) {
    std::vector<int> hits(kHosts.size() + 1);
    for (int c = 0; c < n; ++c) {
      const std::string body = Fetch(absl::StrCat("127.0.", base, ".", c + 1));
      size_t i = 0;
      while (i < kHosts.size() && body != kHosts[i] + "\n") ++i;
      ++hits[i];
    }
    return hits;
  }
  json Backend(int i) {
    const json status = json::parse(Http("GET", admin_port_, "/status").body, nullptr, false);
    if (!status.is_object()) return nullptr;
    for (const json& b : status["services"][0]["backends"]) {
      if (b["name"] == absl::StrCat(kHosts[i], ":", port_)) return b;
    }
    return nullptr;
  }
  bool StateIs(int i, const char* state) {
    const json b = Backend(i);
    return b.is_object() && b["state"] == state;
  }
  void Restart(int i) {
    absl::StatusOr<Server> nginx = StartNginx(kHosts[i], port_, kHosts[i] + "\n");
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_[i] = *std::move(nginx);
  }

  std::vector<Server> nginx_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(BackupTest, TheBackupServesOnlyWhileBothPrimariesAreDown) {
  Start({"", "", "@backup"}, {});
  EXPECT_EQ(Backend(2)["backup"], true);
  EXPECT_EQ(Backend(0)["backup"], false);
  std::vector<int> hits = Spread(1, 60);
  EXPECT_EQ(hits[2], 0) << "the backup got a client while both primaries are UP";
  EXPECT_GT(hits[0], 10);
  EXPECT_GT(hits[1], 10);
  EXPECT_EQ(hits[3], 0) << "clients not served";

  // One primary gone: the other takes everyone, still not the backup.
  nginx_[0].process->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return StateIs(0, "DOWN"); }));
  hits = Spread(2, 30);
  EXPECT_EQ(hits[1], 30) << hits[0] << "/" << hits[1] << "/" << hits[2] << "/" << hits[3];

  // Both gone: the backup, once health says DOWN.
  nginx_[1].process->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return StateIs(1, "DOWN"); }));
  hits = Spread(3, 30);
  EXPECT_EQ(hits[2], 30) << hits[0] << "/" << hits[1] << "/" << hits[2] << "/" << hits[3];
  EXPECT_TRUE(l4lb_->HasLine("no primary backend takes new clients", "backup(s) do"));

  // A primary back: new clients go to it again, none to the backup.
  Restart(1);
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return StateIs(1, "UP"); }));
  hits = Spread(4, 30);
  EXPECT_EQ(hits[1], 30) << hits[0] << "/" << hits[1] << "/" << hits[2] << "/" << hits[3];
}

TEST_F(BackupTest, SlowStartGrowsTheShareOfABackendThatCameBack) {
  Start({"", "", ""}, {"--slow_start=3s"});
  std::vector<int> hits = Spread(10, 100);
  EXPECT_EQ(hits[3], 0);
  const int fair = hits[2];  // backend 2's share of these clients at full weight
  EXPECT_GT(fair, 20) << "about a third";

  nginx_[2].process->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return StateIs(2, "DOWN"); }));
  Restart(2);
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return StateIs(2, "UP"); }));
  const absl::Time up = absl::Now();
  EXPECT_TRUE(l4lb_->HasLine("slow start, 10% of its weight", "all of it in 3s"));
  absl::SleepFor(up + absl::Milliseconds(500) - absl::Now());
  // The same 100 clients as before: the ones backend 2 takes now are a subset of
  // its fair share. At 0.5 s it is at step 1 of 10 (19 % of its weight): about
  // 0.19 / 2.19 = 9 % of the clients, against a third.
  const std::vector<int> early = Spread(10, 100);
  const absl::Duration early_took = absl::Now() - up;
  absl::SleepFor(up + absl::Seconds(4) - absl::Now());
  const std::vector<int> late = Spread(10, 100);
  std::printf("backend 2 (fair share %d of 100): %d at 0.5 s (sampled until %s), %d at 4 s\n", fair,
              early[2], absl::FormatDuration(early_took).c_str(), late[2]);
  EXPECT_EQ(early[3] + late[3], 0) << "clients not served";
  EXPECT_GT(early[2], 0) << "a ramping backend takes some clients";
  EXPECT_LT(early[2], fair / 2) << "too many at first: no ramp";
  EXPECT_EQ(late[2], fair) << "after the ramp: exactly the clients it had before";
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb_->HasLine("slow start over", "all of its weight"); }));
}

}  // namespace
}  // namespace l4lb::testing
