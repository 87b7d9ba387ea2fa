// Health checking end to end: the built l4lb in front of real servers (nginx,
// vsftpd, sshd from Debian on 127.0.0.2-4) that the tests kill, stop and
// restart by PID, with real curl clients.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// Fast checks, so the timings below are tenths of seconds.
const std::vector<std::string> kFastChecks = {"--health_interval=200ms", "--health_timeout=200ms",
                                              "--health_rise=2", "--health_fall=3"};

std::unique_ptr<L4lb> StartL4lb(std::vector<std::string> flags) {
  flags.insert(flags.begin(), "--listen=127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

// StartL4lb with kFastChecks ahead of `flags`.
std::unique_ptr<L4lb> StartWithFastChecks(std::vector<std::string> flags) {
  flags.insert(flags.begin(), kFastChecks.begin(), kFastChecks.end());
  return StartL4lb(std::move(flags));
}

std::string Backends(uint16_t port, size_t n = 3) {
  std::string out;
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&out, i ? "," : "", kHosts[i], ":", port);
  return out;
}

// curl through l4lb from `source`: the body ("backend 127.0.0.N\n"), or "" on failure.
std::string Get(uint16_t port, const std::string& source = "127.0.0.1",
                const std::string& path = "/") {
  const CommandResult r = RunCommand({"curl", "-s", "--max-time", "5", "--interface", source,
                                      absl::StrCat("http://127.0.0.1:", port, path)},
                                     absl::Seconds(10));
  return r.exit_code == 0 ? r.out : "";
}

// Which backends served `n` requests from distinct source addresses.
std::map<std::string, int> Spread(uint16_t port, int n) {
  std::map<std::string, int> seen;
  for (int i = 0; i < n; ++i) ++seen[Get(port, absl::StrCat("127.0.1.", 1 + i))];
  return seen;
}

// Clients in a loop on a thread while a test flips backends: snapshot swaps
// happen with connections in flight (the part TSan watches in CI).
class Traffic {
 public:
  explicit Traffic(uint16_t port)
      : thread_([this, port] {
          while (!stop_) {
            const int fd = ConnectTcp("127.0.0.1", port);
            if (fd < 0) continue;
            SetRecvTimeout(fd, absl::Seconds(5));
            SendAll(fd, "GET / HTTP/1.0\r\n\r\n");
            ++(absl::StrContains(ReadToEof(fd), "backend 127.0.0.") ? ok_ : failed_);
            close(fd);
          }
        }) {}
  ~Traffic() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::thread thread_;
};

// nginx on 127.0.0.2-4, one port, each answering "backend HOST\n" at / and
// 1 MiB at /big.
class HttpFarm : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePortOnAll(kHosts);
    ASSERT_NE(port_, 0);
    for (size_t i = 0; i < kHosts.size(); ++i) {
      nginx_.emplace_back();
      ASSERT_NO_FATAL_FAILURE(Restart(i));
    }
  }
  void Restart(size_t i) {
    absl::StatusOr<Server> s =
        StartNginx(kHosts[i], port_, absl::StrCat("backend ", kHosts[i], "\n"));
    ASSERT_TRUE(s.ok()) << s.status();
    std::ofstream(s->files + "/big") << std::string(1 << 20, 'x');
    nginx_[i] = *std::move(s);
  }
  Process& nginx(size_t i) { return *nginx_[i].process; }
  std::string Down(size_t i) const { return absl::StrCat("backend ", kHosts[i], ":", port_); }

  uint16_t port_ = 0;
  std::vector<Server> nginx_;
};

TEST_F(HttpFarm, KilledBackendGoesDownInTimeAndComesBackAfterRise) {
  auto l4lb = StartWithFastChecks({
      "--backends=" + Backends(port_), "--health_check=http",
      "--health_passive=false",  // time the probes alone
  });
  ASSERT_NE(l4lb, nullptr);
  absl::SleepFor(absl::Milliseconds(600));  // fully up: several passed checks each
  ASSERT_EQ(l4lb->CountLines("is DOWN", ""), 0) << l4lb->Log();

  Traffic traffic(l4lb->port());
  nginx(0).Stop(SIGKILL, absl::Seconds(5));
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return l4lb->HasLine(Down(0), "is DOWN"); }));
  const absl::Duration took = absl::Now() - killed;
  // interval x fall + timeout, with 10% jitter and 300 ms for the log poll.
  EXPECT_LE(took, absl::Milliseconds(200 * 3 * 1.1 + 200 + 300)) << took;
  EXPECT_TRUE(absl::StrContains(l4lb->Log(), "is DOWN: connect: Connection refused"))
      << l4lb->Log();
  // From now on every client reaches the two others, and none fails.
  const std::map<std::string, int> after = Spread(l4lb->port(), 30);
  EXPECT_EQ(after.count(""), 0u) << "failed requests";
  EXPECT_EQ(after.count("backend 127.0.0.2\n"), 0u);
  EXPECT_GT(after.count("backend 127.0.0.3\n") + after.count("backend 127.0.0.4\n"), 1u);

  ASSERT_NO_FATAL_FAILURE(Restart(0));
  const absl::Time restarted = absl::Now();
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return l4lb->HasLine(Down(0), "is UP"); }))
      << l4lb->Log();
  // rise = 2 probes, 200 ms (+-10%) apart.
  EXPECT_LE(absl::Now() - restarted, absl::Milliseconds(200 * 2 * 1.1 + 200 + 300));
  EXPECT_GT(Spread(l4lb->port(), 30)["backend 127.0.0.2\n"], 0);
  traffic.Stop();
  EXPECT_GT(traffic.ok(), 10);
  // Clients already relayed to the killed backend may fail; nobody else does.
  EXPECT_LE(traffic.failed(), 3) << traffic.ok() << " ok";
}

