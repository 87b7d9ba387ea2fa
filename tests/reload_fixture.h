#pragma once

// What the reload end-to-end tests share (tests/reload_e2e_test.cc,
// tests/reload_semantics_e2e_test.cc): an l4lb started with --config and an
// admin endpoint, reloaded by SIGHUP or POST /reload and read back the same way
// (the answer, or the log line that ends the reload), and its /status, /metrics
// and ready file.

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


inline const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// The value of the sample `series` (name and labels, exactly as written), or -1.
inline double Sample(const std::string& metrics, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      double v = -1;
      return absl::SimpleAtod(line, &v) ? v : -1;
    }
  }
  return -1;
}

// The l4lb_reloads_total lines of /metrics, for messages.
inline std::string ReloadCounters(const std::string& metrics) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::StartsWith(line, "l4lb_reloads_total")) absl::StrAppend(&out, line, "\n");
  }
  return out.empty() ? "no l4lb_reloads_total in /metrics" : out;
}

// Joins one TOML string array: ["a", "b"].
inline std::string Array(const std::vector<std::string>& items) {
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
inline std::vector<std::string> ReloadLines(const L4lb& l4lb) {
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
inline Reload FromLogLine(const std::string& line) {
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
    const nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
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

  nlohmann::json Status() const {
    return nlohmann::json::parse(Http("GET", admin_, "/status").body, nullptr, /*allow_exceptions=*/false);
  }
  std::string Metrics() const { return Http("GET", admin_, "/metrics").body; }
  // A backend's /status entry, or null.
  nlohmann::json BackendStatus(const std::string& service, const std::string& backend) const {
    const nlohmann::json status = Status();
    if (!status.is_object()) return nullptr;
    for (const nlohmann::json& s : status["services"]) {
      if (s["name"] != service) continue;
      for (const nlohmann::json& b : s["backends"]) {
        if (b["name"] == backend) return b;
      }
    }
    return nullptr;
  }
  std::vector<std::string> ReadyLines() const {
    return absl::StrSplit(ReadFile(l4lb_->ready_file()), '\n', absl::SkipEmpty());
  }

  // nginx on each of kHosts at `port`, each answering its own host name.
  static void StartNginxOnHosts(uint16_t port, std::vector<Server>* out) {
    for (const std::string& host : kHosts) {
      absl::StatusOr<Server> n = StartNginx(host, port, host + "\n");
      ASSERT_TRUE(n.ok()) << n.status();
      out->push_back(*std::move(n));
    }
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
inline bool Echoes(int fd, const std::string& data) {
  SetRecvTimeout(fd, absl::Seconds(3));
  return SendAll(fd, data) && ReadN(fd, data.size()) == data;
}

// The fewest fds l4lb holds over `span`: health probes open one for a moment.
inline int QuietFdCount(const L4lb& l4lb, absl::Duration span) {
  int least = l4lb.FdCount();
  const absl::Time end = absl::Now() + span;
  while (absl::Now() < end) {
    least = std::min(least, l4lb.FdCount());
    absl::SleepFor(absl::Milliseconds(5));
  }
  return least;
}

}  // namespace l4lb::testing
