// Hot reload of --config end to end: the built l4lb reloaded by SIGHUP and by
// POST /reload in front of real nginx and vsftpd backends, UDP and TCP echo
// servers, with real clients (wrk, curl). Twenty reloads under load lose no
// connection and no byte and leak no fd; a broken file changes nothing; new
// listeners open and removed ones close, their connections cut at
// --drain_timeout; unchanged backends keep their health and admin state; a
// removed backend finishes its download; a UDP reply pending across a reload
// still reaches its client.

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

namespace l4lb::testing {
namespace {

using nlohmann::json;

const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// The value of the sample `series` (name and labels, exactly as written), or -1.
double Sample(const std::string& metrics, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      double v = -1;
      return absl::SimpleAtod(line, &v) ? v : -1;
    }
  }
  return -1;
}

// The l4lb_reloads_total lines of /metrics, for messages.
std::string ReloadCounters(const std::string& metrics) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::StartsWith(line, "l4lb_reloads_total")) absl::StrAppend(&out, line, "\n");
  }
  return out.empty() ? "no l4lb_reloads_total in /metrics" : out;
}

// Joins one TOML string array: ["a", "b"].
std::string Array(const std::vector<std::string>& items) {
  return absl::StrCat("[\"", absl::StrJoin(items, "\", \""), "\"]");
}

// The answer to one reload, by either door. For SIGHUP it is read from l4lb's
// log line, so both doors are checked the same way.
struct Reload {
  bool success = false;
  int generation = -1;
  int services = -1;
  int listeners = -1;
  std::string error;  // a failure's reason
  std::string text;   // the HTTP body or the log line, for messages
};

// The log lines a reload ends with, success or failure, in order.
std::vector<std::string> ReloadLines(const L4lb& l4lb) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(l4lb.Log(), '\n')) {
    if (absl::StrContains(line, "reload: serving ") || absl::StrContains(line, "reload failed: ")) {
      lines.emplace_back(line);
    }
  }
  return lines;
}

// "... reload: serving S service(s) on L listener(s) (generation G)" or
// "... reload failed: ERROR; the running config stays".
Reload FromLogLine(const std::string& line) {
  Reload r;
  r.text = line;
  const std::string kFailed = "reload failed: ", kStays = "; the running config stays";
  if (const size_t at = line.find(kFailed); at != std::string::npos) {
    r.error = line.substr(at + kFailed.size());
    if (absl::EndsWith(r.error, kStays)) r.error.resize(r.error.size() - kStays.size());
    return r;
  }
  const size_t at = line.find("reload: serving ");
  r.success = std::sscanf(line.c_str() + at,
                          "reload: serving %d service(s) on %d listener(s) (generation %d)",
                          &r.services, &r.listeners, &r.generation) == 3;
  return r;
}

