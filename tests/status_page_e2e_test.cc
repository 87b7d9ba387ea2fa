// The status page (GET / of the admin endpoint) in a real browser: Debian's
// headless Chromium loads it from a real l4lb (two services: nginx and echo
// backends, a token), runs its script, and the test reads the rendered DOM:
// every backend and its state, the counts of the traffic the test made, a
// backend that dies shown DOWN and UP again once it is back, and the STALE
// warning when /status cannot be fetched. The screenshot of the page with a
// backend DOWN is kept as a test artifact:
// $TEST_UNDECLARED_OUTPUTS_DIR/status_page.png (bazel-testlogs/tests/
// status_page_e2e_test/test.outputs/), the README's doc/status_page.png.
//
// Chromium starts slowly here (seconds): four runs in all.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/http_client.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

using nlohmann::json;

constexpr char kToken[] = "wall-screen-t0ken";
constexpr int kRequests = 12;             // curl GETs through the "web" service
constexpr int kEchoes = 5;                // round trips through "api"
constexpr size_t kBodyBytes = 64 * 1024;  // nginx's index.html: a throughput to show
constexpr size_t kEchoBytes = 32 * 1024;

using Reply = HttpReply;

// GET with curl, the token as a header unless `header` is false.
Reply Get(uint16_t port, const std::string& path, bool header = true) {
  return Http("GET", port, path, header ? kToken : "");
}

json Status(uint16_t admin) {
  const Reply r = Get(admin, "/status");
  if (r.code != 200) return json();
  return json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}

// Client addresses: l4lb hashes the client's IP to pick a backend, so traffic
// from many addresses spreads over the backends by weight.
std::string Client(int i) { return absl::StrCat("127.0.1.", 1 + i % 200); }

// One connection through `port` that sends `bytes` and reads them back.
bool EchoRoundTrip(uint16_t port, size_t bytes, const std::string& source) {
  const int fd = ConnectTcp("127.0.0.1", port, source);
  if (fd < 0) return false;
  SetRecvTimeout(fd, absl::Seconds(5));
  const std::string data(bytes, 'e');
  bool ok = SendAll(fd, data);
  shutdown(fd, SHUT_WR);
  ok = ok && ReadToEof(fd) == data;
  close(fd);
  return ok;
}

// One HTTP/1.0 GET through `port` (no curl process: the load loop below runs
// many), true if nginx's 200 and the whole body came back.
bool HttpGet(uint16_t port, const std::string& source) {
  const int fd = ConnectTcp("127.0.0.1", port, source);
  if (fd < 0) return false;
  SetRecvTimeout(fd, absl::Seconds(5));
  const bool sent = SendAll(fd, "GET / HTTP/1.0\r\n\r\n");
  const std::string answer = ReadToEof(fd);
  close(fd);
  return sent && absl::StartsWith(answer, "HTTP/1.1 200 ") && answer.size() > kBodyBytes;
}

// What one Chromium run rendered.
struct Page {
  std::string dom;  // --dump-dom: the document after the script ran
  std::string log;  // chromium's stderr, for failures

