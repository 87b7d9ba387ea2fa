// What a reload of --config keeps and cuts, end to end (the built l4lb, real
// nginx, TCP and UDP echo servers): new listeners open and removed ones close,
// their connections cut at --drain_timeout; unchanged backends keep their
// health and admin state; a removed backend finishes its download; a UDP reply
// pending across a reload still reaches its client.

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

// Each reload leaves the previous config draining while its connections live;
// past Reloader::kMaxDrainingConfigs (16) the oldest is cut, so a reload loop
// with long-lived clients cannot pile up threads and rings without bound.
TEST_F(ReloadTest, PastSixteenDrainingConfigsTheOldestIsCut) {
  EchoServer echo("127.0.0.2");
  const uint16_t port = FreePortOnAll({"127.0.0.1"});
  ASSERT_NO_FATAL_FAILURE(WriteConfig(absl::StrCat(
      AdminTable(), "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", port, "\"]\n",
      "backends = [\"127.0.0.2:", echo.port(), "\"]\n[service.health]\ncheck = \"none\"\n")));
  ASSERT_NO_FATAL_FAILURE(StartL4lb());
  std::vector<int> held;  // one per config, opened before its reload
  for (int i = 0; i < 17; ++i) {
    held.push_back(ConnectTcp("127.0.0.1", port));
    ASSERT_GE(held.back(), 0);
    ASSERT_TRUE(Echoes(held.back(), "x")) << i;
    const Reload r = Post();
    ASSERT_TRUE(r.success) << i << ": " << r.text;
  }
  EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] {
    return Sample(Metrics(), "l4lb_draining_configs") == 16;
  })) << Metrics();
  SetRecvTimeout(held[0], absl::Seconds(3));
  int error = 0;
  EXPECT_EQ(ReadToEof(held[0], &error), "");
  EXPECT_EQ(error, ECONNRESET) << "the oldest config's connection was not cut: " << strerror(error);
  for (size_t i = 1; i < held.size(); ++i) EXPECT_TRUE(Echoes(held[i], "y")) << i;
  EXPECT_TRUE(l4lb_->HasLine("earlier configs still draining; cutting the oldest", ""));
  for (int fd : held) close(fd);
  EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] {
    return Sample(Metrics(), "l4lb_draining_configs") == 0;
  })) << "drained configs were not freed";
}

// ---------------------------------------------------------------------------
// A backend in both configs keeps what the checker and the operator said of it.

TEST_F(ReloadTest, UnchangedBackendsKeepTheirHealthAndAdminState) {
  const uint16_t port = FreePortOnAll(kHosts);
  std::vector<Server> nginx;
  ASSERT_NO_FATAL_FAILURE(StartNginxOnHosts(port, &nginx));
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
