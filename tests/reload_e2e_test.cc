// Hot reload of --config end to end: the built l4lb reloaded by SIGHUP and by
// POST /reload in front of real nginx and vsftpd backends with real clients
// (wrk, curl). Twenty reloads under load lose no connection and no byte and
// leak no fd; a broken file changes nothing; without --config there is nothing
// to reload. tests/reload_semantics_e2e_test has what a reload keeps and cuts.

#include <signal.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/http_client.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

#include "tests/reload_fixture.h"

namespace l4lb::testing {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// The test: 20 reloads while wrk opens new connections as fast as it
// can and three FTP downloads run through an unchanged service.

class ReloadUnderLoadTest : public ReloadTest {
 protected:
  static constexpr int kPassive = 10;
  // 32 s at 1 MiB/s, past all reloads. Big because curl 7.88's --limit-rate
  // lets a transfer catch up in bursts of what loopback buffers (~10 MB), then
  // waits: a 4 MiB file at 128 KiB/s took 2 s.
  static constexpr uint64_t kFileBytes = 32ull << 20;

  struct Variant {
    std::vector<std::string> web;  // hosts of the web service's backends
    bool extra = false;            // the extra service and its listener
  };

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ReloadTest::SetUp());
    for (const char* tool : {"/usr/bin/wrk", "/usr/bin/curl", "/usr/sbin/vsftpd"}) {
      ASSERT_EQ(access(tool, X_OK), 0) << tool << " is missing: run tools/setup.sh";
    }
    std::vector<std::string> all = kHosts;
    all.push_back("127.0.0.1");
    // Below the ephemeral range: wrk's thousands of source ports never take
    // the extra listener's port while it is closed between reloads.
    const uint16_t first = FreePortRange(all, kPassive + 2);
    ASSERT_NE(first, 0);
    pasv_ = first;
    web_ = first + kPassive;
    extra_ = first + kPassive + 1;
    ASSERT_NE(ftp_ = FreePortOnAll(all), 0);
    ASSERT_NE(nginx_port_ = FreePortOnAll(kHosts), 0);
    const std::string want = TempDir() + "/big.want";
    WriteRandomFile(want, kFileBytes, 21);
    for (const std::string& host : kHosts) {
      absl::StatusOr<Server> nginx = StartNginx(host, nginx_port_, host + "\n");
      ASSERT_TRUE(nginx.ok()) << nginx.status();
      nginx_.push_back(*std::move(nginx));
      absl::StatusOr<Server> vsftpd =
          StartVsftpd(host, ftp_,
                      {.banner = "backend " + host,
                       .pasv_min_port = pasv_,
                       .pasv_max_port = static_cast<uint16_t>(pasv_ + kPassive - 1),
                       .pasv_address = "127.0.0.1"});
      ASSERT_TRUE(vsftpd.ok()) << vsftpd.status();
      ASSERT_EQ(RunCommand({"cp", want, vsftpd->files + "/big"}, absl::Seconds(10)).exit_code, 0);
      vsftpd_.push_back(*std::move(vsftpd));
    }
  }

  std::string Config(const Variant& v) const {
    std::vector<std::string> web;
    for (const std::string& host : v.web) web.push_back(absl::StrCat(host, ":", nginx_port_));
    std::string text = absl::StrCat(
        AdminTable(), "[[service]]\nname = \"ftp\"\n", "listen = ",
        Array({absl::StrCat("127.0.0.1:", ftp_),
               absl::StrCat("127.0.0.1:", pasv_, "-", pasv_ + kPassive - 1)}),
        "\nbackends = ", Array(kHosts), "\nhash_key = \"src_ip\"\n",
        "affinity_group = \"ftp\"\naffinity_ttl = \"10m\"\n",
        "[service.health]\ncheck = \"ftp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n",
        "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", web_, "\"]\n",
        "backends = ", Array(web), "\nhash_key = \"src_ip_port\"\n",
        "[service.health]\ncheck = \"tcp\"\ninterval = \"500ms\"\ntimeout = \"300ms\"\n");
    if (v.extra) {
      absl::StrAppend(&text, "\n[[service]]\nname = \"extra\"\nlisten = [\"127.0.0.1:", extra_,
                      "\"]\nbackends = [\"127.0.0.4:", nginx_port_, "\"]\n");
    }
    return text;
  }
  static int Services(const Variant& v) { return 2 + v.extra; }
  static int Listeners(const Variant& v) { return 1 + kPassive + 1 + v.extra; }

  uint16_t ftp_ = 0, pasv_ = 0, web_ = 0, extra_ = 0, nginx_port_ = 0;
  std::vector<Server> nginx_;
  std::vector<Server> vsftpd_;
};