// A delayed UDP echo: each datagram goes back to its sender `delay` after it
// came, so a reload fits between a query and its answer.
class SlowUdpEcho {
 public:
  SlowUdpEcho(const std::string& host, absl::Duration delay) : delay_(delay) {
    fd_ = BindUdp(host, &port_);
    thread_ = std::thread([this] { Loop(); });
  }
  ~SlowUdpEcho() {
    stop_ = true;
    thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  int received() const { return received_; }
  int replied() const { return replied_; }

 private:
  void Loop() {
    while (!stop_ && fd_ >= 0) {
      std::string from;
      const std::optional<std::string> data = RecvFrom(fd_, absl::Milliseconds(50), &from);
      if (!data.has_value()) continue;
      ++received_;
      absl::SleepFor(delay_);
      const size_t colon = from.rfind(':');
      uint32_t port = 0;
      if (absl::SimpleAtoi(from.substr(colon + 1), &port) &&
          SendTo(fd_, from.substr(0, colon), static_cast<uint16_t>(port), *data)) {
        ++replied_;
      }
    }
  }

  const absl::Duration delay_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::atomic<int> replied_{0};
  std::thread thread_;
};

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(admin_ = FreePortOnAll({"127.0.0.1"}), 0);
    config_ = absl::StrCat(
        TempDir(), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".toml");
  }

  std::string AdminTable() const {
    return absl::StrCat("[admin]\nlisten = \"127.0.0.1:", admin_, "\"\n\n");
  }
  // FILE.tmp, renamed: l4lb never reads half a file.
  void WriteConfig(const std::string& text) const {
    const std::string tmp = config_ + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    ASSERT_EQ(rename(tmp.c_str(), config_.c_str()), 0) << config_;
  }
  void StartL4lb(std::vector<std::string> more = {}) {
    std::vector<std::string> flags = {"--config=" + config_, "--threads=2"};
    flags.insert(flags.end(), more.begin(), more.end());
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  Reload Post() const {
    const HttpReply reply = Http("POST", admin_, "/reload");
    Reload r;
    r.text = absl::StrCat(reply.code, " ", reply.body);
    const json j = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return r;
    if (reply.code == 200 && j.value("result", "") == "success") {
      r.success = true;
      r.generation = j.value("generation", -1);
      r.services = j.value("services", -1);
      r.listeners = j.value("listeners", -1);
    } else if (reply.code == 400 && j.value("result", "") == "failure") {
      r.error = j.value("error", "");
    }
    return r;
  }
  // SIGHUP, then the log line that ends that reload (10 s at most).
  Reload Sighup() const {
    const size_t before = ReloadLines(*l4lb_).size();
    kill(l4lb_->process().pid(), SIGHUP);
    std::vector<std::string> lines;
    if (!WaitFor(absl::Seconds(10),
                 [&] { return (lines = ReloadLines(*l4lb_)).size() > before; })) {
      Reload none;
      none.text = "no reload line within 10 s of SIGHUP";
      return none;
    }
    return FromLogLine(lines[before]);
  }
  Reload DoReload(bool by_signal) const { return by_signal ? Sighup() : Post(); }

  json Status() const {
    return json::parse(Http("GET", admin_, "/status").body, nullptr, /*allow_exceptions=*/false);
  }
  std::string Metrics() const { return Http("GET", admin_, "/metrics").body; }
  // A backend's /status entry, or null.
  json BackendStatus(const std::string& service, const std::string& backend) const {
    const json status = Status();
    if (!status.is_object()) return nullptr;
    for (const json& s : status["services"]) {
      if (s["name"] != service) continue;
      for (const json& b : s["backends"]) {
        if (b["name"] == backend) return b;
      }
    }
    return nullptr;
  }
  std::vector<std::string> ReadyLines() const {
    return absl::StrSplit(ReadFile(l4lb_->ready_file()), '\n', absl::SkipEmpty());
  }

  // The body nginx answers through l4lb's `port` to a client from `source`.
  static std::string Fetch(uint16_t port, const std::string& source) {
    const CommandResult r = RunCommand({"curl", "-s", "-m", "5", "--interface", source,
                                        absl::StrCat("http://127.0.0.1:", port, "/")},
                                       absl::Seconds(10));
    return r.exit_code == 0 ? r.out : "";
  }
  // Which bodies `n` new clients (127.0.BASE.1..n) get: "" counts the unserved.
  static std::map<std::string, int> Spread(uint16_t port, int base, int n) {
    std::map<std::string, int> bodies;
    for (int c = 1; c <= n; ++c) ++bodies[Fetch(port, absl::StrCat("127.0.", base, ".", c))];
    return bodies;
  }
  static std::string Show(const std::map<std::string, int>& bodies) {
    std::string out;
    for (const auto& [body, n] : bodies) absl::StrAppend(&out, "'", body, "' x", n, " ");
    return out;
  }

  uint16_t admin_ = 0;
  std::string config_;
  std::unique_ptr<L4lb> l4lb_;
};