TEST_F(HttpFarm, PassiveFailuresEjectBeforeTheNextProbe) {
  std::vector<std::string> flags = {"--health_interval=30s", "--health_timeout=1s",
                                    "--backends=" + Backends(port_), "--health_check=http"};
  auto l4lb = StartL4lb(flags);
  ASSERT_NE(l4lb, nullptr);
  absl::SleepFor(absl::Milliseconds(300));  // the first round of probes passed
  nginx(1).Stop(SIGKILL, absl::Seconds(5));
  // Clients that pick 127.0.0.3 are refused, retried elsewhere, and reported.
  const std::map<std::string, int> spread = Spread(l4lb->port(), 30);
  EXPECT_EQ(spread.count(""), 0u);
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return l4lb->HasLine(Down(1), "is DOWN"); }))
      << l4lb->Log();
  EXPECT_TRUE(absl::StrContains(l4lb->Log(), "on client traffic")) << l4lb->Log();
}

TEST_F(HttpFarm, LongTransferIsNotBrokenWhenAnotherBackendGoesDown) {
  auto l4lb = StartWithFastChecks({
      "--backends=" + Backends(port_, 2),
      "--health_check=http",
  });
  ASSERT_NE(l4lb, nullptr);
  // A source address that lands on 127.0.0.3 (src_ip hashing: the same every time).
  std::string source;
  for (int i = 1; i < 50 && source.empty(); ++i) {
    const std::string candidate = absl::StrCat("127.0.2.", i);
    if (Get(l4lb->port(), candidate) == "backend 127.0.0.3\n") source = candidate;
  }
  ASSERT_FALSE(source.empty());
  // 1 MiB at 500 KiB/s: two seconds, during which the other backend dies.
  const std::string out = absl::StrCat(TempDir(), "/long-transfer");
  absl::StatusOr<std::unique_ptr<Process>> curl = Process::Start(
      {"/usr/bin/curl", "-s", "--limit-rate", "500k", "--interface", source, "-o", out, "-w",
       "%{size_download}", absl::StrCat("http://127.0.0.1:", l4lb->port(), "/big")},
      out + ".log");
  ASSERT_TRUE(curl.ok()) << curl.status();
  absl::SleepFor(absl::Milliseconds(300));
  nginx(0).Stop(SIGKILL, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] { return l4lb->HasLine(Down(0), "is DOWN"); }));
  EXPECT_EQ((*curl)->Wait(absl::Seconds(10)), 0) << (*curl)->Log();
  EXPECT_EQ((*curl)->Log(), absl::StrCat(1 << 20)) << "bytes downloaded";
}

TEST_F(HttpFarm, NoHealthyBackendClosesClientsAtOnceAndRecovers) {
  auto l4lb = StartWithFastChecks({
      "--backends=" + Backends(port_, 1),
      "--health_check=http",
  });
  ASSERT_NE(l4lb, nullptr);
  nginx(0).Stop(SIGKILL, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] {
    return absl::StrContains(l4lb->Log(), "no healthy backend; new clients are closed");
  })) << l4lb->Log();
  const absl::Time start = absl::Now();
  EXPECT_EQ(Get(l4lb->port()), "");
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500)) << "the client waited";
  EXPECT_TRUE(l4lb->process().Running());
  ASSERT_NO_FATAL_FAILURE(Restart(0));
  EXPECT_TRUE(
      WaitFor(absl::Seconds(3), [&] { return Get(l4lb->port()) == "backend 127.0.0.2\n"; }));
}