  // The attributes of the first start tag that matches `tag_regex`, name -> value.
  std::map<std::string, std::string> Tag(const std::string& tag_regex) const {
    std::map<std::string, std::string> attributes;
    std::smatch m;
    if (!std::regex_search(dom, m, std::regex(tag_regex))) return attributes;
    const std::string tag = m[0];
    static const std::regex kAttribute(R"re(([a-z-]+)="([^"]*)")re");
    for (auto it = std::sregex_iterator(tag.begin(), tag.end(), kAttribute);
         it != std::sregex_iterator(); ++it) {
      attributes[(*it)[1]] = (*it)[2];
    }
    return attributes;
  }
  std::map<std::string, std::string> Body() const { return Tag("<body[^>]*>"); }
  std::map<std::string, std::string> Service(const std::string& name) const {
    return Tag("<section[^>]*data-service=\"" + name + "\"[^>]*>");
  }
  std::map<std::string, std::string> Backend(const std::string& name) const {
    return Tag("<tr[^>]*data-backend=\"" + name + "\"[^>]*>");
  }
  // The text of the backend row's cell `field` (markup inside it removed).
  std::string Cell(const std::string& backend, const std::string& field) const {
    std::smatch m;
    const std::regex row("<tr[^>]*data-backend=\"" + backend + "\"[^>]*>(.*?)</tr>");
    if (!std::regex_search(dom, m, row)) return "(no row)";
    const std::string cells = m[1];
    const std::regex cell("<td[^>]*data-field=\"" + field + "\"[^>]*>(.*?)</td>");
    if (!std::regex_search(cells, m, cell)) return "(no cell)";
    return std::regex_replace(m[1].str(), std::regex("<[^>]*>"), "");
  }
};

// Debian's Chromium, headless, on `url`; --virtual-time-budget lets the page's
// timers run for 5 s of virtual time (network waits pause it), so the script
// polls /status a few times before the DOM is dumped. Killed by PID at 45 s.
Page Browse(const std::string& url, const std::string& screenshot = "") {
  static int run = 0;
  std::vector<std::string> argv = {"chromium",
                                   "--headless=new",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   absl::StrCat("--user-data-dir=", TempDir(), "/chromium-", ++run),
                                   "--no-first-run",
                                   "--disable-extensions",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--virtual-time-budget=5000",
                                   "--window-size=1600,900",
                                   "--hide-scrollbars"};
  if (!screenshot.empty()) argv.push_back("--screenshot=" + screenshot);
  argv.insert(argv.end(), {"--dump-dom", url});
  const absl::Time start = absl::Now();
  const CommandResult r = RunCommand(argv, absl::Seconds(45));
  std::printf("chromium run %d: %.1f s, exit %d\n", run, absl::ToDoubleSeconds(absl::Now() - start),
              r.exit_code);
  return Page{r.out, r.err};
}

std::string Addr(const Server& s) { return absl::StrCat(s.host, ":", s.port); }

// The PNG's width and height from its IHDR chunk, or {0, 0}.
std::pair<int, int> PngSize(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(24, '\0');
  if (!in.read(head.data(), head.size()) || head.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) {
    return {0, 0};
  }
  auto be32 = [&](size_t at) {
    return static_cast<int>(
        static_cast<uint8_t>(head[at]) << 24 | static_cast<uint8_t>(head[at + 1]) << 16 |
        static_cast<uint8_t>(head[at + 2]) << 8 | static_cast<uint8_t>(head[at + 3]));
  };
  return {be32(16), be32(20)};
}

class StatusPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<std::string> hosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
    web_port_ = FreePortOnAll(hosts);
    ASSERT_NE(web_port_, 0);
    for (const std::string& host : hosts) {
      absl::StatusOr<Server> nginx = StartNginx(host, web_port_, std::string(kBodyBytes, 'w'));
      ASSERT_TRUE(nginx.ok()) << nginx.status();
      web_.push_back(*std::move(nginx));
    }
    echo_.push_back(std::make_unique<EchoServer>("127.0.0.2"));
    echo_.push_back(std::make_unique<EchoServer>("127.0.0.3"));
    admin_ = FreePortOnAll({"127.0.0.1"});
    const std::string token_file = TempDir() + "/admin.token";
    std::ofstream(token_file) << kToken << "\n";
    const std::string config = TempDir() + "/l4lb.toml";
    std::ofstream(config) << absl::StrCat(
        "[admin]\n"
        "listen = \"127.0.0.1:",
        admin_, "\"\n", "token_file = \"", token_file, "\"\n\n",
        "[defaults.health]\n"
        "interval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 1\n\n"
        "[[service]]\n"
        "name = \"web\"\n"
        "listen = [\"127.0.0.1:0\"]\n",
        "backends = [\"", Addr(web_[0]), "\", { address = \"", Addr(web_[1]),
        "\", weight = 2 }, \"", Addr(web_[2]), "\"]\n",
        "[service.health]\ncheck = \"http\"\n\n"
        "[[service]]\n"
        "name = \"api\"\n"
        "listen = [\"127.0.0.1:0\"]\n",
        "backends = [\"127.0.0.2:", echo_[0]->port(), "\", \"127.0.0.3:", echo_[1]->port(),
        "\"]\n");
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start({"--config=" + config, "--threads=2"});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
    ASSERT_EQ(l4lb_->ports().size(), 2u);
    page_url_ = absl::StrCat("http://127.0.0.1:", admin_, "/?token=", kToken);
  }