// An echo connection through l4lb's `port`: `data` sent and read back.
bool Echoes(int fd, const std::string& data) {
  SetRecvTimeout(fd, absl::Seconds(3));
  return SendAll(fd, data) && ReadN(fd, data.size()) == data;
}

// The fewest fds l4lb holds over `span`: health probes open one for a moment.
int QuietFdCount(const L4lb& l4lb, absl::Duration span) {
  int least = l4lb.FdCount();
  const absl::Time end = absl::Now() + span;
  while (absl::Now() < end) {
    least = std::min(least, l4lb.FdCount());
    absl::SleepFor(absl::Milliseconds(5));
  }
  return least;
}

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
  for (const std::string& host : kHosts) {
    absl::StatusOr<Server> n = StartNginx(host, port, host + "\n");
    ASSERT_TRUE(n.ok()) << n.status();
    nginx.push_back(*std::move(n));
  }
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
    return (*l4lb)->HasLine("reload: no --config file; nothing to reload", "");
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

TEST_F(ReloadTest, AddedListenerServesRemovedOneRefusesAndItsConnectionIsCutAtDrainTimeout) {
  EchoServer web_echo("127.0.0.2");
  EchoServer extra_echo("127.0.0.3");
  const uint16_t web = FreePortRange({"127.0.0.1"}, 2);
  ASSERT_NE(web, 0);
  const uint16_t extra = web + 1;
  const std::string base =
      absl::StrCat(AdminTable(), "[defaults.health]\ncheck = \"none\"\n\n",
                   "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", web, "\"]\n",
                   "backends = [\"127.0.0.2:", web_echo.port(), "\"]\n");
  const std::string with_extra =
      absl::StrCat(base, "\n[[service]]\nname = \"extra\"\nlisten = [\"127.0.0.1:", extra,
                   "\"]\nbackends = [\"127.0.0.3:", extra_echo.port(), "\"]\n");
  ASSERT_NO_FATAL_FAILURE(WriteConfig(base));
  constexpr absl::Duration kDrain = absl::Seconds(2);
  ASSERT_NO_FATAL_FAILURE(StartL4lb({"--drain_timeout=2s"}));
  ASSERT_LT(ConnectTcp("127.0.0.1", extra), 0) << "something listens on the extra port already";
  const int web_fd = ConnectTcp("127.0.0.1", web);
  ASSERT_GE(web_fd, 0);
  ASSERT_TRUE(Echoes(web_fd, "a"));

  ASSERT_NO_FATAL_FAILURE(WriteConfig(with_extra));
  Reload r = Post();
  ASSERT_TRUE(r.success) << r.text;
  EXPECT_EQ(r.listeners, 2);
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return ReadyLines().size() == 2; }));
  EXPECT_EQ(ReadyLines().back(), absl::StrCat("tcp 127.0.0.1:", extra));
  const int extra_fd = ConnectTcp("127.0.0.1", extra);
  ASSERT_GE(extra_fd, 0) << "the added listener refuses";
  ASSERT_TRUE(Echoes(extra_fd, "b"));
  EXPECT_EQ(extra_echo.accepted(), 1);

  ASSERT_NO_FATAL_FAILURE(WriteConfig(base));
  r = Sighup();
  const absl::Time removed = absl::Now();
  ASSERT_TRUE(r.success) << r.text;
  EXPECT_EQ(r.listeners, 1);
  EXPECT_TRUE(WaitFor(absl::Seconds(1), [&] {
    const int fd = ConnectTcp("127.0.0.1", extra);
    if (fd >= 0) close(fd);
    return fd < 0;
  })) << "the removed listener still accepts";
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return ReadyLines().size() == 1; }));
  EXPECT_TRUE(Echoes(extra_fd, "c")) << "the removed service's connection was cut at once";
  absl::SleepFor(kDrain / 2);
  EXPECT_TRUE(Echoes(extra_fd, "d")) << "cut before --drain_timeout";
  SetRecvTimeout(extra_fd, kDrain + absl::Seconds(3));
  int error = 0;
  const std::string rest = ReadToEof(extra_fd, &error);
  const absl::Duration cut_after = absl::Now() - removed;
  close(extra_fd);
  EXPECT_EQ(rest, "");
  EXPECT_EQ(error, ECONNRESET) << "a cut must look cut: " << strerror(error);
  EXPECT_GE(cut_after, kDrain - absl::Milliseconds(300));
  EXPECT_LE(cut_after, kDrain + absl::Seconds(2)) << "not cut at --drain_timeout";
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return extra_echo.open_connections() == 0; }))
      << "the backend side was left open";
  // The unchanged service's connection lived through both reloads and the cut.
  EXPECT_TRUE(Echoes(web_fd, "e"));
  close(web_fd);
}

