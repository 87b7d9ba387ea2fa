// The admin endpoint end to end: the built l4lb with --admin in front of echo
// backends, real clients; /metrics read with curl, checked by Debian's promtool
// and scraped by a real Prometheus whose query API must return the counts the
// test made; /status JSON following a backend that dies; the token; the refusal
// of an exposed endpoint without one.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/echo_l4lb.h"
#include "tests/harness/http_client.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

using nlohmann::json;

constexpr int kConnections = 25;
constexpr size_t kBytes = 10000;  // per connection, each way (the echo returns them)

using Reply = HttpReply;

// GET through curl: a real HTTP client, not ours.
Reply Get(uint16_t port, const std::string& path, const std::string& token = "") {
  return Http("GET", port, path, token);
}

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

// One connection that sends `bytes` and reads them back: true if all came back.
bool EchoRoundTrip(uint16_t port, size_t bytes) {
  const int fd = ConnectTcp("127.0.0.1", port);
  if (fd < 0) return false;
  SetRecvTimeout(fd, absl::Seconds(5));
  const std::string data(bytes, 'x');
  bool ok = SendAll(fd, data);
  shutdown(fd, SHUT_WR);
  ok = ok && ReadToEof(fd) == data;
  close(fd);
  return ok;
}

std::unique_ptr<L4lb> StartWithAdmin(const EchoServer& echo, uint16_t admin_port,
                                     std::vector<std::string> more = {}) {
  more.push_back(absl::StrCat("--admin=127.0.0.1:", admin_port));
  return StartL4lbBefore(echo, std::move(more));
}

TEST(AdminTest, MetricsCountConnectionsAndBytesAndPassPromtool) {
  EchoServer echo("127.0.0.2");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  auto l4lb = StartWithAdmin(echo, admin);
  ASSERT_NE(l4lb, nullptr);
  for (int i = 0; i < kConnections; ++i) ASSERT_TRUE(EchoRoundTrip(l4lb->port(), kBytes));
  const std::string labels =
      absl::StrCat("{service=\"127.0.0.1:0\",backend=\"127.0.0.2:", echo.port(), "\"");
  Reply r;
  // Bytes are counted as they are relayed and a connection's end when it is
  // freed, a CQE or two after the client saw EOF.
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    r = Get(admin, "/metrics");
    return Sample(r.body, "l4lb_active_connections" + labels + "}") == 0 &&
           Sample(r.body, "l4lb_connection_duration_seconds_count{service=\"127.0.0.1:0\"}") ==
               kConnections;
  })) << r.body;
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(Sample(r.body, "l4lb_connections_total" + labels + "}"), kConnections) << r.body;
  EXPECT_EQ(Sample(r.body, "l4lb_bytes_total" + labels + ",direction=\"up\"}"),
            kConnections * kBytes);
  EXPECT_EQ(Sample(r.body, "l4lb_bytes_total" + labels + ",direction=\"down\"}"),
            kConnections * kBytes);
  EXPECT_EQ(Sample(r.body, "l4lb_connect_duration_seconds_count" + labels + "}"), kConnections);
  EXPECT_EQ(Sample(r.body, "l4lb_backend_up" + labels + "}"), 1);
  EXPECT_EQ(Sample(r.body, "l4lb_backend_state" + labels + ",state=\"UP\"}"), 1);
  EXPECT_EQ(Sample(r.body, "l4lb_accepted_connections_total{service=\"127.0.0.1:0\"}"),
            kConnections);
  EXPECT_GT(Sample(r.body, "process_open_fds"), 0);
  EXPECT_GT(Sample(r.body, "process_max_fds"), 0);

  const std::string file = TempDir() + "/metrics.prom";
  std::ofstream(file) << r.body;
  const CommandResult check =
      RunCommand({"sh", "-c", "promtool check metrics < " + file}, absl::Seconds(20));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "") << "promtool's lint findings";
}

TEST(AdminTest, RefusalsAreCountedPerService) {
  EchoServer echo("127.0.0.2");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  auto l4lb = StartWithAdmin(echo, admin, {"--deny=127.0.9.0/24"});
  ASSERT_NE(l4lb, nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Ping(l4lb->port(), "127.0.9.1"));
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.8.1"));
  Reply r;
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    r = Get(admin, "/metrics");
    return Sample(r.body, "l4lb_refused_total{service=\"127.0.0.1:0\",reason=\"denied\"}") == 3;
  })) << r.body;
  EXPECT_EQ(Sample(r.body, "l4lb_refused_total{service=\"127.0.0.1:0\",reason=\"banned\"}"), 0);
}

