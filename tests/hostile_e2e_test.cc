// Hostile input against the running binary, with real sockets: junk, connections
// closed at once or reset, idle connections by the thousand, a flood of short
// connections from one host's distinct source ports, and the open-files limit
// run out. l4lb must stay up, keep serving others, log boundedly, and return to
// its baseline fd count and memory afterwards.

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/echo_l4lb.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

// `n` connections to l4lb from 127.1.x.y (250 clients per /24), left open.
void OpenIdle(uint16_t port, int n, std::vector<int>* idle) {
  for (int i = 0; i < n; ++i) {
    const int fd = ConnectTcp("127.0.0.1", port, absl::StrCat("127.1.", i / 250, ".", 1 + i % 250));
    ASSERT_GE(fd, 0) << "connection " << i << ": " << strerror(errno);
    idle->push_back(fd);
  }
}

// Lowers the open-files limit of l4lb (`pid`) to 200 and opens 150 connections
// to it from 127.0.95.x: the ones that connected go to `held`. Only the soft
// limit, so `saved` (the limit before) can be raised back.
void LowerFdLimitAndHold150(pid_t pid, uint16_t port, rlimit* saved, std::vector<int>* held) {
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, saved), 0);
  const rlimit low{.rlim_cur = 200, .rlim_max = saved->rlim_max};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);
  for (int i = 0; i < 150; ++i) {
    const int fd = ConnectTcp("127.0.0.1", port, absl::StrCat("127.0.95.", 1 + i));
    if (fd >= 0) held->push_back(fd);
  }
}

int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = 0;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
    }
  }
  return -1;
}

// Anonymous memory in RAM (heap, stacks, tables: where a leak grows), in KiB,
// from smaps_rollup. Not VmRSS, nor Private_*: both count library pages, which
// move between private and shared as other processes mapping them come and go.
int64_t AnonymousKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Anonymous:", 0) != 0) continue;
    int64_t kib = 0;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
  }
  return -1;
}

TEST(HostileTest, JunkResetsAndAbandonedConnectionsLeaveNoTrace) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {"--idle_timeout=2s"});
  ASSERT_NE(l4lb, nullptr);
  ASSERT_TRUE(Ping(l4lb->port()));
  const int fds_before = l4lb->FdCount();
  std::mt19937_64 rng(12);
  for (int i = 0; i < 300; ++i) {
    const int fd = ConnectTcp("127.0.0.1", l4lb->port(), absl::StrCat("127.0.90.", 1 + i % 50));
    ASSERT_GE(fd, 0) << i;
    switch (i % 4) {
      case 0: {  // random bytes, then gone
        std::string junk(1 + rng() % 4096, 0);
        for (char& c : junk) c = static_cast<char>(rng());
        SendAll(fd, junk);
        close(fd);
        break;
      }
      case 1:  // closed at once
        close(fd);
        break;
      case 2: {  // reset with bytes in flight
        SendAll(fd, std::string(10000, 'r'));
        const linger reset{.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        close(fd);
        break;
      }
      case 3:  // half-closed and abandoned: never reads the echo
        SendAll(fd, "half");
        shutdown(fd, SHUT_WR);
        close(fd);
        break;
    }
  }
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.91.1")) << "others are served throughout";
  EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] { return l4lb->FdCount() <= fds_before; }))
      << l4lb->FdCount() << " fds, " << fds_before << " before";
  EXPECT_TRUE(l4lb->process().Running());
}

TEST(HostileTest, FiveThousandIdleConnectionsCostBoundedMemoryAndAllGoAway) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {});
  ASSERT_NE(l4lb, nullptr);
  ASSERT_TRUE(Ping(l4lb->port()));
  const int fds_before = l4lb->FdCount();
  const int64_t rss_before = RssKib(l4lb->process().pid());
  std::vector<int> idle;
  ASSERT_NO_FATAL_FAILURE(OpenIdle(l4lb->port(), 5000, &idle));
  ASSERT_TRUE(WaitFor(absl::Seconds(20), [&] { return echo.open_connections() >= 5000; }))
      << echo.open_connections() << " reached the backend";
  const int64_t rss_idle = RssKib(l4lb->process().pid());
  const double per_connection = (rss_idle - rss_before) * 1024.0 / 5000;
  std::printf("RSS per idle connection: %.0f bytes (%lld -> %lld KiB)\n", per_connection,
              static_cast<long long>(rss_before), static_cast<long long>(rss_idle));
  EXPECT_LT(per_connection, 2048) << "more than 2 KiB per idle connection";
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.92.1")) << "a new client with 5,000 others idle";
  for (int fd : idle) close(fd);
  EXPECT_TRUE(WaitFor(absl::Seconds(20), [&] { return l4lb->FdCount() <= fds_before; }))
      << l4lb->FdCount();
}