// ---------------------------------------------------------------------------
// A backend in both configs keeps what the checker and the operator said of it.

TEST_F(ReloadTest, UnchangedBackendsKeepTheirHealthAndAdminState) {
  const uint16_t port = FreePortOnAll(kHosts);
  std::vector<Server> nginx;
  for (const std::string& host : kHosts) {
    absl::StatusOr<Server> n = StartNginx(host, port, host + "\n");
    ASSERT_TRUE(n.ok()) << n.status();
    nginx.push_back(*std::move(n));
  }
  const uint16_t web = FreePortRange({"127.0.0.1"}, 2);
  ASSERT_NE(web, 0);
  std::vector<std::string> names;
  for (const std::string& host : kHosts) names.push_back(absl::StrCat(host, ":", port));
  // rise = 5 at 1 s: a backend whose health were forgotten would need seconds
  // of passed checks to come back, or would start UP and get clients if DOWN.
  auto config = [&](const std::string& idle, bool other) {
    std::string text =
        absl::StrCat(AdminTable(), "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", web,
                     "\"]\n", "backends = ", Array(names), "\nidle_timeout = \"", idle, "\"\n",
                     "[service.health]\ncheck = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
                     "rise = 5\nfall = 1\n");
    if (other) {
      absl::StrAppend(&text, "\n[[service]]\nname = \"other\"\nlisten = [\"127.0.0.1:", web + 1,
                      "\"]\nbackends = [\"", names[0], "\"]\n");
    }
    return text;
  };
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config("600s", false)));
  ASSERT_NO_FATAL_FAILURE(StartL4lb());
  // A backend's state; "" until the checker has probed it once.
  auto checked_state = [&](int i) {
    const json b = BackendStatus("web", names[i]);
    return b.is_object() && !b["last_check"].is_null() ? b["state"].get<std::string>() : "";
  };
  auto state = [&](int i) {
    const json b = BackendStatus("web", names[i]);
    return b.is_object() && b["state"].is_string() ? b["state"].get<std::string>() : "missing";
  };
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] {
    return checked_state(0) == "UP" && checked_state(1) == "UP" && checked_state(2) == "UP";
  })) << Status().dump(2);
  const HttpReply maint =
      Http("POST", admin_, absl::StrCat("/services/web/backends/", names[1], "/maint"));
  ASSERT_EQ(maint.code, 200) << maint.body;
  nginx[2].process->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return checked_state(2) == "DOWN"; }))
      << Status().dump(2);
  // How long ago the backend's state changed (start counts), or -1.
  auto since = [&](int i) {
    const json b = BackendStatus("web", names[i]);
    return b.is_object() && b["seconds_since_state_change"].is_number()
               ? b["seconds_since_state_change"].get<double>()
               : -1.0;
  };
  const double up_since = since(0);
  const double down_since = since(2);
  const int connect_failures = l4lb_->CountLines(names[2], ": connect: ");

  // The web service changed (idle_timeout) and a service came beside it; its
  // three backends are the same.
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config("300s", true)));
  const Reload r = Post();
  ASSERT_TRUE(r.success) << r.text;
  EXPECT_EQ(state(0), "UP");
  EXPECT_EQ(state(1), "MAINT") << "MAINT set through the admin API did not survive";
  EXPECT_EQ(state(2), "DOWN") << "a DOWN backend came back UP by a reload";
  EXPECT_GE(since(0), up_since)
      << "the UP backend's state changed (or its clock restarted) in the reload";
  EXPECT_GE(since(2), down_since);
  // Right after the reload: every client on the one UP backend, none tried on the DOWN one.
  const std::map<std::string, int> bodies = Spread(web, 70, 30);
  EXPECT_EQ(bodies.size() == 1 ? bodies.begin()->first : Show(bodies), kHosts[0] + "\n");
  EXPECT_EQ(l4lb_->CountLines(names[2], ": connect: "), connect_failures)
      << "clients were sent to the DOWN backend after the reload";
  // The MAINT backend was out by the operator's word only: enabled, it serves.
  ASSERT_EQ(Http("POST", admin_, absl::StrCat("/services/web/backends/", names[1], "/enable")).code,
            200);
  EXPECT_GT(Spread(web, 71, 30)[kHosts[1] + "\n"], 0);
}