TEST(AdminTest, TokenIsRequiredWhenConfigured) {
  EchoServer echo("127.0.0.2");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  const std::string token_file = TempDir() + "/admin.token";
  std::ofstream(token_file) << "c0rrect-h0rse\n";
  auto l4lb = StartWithAdmin(echo, admin, {"--admin_token_file=" + token_file});
  ASSERT_NE(l4lb, nullptr);
  EXPECT_EQ(Get(admin, "/metrics").code, 401);
  EXPECT_EQ(Get(admin, "/status").code, 401);
  EXPECT_EQ(Get(admin, "/metrics", "wrong").code, 401);
  EXPECT_EQ(Get(admin, "/metrics", "c0rrect-h0rs").code, 401);
  const Reply ok = Get(admin, "/metrics", "c0rrect-h0rse");
  EXPECT_EQ(ok.code, 200);
  EXPECT_NE(ok.body.find("l4lb_connections_total"), std::string::npos);
  EXPECT_EQ(Get(admin, "/status", "c0rrect-h0rse").code, 200);
}

TEST(AdminTest, ExposedWithoutTokenIsRefusedAtStartup) {
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  const CommandResult r = RunCommand(
      {L4lbBinary(), "--listen=127.0.0.1:0", "--backends=127.0.0.2:1", "--health_check=none",
       absl::StrCat("--admin=0.0.0.0:", admin)},
      absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("l4lb: --admin: 0.0.0.0:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--admin_token_file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--admin_allow_no_token"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(AdminTest, JunkRequestsGetErrorsAndTheEndpointStaysUp) {
  EchoServer echo("127.0.0.2");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  auto l4lb = StartWithAdmin(echo, admin);
  ASSERT_NE(l4lb, nullptr);
  for (const std::string& junk : {std::string("\x16\x03\x01\x02\x00junk\r\n\r\n"),
                                 std::string("GET /status HTTP/1.1\r\nHost: x\r\n") +
                                     std::string(20000, 'A') + "\r\n\r\n",
                                 std::string("POST /metrics HTTP/1.1\r\nContent-Length: "
                                             "99999999999999999999\r\n\r\n")}) {
    const int fd = ConnectTcp("127.0.0.1", admin);
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(6));
    SendAll(fd, junk);
    shutdown(fd, SHUT_WR);
    const std::string answer = ReadToEof(fd);
    close(fd);
    EXPECT_TRUE(answer.empty() || answer.rfind("HTTP/1.1 4", 0) == 0) << answer.substr(0, 200);
  }
  EXPECT_EQ(Get(admin, "/nope").code, 404);
  EXPECT_EQ(Get(admin, "/metrics").code, 200);
  EXPECT_TRUE(l4lb->process().Running());
}

TEST(AdminTest, StatusListsEveryBackendAndFollowsOneThatDies) {
  EchoServer first("127.0.0.2");
  auto second = std::make_unique<EchoServer>("127.0.0.3");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  const std::string a = absl::StrCat("127.0.0.2:", first.port());
  const std::string b = absl::StrCat("127.0.0.3:", second->port());
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
      {"--listen=127.0.0.1:0", "--threads=2", "--backends=" + a + "," + b + "=3",
       "--health_check=tcp", "--health_interval=200ms", "--health_timeout=200ms",
       "--health_fall=1", "--health_rise=1", absl::StrCat("--admin=127.0.0.1:", admin)});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  json status;
  auto backend_state = [&](size_t i) -> std::string {
    const Reply r = Get(admin, "/status");
    if (r.code != 200) return "http " + std::to_string(r.code);
    status = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (status.is_discarded()) return "not json";
    const json& backends = status["services"][0]["backends"];
    if (!backends.is_array() || backends.size() != 2) return "not 2 backends";
    const json& check = backends[i]["last_check"];
    if (check.is_null()) return "no check yet";
    return backends[i]["state"].get<std::string>();
  };
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return backend_state(1) == "UP"; }))
      << status.dump(2);
  const json& backends = status["services"][0]["backends"];
  EXPECT_EQ(backends[0]["name"], a);
  EXPECT_EQ(backends[1]["name"], b);
  EXPECT_EQ(backends[0]["weight"], 1);
  EXPECT_EQ(backends[1]["weight"], 3);
  EXPECT_EQ(backends[1]["last_check"]["result"], "pass");
  EXPECT_EQ(status["services"][0]["protocol"], "tcp");

  second.reset();  // its port refuses connects now
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return backend_state(1) == "DOWN"; }))
      << status.dump(2);
  EXPECT_EQ(backend_state(0), "UP");
  const json& down = status["services"][0]["backends"][1];
  EXPECT_EQ(down["last_check"]["result"], "fail");
  EXPECT_NE(down["last_check"]["reason"].get<std::string>().find("refused"), std::string::npos)
      << down.dump();
  EXPECT_LT(down["seconds_since_state_change"].get<double>(), 5.0);
  const Reply metrics = Get(admin, "/metrics");
  EXPECT_EQ(Sample(metrics.body, "l4lb_backend_up{service=\"127.0.0.1:0\",backend=\"" + b + "\"}"),
            0);
  EXPECT_EQ(Sample(metrics.body, "l4lb_backend_state{service=\"127.0.0.1:0\",backend=\"" + b +
                                     "\",state=\"DOWN\"}"),
            1);
}