  // Every backend's state in /status once each has been probed, "" before.
  std::map<std::string, std::string> States() {
    std::map<std::string, std::string> states;
    const json status = Status(admin_);
    if (!status.is_object()) return states;
    for (const json& service : status["services"]) {
      for (const json& b : service["backends"]) {
        if (b["last_check"].is_null()) return {};
        states[b["name"].get<std::string>()] = b["state"].get<std::string>();
      }
    }
    return states;
  }

  std::vector<std::string> Backends() const {
    return {Addr(web_[0]), Addr(web_[1]), Addr(web_[2]),
            absl::StrCat("127.0.0.2:", echo_[0]->port()),
            absl::StrCat("127.0.0.3:", echo_[1]->port())};
  }

  bool AllUp() {
    const std::map<std::string, std::string> states = States();
    if (states.size() != 5) return false;
    for (const auto& [name, state] : states) {
      if (state != "UP") return false;
    }
    return true;
  }

  uint16_t web_port_ = 0;
  uint16_t admin_ = 0;
  std::vector<Server> web_;
  std::vector<std::unique_ptr<EchoServer>> echo_;
  std::unique_ptr<L4lb> l4lb_;
  std::string page_url_;
};

TEST_F(StatusPageTest, ShowsEveryBackendFollowsOneThatDiesAndWarnsWhenStale) {
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return AllUp(); })) << Get(admin_, "/status").body;
  const uint16_t web = l4lb_->ports()[0];
  const uint16_t api = l4lb_->ports()[1];
  for (int i = 0; i < kRequests; ++i) {
    const CommandResult r =
        RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", Client(i),
                    absl::StrCat("http://127.0.0.1:", web, "/")},
                   absl::Seconds(10));
    ASSERT_EQ(r.out, "200") << r.err;
  }
  for (int i = 0; i < kEchoes; ++i) ASSERT_TRUE(EchoRoundTrip(api, kEchoBytes, Client(i)));
  // A connection's end is counted a CQE or two after the client saw EOF.
  json status;
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] {
    status = Status(admin_);
    return status.is_object() && status["services"][0]["active_connections"] == 0 &&
           status["services"][1]["active_connections"] == 0;
  })) << status.dump(2);

  // 1. Every backend UP, with the counts of the traffic above.
  const Page up = Browse(page_url_);
  status = Status(admin_);
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(up.Body()["data-stale"], "false") << up.log;
  int samples = 0;
  EXPECT_TRUE(absl::SimpleAtoi(up.Body()["data-samples"], &samples)) << up.dom.substr(0, 2000);
  EXPECT_GE(samples, 2) << "the page polls /status again by itself";
  EXPECT_NE(up.dom.find("data-field=\"service-name\">web</span>"), std::string::npos);
  EXPECT_NE(up.dom.find("data-field=\"service-name\">api</span>"), std::string::npos);
  EXPECT_EQ(up.Service("web")["data-accepted"], std::to_string(kRequests));
  EXPECT_EQ(up.Service("api")["data-accepted"], std::to_string(kEchoes));
  const std::vector<std::string> backends = Backends();
  const std::vector<std::string> weights = {"1", "2", "1", "1", "1"};
  int web_connections = 0;
  uint64_t web_bytes_down = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    SCOPED_TRACE(backends[i]);
    std::map<std::string, std::string> row = up.Backend(backends[i]);
    EXPECT_EQ(row["data-state"], "UP");
    EXPECT_EQ(up.Cell(backends[i], "state"), "UP");  // the badge's text, not only the attribute
    EXPECT_EQ(row["data-weight"], weights[i]);
    EXPECT_EQ(up.Cell(backends[i], "weight"), weights[i]);
    EXPECT_EQ(row["data-check"], "pass");
    EXPECT_TRUE(absl::StartsWith(up.Cell(backends[i], "check"), "✓ pass"))
        << up.Cell(backends[i], "check");
    // What the page shows is what /status says, cell by cell.
    const json& b = status["services"][i < 3 ? 0 : 1]["backends"][i < 3 ? i : i - 3];
    ASSERT_EQ(b["name"], backends[i]);
    EXPECT_EQ(row["data-connections"], std::to_string(b["connections_total"].get<int>()));
    EXPECT_EQ(up.Cell(backends[i], "connections"), row["data-connections"]);
    EXPECT_EQ(up.Cell(backends[i], "active"), "0");
    int connections = 0;
    uint64_t bytes_down = 0;
    EXPECT_TRUE(absl::SimpleAtoi(row["data-connections"], &connections));
    EXPECT_TRUE(absl::SimpleAtoi(row["data-bytes-down"], &bytes_down));
    if (i < 3) {
      web_connections += connections;
      web_bytes_down += bytes_down;
    }
  }
  EXPECT_EQ(web_connections, kRequests);
  EXPECT_GE(web_bytes_down, kRequests * kBodyBytes);
  EXPECT_EQ(
      up.Cell(backends[1], "share"),
      absl::StrCat(
          std::lround(100.0 * status["services"][0]["backends"][1]["connections_total"].get<int>() /
                      kRequests),
          "%"));

  // 2. A backend dies: DOWN on the page once /status says so, with the
  // probe's reason. Traffic meanwhile, for the screenshot's throughput.
  web_[1].process->Stop(SIGKILL, absl::Seconds(5));
  std::atomic<bool> loading{true};
  std::atomic<int> loaded{0};
  std::thread load([&] {
    for (int i = 0; loading.load(); ++i) {
      if (HttpGet(web, Client(i))) loaded.fetch_add(1);
    }
  });
  const absl::Time killed = absl::Now();
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return States()[backends[1]] == "DOWN"; }));
  std::printf("/status says DOWN %.2f s after the kill\n",
              absl::ToDoubleSeconds(absl::Now() - killed));
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string png =
      std::string(outputs != nullptr ? outputs : TempDir().c_str()) + "/status_page.png";
  const Page down = Browse(page_url_, png);
  std::printf("page shows DOWN %.2f s after the kill\n",
              absl::ToDoubleSeconds(absl::Now() - killed));
  loading = false;
  load.join();
  EXPECT_GT(loaded.load(), 0);
  EXPECT_EQ(down.Body()["data-stale"], "false") << down.log;
  EXPECT_EQ(down.Backend(backends[1])["data-state"], "DOWN") << down.dom;
  EXPECT_EQ(down.Cell(backends[1], "state"), "DOWN");
  EXPECT_EQ(down.Backend(backends[1])["data-check"], "fail");
  EXPECT_NE(down.Cell(backends[1], "check").find("refused"), std::string::npos)
      << down.Cell(backends[1], "check");
  for (size_t i : {0, 2, 3, 4}) EXPECT_EQ(down.Backend(backends[i])["data-state"], "UP");
  EXPECT_NE(down.dom.find("data-field=\"health\">2/3 UP<"), std::string::npos);
  const auto [width, height] = PngSize(png);
  EXPECT_EQ(width, 1600) << png;
  EXPECT_EQ(height, 900);

  // 3. Back: UP again, and the figures go on from where they were; drain and
  // maint (admin actions) show as DRAIN and MAINT.
  absl::StatusOr<Server> again =
      StartNginx(web_[1].host, web_[1].port, std::string(kBodyBytes, 'w'));
  ASSERT_TRUE(again.ok()) << again.status();
  web_[1] = *std::move(again);
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return AllUp(); }));
  // The admin actions show on the page: one web backend drained, one in maintenance.
  ASSERT_EQ(
      Http("POST", admin_, absl::StrCat("/services/web/backends/", backends[0], "/drain"), kToken)
          .code,
      200);
  ASSERT_EQ(
      Http("POST", admin_, absl::StrCat("/services/web/backends/", backends[2], "/maint"), kToken)
          .code,
      200);
  const Page back = Browse(page_url_);
  status = Status(admin_);
  EXPECT_EQ(back.Backend(backends[0])["data-state"], "DRAIN") << back.dom;
  EXPECT_EQ(back.Cell(backends[0], "state"), "DRAIN");
  EXPECT_EQ(back.Backend(backends[2])["data-state"], "MAINT");
  EXPECT_EQ(back.Cell(backends[2], "state"), "MAINT");
  for (size_t i : {1, 3, 4}) EXPECT_EQ(back.Backend(backends[i])["data-state"], "UP") << i;
  EXPECT_EQ(back.Service("web")["data-accepted"],
            std::to_string(status["services"][0]["accepted_connections"].get<int>()));
  EXPECT_GE(status["services"][0]["accepted_connections"].get<int>(), kRequests + loaded.load());

  // 4. /status out of reach: the same page, saved and opened from a file,
  // whose fetch of "status" fails, shows the STALE warning.
  const Reply html = Get(admin_, "/");
  ASSERT_EQ(html.code, 200);
  const std::string file = TempDir() + "/status_page.html";
  std::ofstream(file) << html.body;
  const Page stale = Browse("file://" + file);
  EXPECT_EQ(stale.Body()["data-stale"], "true") << stale.dom.substr(0, 3000);
  const std::map<std::string, std::string> banner = stale.Tag("<div id=\"stale\"[^>]*>");
  EXPECT_EQ(banner.count("hidden"), 0u) << "the warning is visible";
  EXPECT_NE(stale.dom.find(">STALE: no answer from /status yet"), std::string::npos);
}