TEST(HostileTest, FloodFromFiftyThousandSourcePortsIsRefusedAndLoggedBoundedly) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {"--client_rate=50/s", "--ban_after=20", "--ban_time=60s"});
  ASSERT_NE(l4lb, nullptr);
  const int fds_before = l4lb->FdCount();
  const absl::Time start = absl::Now();
  int connected = 0;
  // (<=: pipes pooled at the baseline may have been trimmed since.)
  // One host, a new source port each time (the kernel picks it), as fast as
  // connect goes: bounded at 50,000 and 60 s.
  for (int i = 0; i < 50'000 && absl::Now() - start < absl::Seconds(60); ++i) {
    const int fd = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.93.1");
    if (fd < 0) continue;
    ++connected;
    const linger reset{.l_onoff = 1, .l_linger = 0};  // no TIME_WAIT: ports stay free
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(fd);
  }
  const absl::Duration took = absl::Now() - start;
  std::printf("%d connects from one host in %s\n", connected, absl::FormatDuration(took).c_str());
  EXPECT_GT(connected, 10'000);
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.94.1")) << "other hosts are served";
  EXPECT_FALSE(Ping(l4lb->port(), "127.0.93.1")) << "the flooding host is banned";
  EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] { return l4lb->FdCount() <= fds_before; }));
  // At most a line a second per worker for refusals, whatever the flood's size.
  const double seconds = absl::ToDoubleSeconds(took) + 2;
  EXPECT_LE(l4lb->CountLines("refused client", ""), 2 * seconds + 2);
  l4lb->process().Stop(SIGTERM, absl::Seconds(10));
  EXPECT_TRUE(l4lb->HasLine("exiting", "refused_banned=")) << l4lb->Log();
}

TEST(HostileTest, OpenFilesLimitRunOutPausesAcceptsAndRecovers) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {"--threads=1"});
  ASSERT_NE(l4lb, nullptr);
  ASSERT_TRUE(Ping(l4lb->port()));
  // The operator lowers the running l4lb's open-files limit (prlimit(1) does the
  // same) below what its --max_connections was derived from: accept itself meets
  // EMFILE. Only the soft limit, so it can be raised back.
  const pid_t pid = l4lb->process().pid();
  rlimit saved{};
  std::vector<int> held;
  ASSERT_NO_FATAL_FAILURE(LowerFdLimitAndHold150(pid, l4lb->port(), &saved, &held));
  // Past ~90 connections l4lb has no fd left: accept pauses (the rest wait in
  // the backlog) or a backend socket fails (that client is reset).
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    return l4lb->HasLine("accept on", "Too many open files") ||
           l4lb->HasLine("Too many open files", "");
  })) << l4lb->Log();
  EXPECT_TRUE(l4lb->process().Running());
  // The established ones still relay.
  int echoed = 0;
  for (int i = 0; i < 20 && i < static_cast<int>(held.size()); ++i) {
    SetRecvTimeout(held[i], absl::Seconds(5));
    echoed += SendAll(held[i], "e") && ReadN(held[i], 1) == "e";
  }
  EXPECT_EQ(echoed, 20);
  for (int fd : held) close(fd);
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &saved, nullptr), 0);
  // Once fds are back, new clients are served again.
  EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] { return Ping(l4lb->port(), "127.0.96.1"); }));
  // Bounded log: the EMFILE line is rate-limited.
  EXPECT_LE(l4lb->CountLines("Too many open files", ""), 30) << l4lb->Log();
}