// A backend that hangs (SIGSTOP) fails its probes by timeout; with --kill_on_down
// its live connections are reset, without it they are left alone.
TEST_F(HttpFarm, KillOnDownResetsLiveConnectionsOnlyWhenAsked) {
  for (const bool kill_on_down : {false, true}) {
    auto l4lb = StartWithFastChecks({
        "--backends=" + Backends(port_, 1),
        "--health_check=http",
        absl::StrCat("--kill_on_down=", kill_on_down ? "true" : "false"),
    });
    ASSERT_NE(l4lb, nullptr);
    const int client = ConnectTcp("127.0.0.1", l4lb->port());
    ASSERT_GE(client, 0);
    SetRecvTimeout(client, absl::Seconds(3));
    ASSERT_TRUE(SendAll(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    // The whole reply (a keep-alive connection, relayed), so nothing is left unread.
    std::string reply;
    ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] {
      char buf[4096];
      const ssize_t got = recv(client, buf, sizeof(buf), MSG_DONTWAIT);
      if (got > 0) reply.append(buf, got);
      return absl::StrContains(reply, "backend 127.0.0.2\n");
    })) << reply;
    kill(nginx(0).pid(), SIGSTOP);
    ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] { return l4lb->HasLine(Down(0), "is DOWN"); }))
        << l4lb->Log();
    char c;
    const ssize_t n = recv(client, &c, 1, MSG_DONTWAIT);
    absl::SleepFor(absl::Milliseconds(200));
    const ssize_t later = recv(client, &c, 1, MSG_DONTWAIT);
    const int err = errno;
    if (kill_on_down) {
      EXPECT_TRUE(later <= 0 && (later == 0 || err == ECONNRESET)) << later << " " << err;
      EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
        return l4lb->HasLine("close=backend_down", "");
      })) << l4lb->Log();
    } else {
      EXPECT_TRUE(n < 0 && later < 0 && err == EAGAIN) << "the connection must stay open";
    }
    close(client);
    kill(nginx(0).pid(), SIGCONT);
  }
}

// The protocol checks against the real servers they are for, and against the
// wrong ones: a check passes only when the backend speaks its protocol.
TEST(BannerChecks, EachCheckPassesOnItsServerAndFailsOnTheOthers) {
  const uint16_t port = FreePortOnAll(kHosts);
  ASSERT_NE(port, 0);
  VsftpdOptions ftp_options;
  ftp_options.banner = "farm-ftp";
  absl::StatusOr<Server> ftp = StartVsftpd(kHosts[0], port, ftp_options);
  ASSERT_TRUE(ftp.ok()) << ftp.status();
  absl::StatusOr<Server> ssh = StartSshd(kHosts[1], port, {.banner = "farm-ssh"});
  ASSERT_TRUE(ssh.ok()) << ssh.status();
  absl::StatusOr<Server> http = StartNginx(kHosts[2], port, "backend 127.0.0.4\n");
  ASSERT_TRUE(http.ok()) << http.status();
  const std::string name[] = {absl::StrCat("backend 127.0.0.2:", port),
                              absl::StrCat("backend 127.0.0.3:", port),
                              absl::StrCat("backend 127.0.0.4:", port)};
  struct Case {
    std::string check;
    int passes;  // the one backend that stays up
    // Why each other one is DOWN. An SSH server may send lines before its
    // identification (RFC 4253 4.2), so FTP's greeting fails the ssh check only at
    // the timeout.
    std::string reasons[3];
  };
  const Case cases[] = {
      {"ftp", 0, {"", "bad banner: got \"SSH-2.0-", "timeout while waiting for the reply"}},
      {"ssh",
       1,
       {"timeout while waiting for the reply (got \"220 farm-ftp", "",
        "timeout while waiting for the reply"}},
      {"http", 2, {"", "", ""}},  // vsftpd and sshd do not answer HTTP with a status line
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.check);
    auto l4lb = StartWithFastChecks({
        "--backends=" + Backends(port),
        "--health_check=" + c.check,
        "--health_passive=false",
    });
    ASSERT_NE(l4lb, nullptr);
    for (int i = 0; i < 3; ++i) {
      if (i == c.passes) continue;
      EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] { return l4lb->HasLine(name[i], "is DOWN"); }))
          << name[i] << "\n"
          << l4lb->Log();
      if (!c.reasons[i].empty()) {
        EXPECT_TRUE(l4lb->HasLine(name[i], "is DOWN: " + c.reasons[i])) << l4lb->Log();
      }
    }
    // Several more rounds of checks: the right server stays up and gets every client.
    absl::SleepFor(absl::Milliseconds(600));
    EXPECT_FALSE(l4lb->HasLine(name[c.passes], "is DOWN")) << l4lb->Log();
    const int fd = ConnectTcp("127.0.0.1", l4lb->port());
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(3));
    if (c.check == "http") {
      SendAll(fd, "GET / HTTP/1.0\r\n\r\n");
      EXPECT_TRUE(absl::StrContains(ReadToEof(fd), "backend 127.0.0.4")) << c.check;
    } else {
      // The server speaks first: its greeting names it.
      std::string greeting;
      WaitFor(absl::Seconds(3), [&] {
        char buf[512];
        const ssize_t got = recv(fd, buf, sizeof(buf), 0);
        if (got > 0) greeting.append(buf, got);
        return got <= 0 || absl::StrContains(greeting, "\n");
      });
      EXPECT_TRUE(absl::StrContains(greeting, c.check == "ftp" ? "220 farm-ftp" : "farm-ssh"))
          << greeting;
    }
    close(fd);
  }
}

}  // namespace
}  // namespace l4lb::testing