// ---------------------------------------------------------------------------
// A backend removed in the middle of a download: the download completes, no
// new client reaches it.

TEST_F(ReloadTest, RemovedBackendFinishesItsDownloadAndGetsNobodyNew) {
  // 8 s at 3 MiB/s, well past what loopback's socket buffers hold: nginx is
  // still sending when its backend is removed.
  constexpr uint64_t kBytes = 24ull << 20;
  const uint16_t port = FreePortOnAll(kHosts);
  std::vector<Server> nginx;
  for (const std::string& host : kHosts) {
    absl::StatusOr<Server> n = StartNginx(host, port, host + "\n");
    ASSERT_TRUE(n.ok()) << n.status();
    WriteRandomFile(n->files + "/big", kBytes, 31);
    nginx.push_back(*std::move(n));
  }
  const std::string want = TempDir() + "/removed.want";
  WriteRandomFile(want, kBytes, 31);
  const uint16_t web = FreePortRange({"127.0.0.1"}, 1);
  ASSERT_NE(web, 0);
  auto config = [&](int without) {
    std::vector<std::string> backends;
    for (int i = 0; i < 3; ++i) {
      if (i != without) backends.push_back(absl::StrCat(kHosts[i], ":", port));
    }
    return absl::StrCat(AdminTable(), "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", web,
                        "\"]\nbackends = ", Array(backends), "\n",
                        "[service.health]\ncheck = \"tcp\"\ninterval = \"500ms\"\n");
  };
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(-1)));
  ASSERT_NO_FATAL_FAILURE(StartL4lb({"--drain_timeout=30s"}));
  const std::string got = TempDir() + "/removed.got";
  CommandResult download;
  std::atomic<bool> done{false};
  std::thread client([&] {
    download = RunCommand({"curl", "-sS", "-m", "60", "--limit-rate", "3M", "--interface",
                           "127.0.80.1", "-o", got, absl::StrCat("http://127.0.0.1:", web, "/big")},
                          absl::Seconds(70));
    done = true;
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{client};
  int carrier = -1;
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    for (int i = 0; i < 3; ++i) {
      const json b = BackendStatus("web", absl::StrCat(kHosts[i], ":", port));
      if (b.is_object() && b["active_connections"] == 1) carrier = i;
    }
    return carrier >= 0;
  })) << Status().dump(2);

  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(carrier)));
  const Reload r = Post();
  ASSERT_TRUE(r.success) << r.text;
  const std::map<std::string, int> bodies = Spread(web, 81, 40);
  EXPECT_FALSE(bodies.contains(kHosts[carrier] + "\n")) << "removed backend got " << Show(bodies);
  EXPECT_FALSE(bodies.contains("")) << Show(bodies);
  EXPECT_FALSE(done.load()) << "the download ended before the new clients: it proves nothing";
  client.join();
  ASSERT_EQ(download.exit_code, 0) << download.err;
  EXPECT_EQ(RunCommand({"cmp", want, got}, absl::Seconds(30)).exit_code, 0) << "not byte-exact";
  unlink(got.c_str());
  unlink(want.c_str());
}

