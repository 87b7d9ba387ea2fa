// A flood of new UDP client addresses against the built l4lb, in a network
// namespace of the test's own whose local port range is narrowed to 1,000 ports
// (issue 12, item 3): every session holds a socket with a local port, so the
// range, not --udp_max_sessions (default 100,000), is what a flood of spoofed
// sources exhausts first. New clients must still be answered, during and after
// the flood, with fds and memory bounded.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/netns.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"
#include "tests/harness/udp_l4lb.h"

namespace l4lb::testing {
namespace {

constexpr int kRangeFirst = 40000, kRangeSize = 1000;
// Ports of the range that other processes hold (bound by the test): l4lb's bound,
// derived from the range, is then more than it can have, and creating a socket
// fails before the bound is reached.
constexpr int kHeldPorts = 200;
constexpr uint16_t kEchoPort = 5300;  // below the range: takes none of its ports

// "udp sessions of ...: at most N per worker": the bound l4lb derived; -1 if absent.
int64_t LoggedBound(const L4lb& l4lb) {
  std::smatch m;
  const std::string log = l4lb.Log();
  if (!std::regex_search(log, m, std::regex("udp sessions of .+: at most ([0-9]+) per worker"))) {
    return -1;
  }
  int64_t bound = -1;
  return absl::SimpleAtoi(m[1].str(), &bound) ? bound : -1;
}

// A new client on `host`: answered within two tries (UDP clients retry; the
// datagram may wait behind a burst in l4lb's socket buffer).
bool Answered(const std::string& host, const L4lb& l4lb, const std::string& data) {
  const int fd = Client(host);
  if (fd < 0) return false;
  bool answered = false;
  for (int attempt = 0; attempt < 2 && !answered; ++attempt) {
    answered = RoundTrip(fd, l4lb, data) == data;
  }
  close(fd);
  return answered;
}

TEST(UdpFloodTest, NewClientsAreAnsweredDuringAndAfterAFloodOfFiveTimesThePortRange) {
  absl::StatusOr<std::unique_ptr<NetNamespace>> ns = NetNamespace::Enter("l4lb-udpflood");
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE((*ns)
                  ->Sysctl("net.ipv4.ip_local_port_range",
                           absl::StrCat(kRangeFirst, " ", kRangeFirst + kRangeSize - 1))
                  .ok());
  UdpEcho echo("127.0.0.2", kEchoPort);
  ASSERT_TRUE(echo.ok());
  struct Held {  // closed on every way out, failures too
    std::vector<int> fds;
    ~Held() {
      for (const int fd : fds) close(fd);
    }
  } held;
  for (int i = 0; i < kHeldPorts; ++i) {
    uint16_t port = kRangeFirst + i;
    const int fd = BindUdp("0.0.0.0", &port);
    ASSERT_GE(fd, 0) << "port " << port;
    held.fds.push_back(fd);
  }
  // The default --udp_max_sessions: the bound must come from the range. No
  // session idles out within the test: room can only come from evictions.
  auto l4lb = StartUdpL4lb(
      {Backends(kEchoPort, 1), "--health_check=none", "--threads=1", "--udp_idle_timeout=300s"});
  ASSERT_NE(l4lb, nullptr);
  const int64_t bound = LoggedBound(*l4lb);
  printf("derived bound: %lld sessions per worker\n", static_cast<long long>(bound));
  EXPECT_EQ(bound, kRangeSize) << "1 worker, 1 udp service, 1000 ports";
  const pid_t pid = l4lb->process().pid();
  const int64_t rss_start = StatusKib(pid, "VmRSS");
  const int fds_start = l4lb->FdCount();
  ASSERT_GT(rss_start, 0);
  ASSERT_TRUE(Answered("127.0.0.1", *l4lb, "before")) << l4lb->Log();

  // Flood client i is 127.1.(i / 250).(1 + i % 250):20000 (below the range), one
  // datagram each, its socket closed at once; every 500 a new client is tried.
  constexpr int kFlood = 5 * kRangeSize, kEvery = 500;
  int during = 0, during_tried = 0, max_fds = 0, unsent = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  const absl::Time start = absl::Now();
  for (int i = 0; i < kFlood && absl::Now() < deadline; ++i) {
    uint16_t port = 20000;
    const int fd = BindUdp(absl::StrCat("127.1.", i / 250, ".", 1 + i % 250), &port);
    unsent += fd < 0 || !SendTo(fd, "127.0.0.1", l4lb->port(), absl::StrCat("flood ", i));
    if (fd >= 0) close(fd);
    if ((i + 1) % kEvery == 0) {
      ++during_tried;
      during += Answered(absl::StrCat("127.2.0.", during_tried), *l4lb, absl::StrCat("during ", i));
      max_fds = std::max(max_fds, l4lb->FdCount());
    }
  }
  int after = 0, after_tried = 0;
  constexpr int kAfter = 20;
  for (int i = 1; i <= kAfter && absl::Now() < deadline; ++i, ++after_tried) {
    after += Answered(absl::StrCat("127.3.0.", i), *l4lb, absl::StrCat("after ", i));
    max_fds = std::max(max_fds, l4lb->FdCount());
  }
  const int64_t rss_peak = StatusKib(pid, "VmHWM");
  printf(
      "flood of %d clients (%d not sent) in %s: %d of %d new clients answered during it, %d of "
      "%d after (of %d); %d datagrams echoed; l4lb fds %d at start, up to %d; RSS %lld KiB at "
      "start, "
      "peak %lld KiB\n",
      kFlood, unsent, absl::FormatDuration(absl::Now() - start).c_str(), during, during_tried,
      after, after_tried, kAfter, echo.data(), fds_start, max_fds,
      static_cast<long long>(rss_start), static_cast<long long>(rss_peak));
  EXPECT_EQ(unsent, 0);
  EXPECT_EQ(during_tried, kFlood / kEvery) << "the flood ran out of time";
  EXPECT_EQ(during, during_tried);
  EXPECT_EQ(after, kAfter);
  // A socket per session, at most the bound (fewer: 200 ports are held), and an
  // evicted session's fd is closed at once.
  EXPECT_LE(max_fds, fds_start + kRangeSize);
  EXPECT_LT(rss_peak - rss_start, 64 * 1024) << "KiB grown";

  ASSERT_EQ(l4lb->process().Stop(SIGTERM, absl::Seconds(5)), 0);
  const int64_t sessions = ExitTotal(*l4lb, "udp_sessions");
  const int64_t evicted = ExitTotal(*l4lb, "udp_evicted");
  const int64_t no_socket = ExitTotal(*l4lb, "udp_no_socket");
  const int64_t dropped = ExitTotal(*l4lb, "udp_dropped");
  printf("udp_sessions=%lld udp_evicted=%lld udp_no_socket=%lld udp_dropped=%lld\n",
         static_cast<long long>(sessions), static_cast<long long>(evicted),
         static_cast<long long>(no_socket), static_cast<long long>(dropped));
  // Each eviction gave its socket back at once, so the retry had a port and the
  // datagram that wanted a session got one: hardly any dropped, not one in three.
  EXPECT_LE(dropped, kFlood / 100);
  EXPECT_GE(echo.data(), kFlood * 99 / 100) << "the flood reached the backend";
  // Every session beyond the ports l4lb could have (1000 less the 200 held and
  // its listener's) was made room for by an eviction.
  EXPECT_GE(sessions, kFlood / 2);
  EXPECT_GE(evicted, sessions - (kRangeSize - kHeldPorts));
  EXPECT_GT(no_socket, 0) << "with 200 ports held, sockets ran out before the bound";
  EXPECT_GT(l4lb->CountLines("found no socket so far", "makes room"), 0);
}

}  // namespace
}  // namespace l4lb::testing