// Every flood above in one l4lb, twice: the first round brings pools, tables
// and malloc's arenas to their working size (the baseline), the second must
// leave memory and fds where the first did. A leak per connection (50,000
// refused, 5,000 idle, 300 junk per round) would show as megabytes.
TEST(HostileTest, MemoryAndFdsReturnToBaselineAfterEveryFlood) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(
      echo, {"--idle_timeout=2s", "--client_rate=50/s", "--ban_after=20", "--ban_time=60s"});
  ASSERT_NE(l4lb, nullptr);
  ASSERT_TRUE(Ping(l4lb->port()));
  const pid_t pid = l4lb->process().pid();
  const int fds_start = l4lb->FdCount();
  const int64_t anon_start = AnonymousKib(pid);
  ASSERT_GT(anon_start, 0);
  std::mt19937_64 rng(14);
  int fds_end = -1;  // when the last round's connections were all gone
  const auto round = [&](int r) {
    SCOPED_TRACE(absl::StrCat("round ", r));
    // Junk, closes, resets with bytes in flight, half-open and abandoned.
    for (int i = 0; i < 300; ++i) {
      const int fd = ConnectTcp("127.0.0.1", l4lb->port(), absl::StrCat("127.0.90.", 1 + i % 50));
      ASSERT_GE(fd, 0) << i;
      if (i % 4 == 0) SendAll(fd, std::string(1 + rng() % 4096, static_cast<char>(rng())));
      if (i % 4 == 2) {
        SendAll(fd, std::string(10000, 'r'));
        const linger reset{.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      }
      if (i % 4 == 3) SendAll(fd, "half"), shutdown(fd, SHUT_WR);
      close(fd);
    }
    // 5,000 idle connections, all at once, then gone.
    std::vector<int> idle;
    ASSERT_NO_FATAL_FAILURE(OpenIdle(l4lb->port(), 5000, &idle));
    ASSERT_TRUE(WaitFor(absl::Seconds(20), [&] { return echo.open_connections() >= 5000; }))
        << echo.open_connections();
    for (int fd : idle) close(fd);
    // 50,000 connects from one host's source ports (rate-limited, then banned),
    // bounded in time too: a loaded machine connects slower.
    const absl::Time flood_start = absl::Now();
    for (int i = 0; i < 50'000 && absl::Now() - flood_start < absl::Seconds(20); ++i) {
      const int fd = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.93.1");
      if (fd < 0) continue;
      const linger reset{.l_onoff = 1, .l_linger = 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      close(fd);
    }
    // The open-files limit run out: accepts pause at EMFILE, then recover.
    rlimit saved{};
    std::vector<int> held;
    ASSERT_NO_FATAL_FAILURE(LowerFdLimitAndHold150(pid, l4lb->port(), &saved, &held));
    EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] { return l4lb->FdCount() >= 190; }))
        << l4lb->FdCount() << " fds: the limit was not reached";
    for (int fd : held) close(fd);
    ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &saved, nullptr), 0);
    // Over: every connection closed (half-open ones at idle_timeout), pipes trimmed.
    EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] { return echo.open_connections() == 0; }))
        << echo.open_connections() << " still open at the backend";
    EXPECT_TRUE(
        WaitFor(absl::Seconds(10), [&] { return (fds_end = l4lb->FdCount()) <= fds_start; }))
        << fds_end << " fds, " << fds_start << " at the start";
    EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return Ping(l4lb->port(), "127.0.91.1"); }));
  };
  round(1);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const int64_t baseline = AnonymousKib(pid);
  const int64_t rss_baseline = RssKib(pid);
  round(2);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const int64_t after = AnonymousKib(pid);
  const int64_t rss_after = RssKib(pid);
  std::printf(
      "anonymous memory: %lld KiB at start, %lld after round 1 (baseline), %lld after round 2"
      "; VmRSS %lld -> %lld KiB; fds %d at start, %d after\n",
      static_cast<long long>(anon_start), static_cast<long long>(baseline),
      static_cast<long long>(after), static_cast<long long>(rss_baseline),
      static_cast<long long>(rss_after), fds_start, fds_end);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // ASan's quarantine and TSan's shadow keep freed memory: no bound to check.
#else
  // Measured (Debian 12, 2 workers, 9 runs): 1,140-1,150 KiB at start, 6,876-6,892
  // after round 1, round 2 within +4..+36 KiB of that; VmRSS ~12,500 KiB, the same
  // +4..+36; fds 11-12 at start, 11 after each round. 1 MiB catches a leak of 20
  // bytes per connection of a round (55,300 of them): a malloc(24) per accepted
  // connection (32 bytes) showed +1,748 KiB.
  EXPECT_LE(after, baseline + 1024)
      << "KiB of anonymous memory after round 2, " << baseline << " after round 1";
#endif
  EXPECT_TRUE(l4lb->process().Running());
}

}  // namespace
}  // namespace l4lb::testing