// ---------------------------------------------------------------------------
// UDP: an answer the backend sends after a reload reaches the client that asked
// before it, whether the reload removed that backend or left the service alone.

TEST_F(ReloadTest, UdpReplyToADatagramSentBeforeAReloadArrives) {
  constexpr absl::Duration kDelay = absl::Seconds(1);
  SlowUdpEcho first("127.0.0.2", kDelay);
  SlowUdpEcho second("127.0.0.3", kDelay);
  const uint16_t udp = FreeUdpPortOnAll({"127.0.0.1"});
  const uint16_t tcp = FreePortRange({"127.0.0.1"}, 1);
  ASSERT_NE(udp, 0);
  ASSERT_NE(tcp, 0);
  EchoServer tcp_echo("127.0.0.4");
  auto config = [&](const SlowUdpEcho& echo, bool tcp_service) {
    std::string text = absl::StrCat(
        AdminTable(), "[defaults.health]\ncheck = \"none\"\n\n",
        "[[service]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten = [\"127.0.0.1:", udp, "\"]\n",
        "backends = [\"", echo.port() == first.port() ? "127.0.0.2:" : "127.0.0.3:", echo.port(),
        "\"]\n");
    if (tcp_service) {
      absl::StrAppend(&text, "\n[[service]]\nname = \"tcp\"\nlisten = [\"127.0.0.1:", tcp,
                      "\"]\nbackends = [\"127.0.0.4:", tcp_echo.port(), "\"]\n");
    }
    return text;
  };
  ASSERT_NO_FATAL_FAILURE(WriteConfig(config(first, false)));
  ASSERT_NO_FATAL_FAILURE(StartL4lb({"--drain_timeout=5s"}));
  const std::string listener = absl::StrCat("127.0.0.1:", udp);

  struct Case {
    const char* what;
    const SlowUdpEcho& backend;  // where the question goes
    std::string next_config;
    bool by_signal;
  };
  for (const Case& c : {Case{"backend removed", first, config(second, false), true},
                        Case{"service unchanged", second, config(second, true), false}}) {
    SCOPED_TRACE(c.what);
    uint16_t client_port = 0;
    const int fd = BindUdp("127.0.0.1", &client_port);
    ASSERT_GE(fd, 0);
    const int received = c.backend.received(), replied = c.backend.replied();
    ASSERT_TRUE(SendTo(fd, "127.0.0.1", udp, c.what));
    ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] { return c.backend.received() == received + 1; }))
        << "the datagram did not reach " << c.backend.port();
    ASSERT_NO_FATAL_FAILURE(WriteConfig(c.next_config));
    const Reload r = DoReload(c.by_signal);
    ASSERT_TRUE(r.success) << r.text;
    ASSERT_EQ(c.backend.replied(), replied) << "the answer left before the reload ended";
    std::string from;
    const std::optional<std::string> reply = RecvFrom(fd, kDelay + absl::Seconds(2), &from);
    EXPECT_EQ(reply.value_or("<none>"), c.what);
    EXPECT_EQ(from, listener);
    close(fd);
  }
  // A new client after the removal reaches the backend that stayed.
  uint16_t client_port = 0;
  const int fd = BindUdp("127.0.0.1", &client_port);
  ASSERT_GE(fd, 0);
  const int before = first.received();
  ASSERT_TRUE(SendTo(fd, "127.0.0.1", udp, "new client"));
  EXPECT_EQ(RecvFrom(fd, kDelay + absl::Seconds(2)).value_or("<none>"), "new client");
  EXPECT_EQ(first.received(), before) << "a new client reached the removed backend";
  close(fd);
}

}  // namespace
}  // namespace l4lb::testing