TEST(AdminTest, ConnectionsListsTheLiveOnesBounded) {
  EchoServer echo("127.0.0.2");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  auto l4lb = StartWithAdmin(echo, admin);
  ASSERT_NE(l4lb, nullptr);
  std::vector<int> held;
  // Closed however the test ends: l4lb's drain waits for them.
  struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
      for (int fd : fds) close(fd);
    }
  } close_all{held};
  for (int i = 1; i <= 5; ++i) {
    held.push_back(Hold(l4lb->port(), absl::StrCat("127.0.40.", i)));
    ASSERT_GE(held.back(), 0);
  }
  Reply r = Get(admin, "/connections");
  ASSERT_EQ(r.code, 200) << r.body;
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  ASSERT_EQ(j["connections"].size(), 5u) << r.body;
  EXPECT_EQ(j["truncated"], false);
  EXPECT_EQ(j["workers_silent"], 0);
  std::vector<std::string> clients;
  for (const json& c : j["connections"]) {
    clients.push_back(c["client"].get<std::string>().substr(0, 11));
    EXPECT_EQ(c["service"], "127.0.0.1:0");
    EXPECT_EQ(c["backend"], absl::StrCat("127.0.0.2:", echo.port()));
    EXPECT_EQ(c["state"], "relaying");
    EXPECT_EQ(c["bytes_up"], 1);  // Hold() sent one byte, the echo returned it
    EXPECT_EQ(c["bytes_down"], 1);
  }
  std::sort(clients.begin(), clients.end());
  EXPECT_EQ(clients, (std::vector<std::string>{"127.0.40.1:", "127.0.40.2:", "127.0.40.3:",
                                               "127.0.40.4:", "127.0.40.5:"}));
  r = Get(admin, "/connections?service=127.0.0.1:0&limit=2");
  j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_EQ(r.code, 200) << r.body;
  EXPECT_EQ(j["connections"].size(), 2u) << r.body;
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(Get(admin, "/connections?service=nosuch").code, 404);
  EXPECT_EQ(Get(admin, "/connections?limit=many").code, 400);
  EXPECT_EQ(Get(admin, "/connections?limit=10001").code, 400);
  for (int fd : held) close(fd);
  held.clear();
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    const json k = json::parse(Get(admin, "/connections").body, nullptr, false);
    return !k.is_discarded() && k["connections"].empty();
  }));
}

TEST(AdminTest, PrometheusScrapesTheCountsTheTestMade) {
  EchoServer echo("127.0.0.2");
  const uint16_t admin = FreePortOnAll({"127.0.0.1"});
  const std::string token_file = TempDir() + "/prom.token";
  std::ofstream(token_file) << "pr0m\n";
  auto l4lb = StartWithAdmin(echo, admin, {"--admin_token_file=" + token_file});
  ASSERT_NE(l4lb, nullptr);
  for (int i = 0; i < kConnections; ++i) ASSERT_TRUE(EchoRoundTrip(l4lb->port(), kBytes));

  const std::string dir = TempDir() + "/prometheus";
  ASSERT_EQ(RunCommand({"mkdir", "-p", dir + "/data"}, absl::Seconds(5)).exit_code, 0);
  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                        << "scrape_configs:\n  - job_name: l4lb\n"
                        << "    authorization:\n      credentials_file: " << token_file << "\n"
                        << "    static_configs:\n      - targets: ['127.0.0.1:" << admin << "']\n";
  const uint16_t web = FreePortOnAll({"127.0.0.1"});
  absl::StatusOr<std::unique_ptr<Process>> prometheus = Process::Start(
      {"/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir + "/data",
       absl::StrCat("--web.listen-address=127.0.0.1:", web)},
      dir + "/prometheus.log");
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  auto query = [&](const std::string& q) -> double {
    const CommandResult r =
        RunCommand({"curl", "-s", "-m", "5", "-G", "--data-urlencode", "query=" + q,
                    absl::StrCat("http://127.0.0.1:", web, "/api/v1/query")},
                   absl::Seconds(10));
    const json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || j.value("status", "") != "success") return -1;
    const json& result = j["data"]["result"];
    if (!result.is_array() || result.size() != 1) return -1;
    double v = -1;
    return absl::SimpleAtod(result[0]["value"][1].get<std::string>(), &v) ? v : -1;
  };
  double connections = -1;
  EXPECT_TRUE(WaitFor(absl::Seconds(30), [&] {
    connections = query("l4lb_connections_total");
    return connections == kConnections;
  })) << "last answer " << connections << "\n"
      << (*prometheus)->Log();
  EXPECT_EQ(query("sum(l4lb_bytes_total{direction=\"up\"})"), kConnections * kBytes);
  EXPECT_EQ(query("sum(l4lb_bytes_total{direction=\"down\"})"), kConnections * kBytes);
  EXPECT_EQ(query("up{job=\"l4lb\"}"), 1) << "the scrape (with the token) succeeds";
  (*prometheus)->Stop(SIGTERM, absl::Seconds(10));
}

}  // namespace
}  // namespace l4lb::testing