// The page opens with ?token= (a browser's address bar sends no header); the
// data it shows still needs the header, and no token opens nothing.
TEST_F(StatusPageTest, TokenInTheUrlOpensThePageOnly) {
  const Reply page = Get(admin_, absl::StrCat("/?token=", kToken), /*header=*/false);
  EXPECT_EQ(page.code, 200);
  EXPECT_NE(page.headers.find("Content-Type: text/html; charset=utf-8"), std::string::npos)
      << page.headers;
  EXPECT_NE(page.headers.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_NE(page.headers.find("Referrer-Policy: no-referrer"), std::string::npos);
  EXPECT_TRUE(absl::StartsWith(page.body, "<!doctype html>"));
  EXPECT_EQ(Get(admin_, "/", /*header=*/true).code, 200);
  EXPECT_EQ(Get(admin_, "/", /*header=*/false).code, 401);
  EXPECT_EQ(Get(admin_, "/?token=wrong", /*header=*/false).code, 401);
  EXPECT_EQ(Get(admin_, absl::StrCat("/?token=", kToken, "x"), /*header=*/false).code, 401);
  EXPECT_EQ(Get(admin_, absl::StrCat("/status?token=", kToken), /*header=*/false).code, 401);
  EXPECT_EQ(Get(admin_, absl::StrCat("/metrics?token=", kToken), /*header=*/false).code, 401);
  EXPECT_EQ(Get(admin_, absl::StrCat("/api?token=", kToken), /*header=*/false).code, 401);
  const Reply routes = Get(admin_, "/api");
  EXPECT_EQ(routes.code, 200);
  EXPECT_NE(routes.body.find("GET /status"), std::string::npos) << routes.body;
}

}  // namespace
}  // namespace l4lb::testing