TEST_F(ReloadUnderLoadTest, TwentyReloadsUnderLoadLoseNothing) {
  const Variant initial{.web = {kHosts[0], kHosts[1]}};
  // Every other reload goes back to `initial`; the ones between cycle through these.
  const std::vector<Variant> changes = {
      {.web = kHosts},                                 // a backend added
      {.web = {kHosts[0], kHosts[1]}, .extra = true},  // a service and its listener added
      {.web = kHosts, .extra = true},                  // both
      {.web = {kHosts[0]}},                            // a backend removed
  };
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Config(initial)));
  ASSERT_NO_FATAL_FAILURE(StartL4lb({"--drain_timeout=5s", "--access_log=false"}));
  ASSERT_EQ(ReadyLines().size(), static_cast<size_t>(Listeners(initial)));
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] {
    const json s = Status();
    if (!s.is_object()) return false;
    for (const json& service : s["services"]) {
      for (const json& b : service["backends"]) {
        if (b["last_check"].is_null() || b["state"] != "UP") return false;
      }
    }
    return true;
  })) << Status().dump(2);
  std::string metrics = Metrics();
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"success\"}"), 0)
      << ReloadCounters(metrics);
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"failure\"}"), 0);
  EXPECT_EQ(Status()["generation"], 1);
  const int baseline_fds = QuietFdCount(*l4lb_, absl::Seconds(1));

  // Three slow downloads from three client hosts through the ftp service,
  // which no reload changes: they must outlive every reload, untouched.
  constexpr int kDownloads = 3;
  std::vector<CommandResult> downloads(kDownloads);
  std::vector<std::thread> clients;
  std::atomic<int> downloads_done{0};
  std::vector<absl::Duration> took(kDownloads);
  CommandResult wrk;
  struct Joiner {
    std::vector<std::thread>& threads;
    ~Joiner() {
      for (std::thread& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{clients};
  const std::string want = TempDir() + "/big.want";
  auto got = [](int i) { return absl::StrCat(TempDir(), "/big.got.", i); };
  for (int i = 0; i < kDownloads; ++i) {
    clients.emplace_back([&, i] {
      const absl::Time start = absl::Now();
      downloads[i] =
          RunCommand({"curl", "-sS", "--disable-epsv", "--no-ftp-skip-pasv-ip", "--max-time", "80",
                      "--limit-rate", "1M", "--interface", absl::StrCat("127.0.1.", i + 1), "-o",
                      got(i), absl::StrCat("ftp://127.0.0.1:", ftp_, "/big")},
                     absl::Seconds(90));
      took[i] = absl::Now() - start;
      ++downloads_done;
    });
  }
  // Every download under way (its data connection open) before the first reload.
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    for (int i = 0; i < kDownloads; ++i) {
      std::error_code error;
      if (std::filesystem::file_size(got(i), error) < 64 * 1024 || error) return false;
    }
    return true;
  })) << "the downloads did not start";
  clients.emplace_back([&] {
    wrk = RunCommand({"wrk", "-t1", "-c8", "-d25s", "--timeout", "5s", "-H", "Connection: close",
                      absl::StrCat("http://127.0.0.1:", web_, "/")},
                     absl::Seconds(45));
  });
  absl::SleepFor(absl::Milliseconds(500));  // wrk's connections in full flow

  const std::string web0 = absl::StrCat("l4lb_connections_total{service=\"web\",backend=\"",
                                        kHosts[0], ":", nginx_port_, "\"}");
  double last_count = Sample(Metrics(), web0);
  int signalled = 0;
  const absl::Time reloads_start = absl::Now();
  absl::Duration slowest;
  for (int i = 0; i < 20; ++i) {
    const Variant& v = i % 2 == 1 ? initial : changes[(i / 2) % changes.size()];
    // Half by each door, each change met by both over the run: POST for
    // i = 0, 1, 4, 5, 10, 11, 14, 15, 16, 17.
    const bool by_signal = (i / 2 + i / 8) % 2 == 1;
    signalled += by_signal;
    SCOPED_TRACE(absl::StrCat("reload ", i + 1, by_signal ? " by SIGHUP" : " by POST /reload"));
    ASSERT_NO_FATAL_FAILURE(WriteConfig(Config(v)));
    const absl::Time asked = absl::Now();
    const Reload r = DoReload(by_signal);
    slowest = std::max(slowest, absl::Now() - asked);
    ASSERT_TRUE(r.success) << r.text;
    EXPECT_EQ(r.generation, i + 2) << r.text;
    EXPECT_EQ(r.services, Services(v)) << r.text;
    EXPECT_EQ(r.listeners, Listeners(v)) << r.text;
    EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
      return ReadyLines().size() == static_cast<size_t>(Listeners(v));
    })) << ReadFile(l4lb_->ready_file());
    if (v.extra) {
      EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] {
        return Fetch(extra_, "127.0.2.1") == "127.0.0.4\n";
      })) << "the added service does not serve";
    } else if (i % 2 == 1 && changes[(i / 2) % changes.size()].extra) {
      EXPECT_TRUE(WaitFor(absl::Seconds(1), [&] {
        const int fd = ConnectTcp("127.0.0.1", extra_);
        if (fd >= 0) close(fd);
        return fd < 0;
      })) << "the removed service's listener still accepts";
    }
    // The web service and its first backend are in every variant: its count goes on.
    const double count = Sample(Metrics(), web0);
    EXPECT_GE(count, last_count) << "l4lb_connections_total went back across a reload";
    last_count = count;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(signalled, 10);
  std::printf("20 reloads in %s, the slowest answered in %s\n",
              absl::FormatDuration(absl::Now() - reloads_start).c_str(),
              absl::FormatDuration(slowest).c_str());
  EXPECT_EQ(downloads_done.load(), 0) << "a download ended before the last reload: it spans fewer";
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kDownloads; ++i) {
    std::printf("download %d: %s\n", i, absl::FormatDuration(took[i]).c_str());
  }

  EXPECT_EQ(wrk.exit_code, 0) << wrk.out << wrk.err;
  EXPECT_FALSE(absl::StrContains(wrk.out, "Socket errors")) << wrk.out;
  EXPECT_FALSE(absl::StrContains(wrk.out, "Non-2xx")) << wrk.out;
  int64_t requests = 0;
  const size_t in = wrk.out.find(" requests in ");
  ASSERT_NE(in, std::string::npos) << wrk.out;
  const size_t from = wrk.out.find_last_not_of("0123456789", in - 1) + 1;
  ASSERT_TRUE(absl::SimpleAtoi(wrk.out.substr(from, in - from), &requests)) << wrk.out;
  std::printf("wrk: %lld requests, new connection each, across 20 reloads\n",
              static_cast<long long>(requests));
  EXPECT_GT(requests, 1000) << wrk.out;
  for (int i = 0; i < kDownloads; ++i) {
    EXPECT_EQ(downloads[i].exit_code, 0) << "download " << i << ": " << downloads[i].err;
    EXPECT_EQ(RunCommand({"cmp", want, got(i)}, absl::Seconds(30)).exit_code, 0)
        << "download " << i << " is not byte-exact";
  }

  metrics = Metrics();
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"success\"}"), 20)
      << ReloadCounters(metrics);
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"failure\"}"), 0);
  EXPECT_EQ(Status()["generation"], 21);
  // Back on the first config with the load gone: what 20 generations opened is
  // closed (the old ones drain within --drain_timeout=5s, pipes are trimmed in ~1 s).
  EXPECT_TRUE(l4lb_->FdsBackTo(baseline_fds, absl::Seconds(10)))
      << "fds: " << l4lb_->FdCount() << ", before the reloads: " << baseline_fds;
}

// ---------------------------------------------------------------------------
// Refused reloads: the file's mistake with FILE:LINE:COL, by both doors; a
// port that cannot be bound; a changed [admin] table. Nothing changes.

TEST_F(ReloadTest, InvalidFileIsRefusedAndTheRunningConfigStays) {
  const uint16_t port = FreePortOnAll(kHosts);
  std::vector<Server> nginx;
  ASSERT_NO_FATAL_FAILURE(StartNginxOnHosts(port, &nginx));
  const uint16_t web = FreePortRange({"127.0.0.1"}, 2);
  ASSERT_NE(web, 0);
  const std::string old_backends =
      Array({absl::StrCat(kHosts[0], ":", port), absl::StrCat(kHosts[1], ":", port)});
  const std::string new_backends = Array({absl::StrCat(kHosts[2], ":", port)});
  auto config = [&](const std::string& backends, const std::string& extra_line) {
    return absl::StrCat(AdminTable(), "[[service]]\nname = \"web\"\n",  // lines 1-5
                        "listen = [\"127.0.0.1:", web, "\"]\n",         // line 6
                        "backends = ", backends, "\n",                  // line 7
                        extra_line, "\n");                              // line 8
  };
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(old_backends, "")));
  ASSERT_NO_FATAL_FAILURE(StartL4lb());
  auto served_by_old = [&](int base) {
    const std::map<std::string, int> bodies = Spread(web, base, 20);
    return bodies.size() <= 2 && !bodies.contains("") && !bodies.contains("127.0.0.4\n")
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << Show(bodies);
  };
  ASSERT_TRUE(served_by_old(60));

  // A bad value, on line 8 column 19, beside a backend change that must not happen.
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(new_backends, "connect_timeout = \"abc\"")));
  Reload r = Post();
  ASSERT_FALSE(r.success) << r.text;
  ASSERT_FALSE(r.error.empty()) << "want 400 {\"result\":\"failure\",\"error\":...}: " << r.text;
  EXPECT_TRUE(absl::StartsWith(r.error, config_ + ":8:19: connect_timeout")) << r.error;
  EXPECT_TRUE(l4lb_->HasLine("reload failed: " + r.error, "; the running config stays"))
      << l4lb_->Log();
  EXPECT_TRUE(served_by_old(61));
  std::string metrics = Metrics();
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"failure\"}"), 1)
      << ReloadCounters(metrics);
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"success\"}"), 0);

  // Broken TOML by SIGHUP: the log says where, l4lb goes on serving.
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(new_backends, "idle_timeout = [\"10s\"")));
  r = Sighup();
  EXPECT_FALSE(r.success) << r.text;
  EXPECT_TRUE(absl::StartsWith(r.error, config_ + ":8:")) << r.text;
  EXPECT_TRUE(l4lb_->process().Running());
  EXPECT_TRUE(served_by_old(62));

  // A new listener on a port someone else holds: refused whole, the backend
  // change in the same file included.
  uint16_t taken_port = web + 1;
  const int taken = ListenTcp("127.0.0.1", &taken_port);
  ASSERT_GE(taken, 0);
  ASSERT_NO_FATAL_FAILURE(WriteConfig(absl::StrCat(
      config(new_backends, ""), "[[service]]\nname = \"taken\"\nlisten = [\"127.0.0.1:", taken_port,
      "\"]\nbackends = ", old_backends, "\n")));
  r = Post();
  close(taken);
  EXPECT_FALSE(r.success) << r.text;
  EXPECT_TRUE(absl::StrContains(r.error, absl::StrCat("127.0.0.1:", taken_port))) << r.text;
  // As at start-up (README "Reload"): the file, then what the bind said.
  EXPECT_TRUE(absl::StartsWith(r.error, absl::StrCat(config_, ": bind 127.0.0.1:", taken_port)))
      << r.text;
  EXPECT_TRUE(served_by_old(63));

  // The [admin] table cannot change while l4lb runs.
  const uint16_t other_admin = FreePortOnAll({"127.0.0.1"});
  std::string moved = config(new_backends, "");
  moved.replace(moved.find(absl::StrCat(admin_)), std::to_string(admin_).size(),
                std::to_string(other_admin));
  ASSERT_NO_FATAL_FAILURE(WriteConfig(moved));
  r = Post();
  EXPECT_FALSE(r.success) << r.text;
  EXPECT_TRUE(absl::StrContains(r.error, "[admin]")) << r.text;
  EXPECT_EQ(Http("GET", other_admin, "/status").code, 0) << "the admin endpoint moved";
  EXPECT_TRUE(served_by_old(64));

  metrics = Metrics();
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"failure\"}"), 4)
      << ReloadCounters(metrics);
  EXPECT_EQ(Sample(metrics, "l4lb_reloads_total{result=\"success\"}"), 0);
  EXPECT_EQ(Status()["generation"], 1) << "a refused reload made a generation";

  // The same change, written right, is taken: the refusals were the file's fault.
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(new_backends, "")));
  r = Post();
  ASSERT_TRUE(r.success) << r.text;
  EXPECT_EQ(r.generation, 2);
  const std::map<std::string, int> bodies = Spread(web, 65, 10);
  EXPECT_EQ(bodies.size() == 1 ? bodies.begin()->first : Show(bodies), "127.0.0.4\n");
}

TEST_F(ReloadTest, WithoutConfigFileThereIsNothingToReload) {
  EchoServer echo("127.0.0.2");
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
      L4lb::Start({"--listen=127.0.0.1:0", "--threads=2", "--health_check=none",
                   absl::StrCat("--backends=127.0.0.2:", echo.port()),
                   absl::StrCat("--admin=127.0.0.1:", admin_)});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  kill((*l4lb)->process().pid(), SIGHUP);
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    return (*l4lb)->HasLine("reload failed: no --config file; nothing to reload", "");
  })) << (*l4lb)->Log();
  EXPECT_EQ(Http("POST", admin_, "/reload").code, 400);
  const int fd = ConnectTcp("127.0.0.1", (*l4lb)->port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(Echoes(fd, "still serving"));
  close(fd);
}

// ---------------------------------------------------------------------------
// Listeners: an added service is connectable at once; a removed one refuses
// new clients while its established connection goes on until --drain_timeout
// and is then reset. A connection of the unchanged service is never cut.

}  // namespace
}  // namespace l4lb::testing
