// UDP load balancing end to end: the built l4lb (--listen=udp://...) in front of
// UDP echo servers in this process driven by plain sockets: datagram sizes,
// 10,000 datagrams from 100 clients, idle expiry, the session bound under
// 100,000 clients, health checks, drain. dns_e2e_test puts it in front of dnsmasq.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"
#include "tests/harness/udp_l4lb.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string>& kHosts = kUdpBackendHosts;

// ---------------------------------------------------------------------------
// Echo: UdpEcho backends, clients on plain sockets.

TEST(UdpEchoTest, DatagramsOfEverySizeComeBackIntactFromTheListenerAddress) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb = StartUdpL4lb({Backends(echo.port(), 1), "--health_check=none"});
  ASSERT_NE(l4lb, nullptr);
  const int fd = Client();
  ASSERT_GE(fd, 0);
  SetUdpBuffers(fd, 4 << 20);
  Stream stream(7);
  for (const size_t size : {1, 1400, 9000, 65507, 1, 65507}) {
    std::string data(size, '\0');
    stream.Fill(reinterpret_cast<uint8_t*>(data.data()), size);
    const std::string reply = RoundTrip(fd, *l4lb, data);
    ASSERT_EQ(reply.size(), size);
    EXPECT_TRUE(reply == data) << size << "-byte datagram changed on the way";
  }
  // Sent back to back, read afterwards: boundaries kept, nothing merged or split.
  for (const size_t size : {1400, 1, 9000}) {
    ASSERT_TRUE(SendTo(fd, "127.0.0.1", l4lb->port(), std::string(size, 'x')));
  }
  for (const size_t size : {1400, 1, 9000}) {
    const std::optional<std::string> reply = RecvFrom(fd, absl::Seconds(2));
    ASSERT_TRUE(reply.has_value()) << size;
    EXPECT_EQ(reply->size(), size);
  }
  close(fd);
}

// A zero-length datagram is valid UDP; a receive of 0 bytes is not an EOF here.
TEST(UdpEchoTest, EmptyDatagramIsRelayed) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb = StartUdpL4lb({Backends(echo.port(), 1), "--health_check=none"});
  ASSERT_NE(l4lb, nullptr);
  const int fd = Client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendTo(fd, "127.0.0.1", l4lb->port(), ""));
  std::string from;
  const std::optional<std::string> reply = RecvFrom(fd, absl::Seconds(2), &from);
  EXPECT_EQ(echo.data(), 1) << "the backend did not get it";
  ASSERT_TRUE(reply.has_value()) << "no reply to an empty datagram";
  EXPECT_EQ(*reply, "");
  EXPECT_EQ(from, Listener(*l4lb));
  // The session still works afterwards.
  EXPECT_EQ(RoundTrip(fd, *l4lb, "after"), "after");
  close(fd);
}

// A wildcard listener answers from the address each datagram was sent to (not
// the one the kernel's route would pick for the client): clients drop replies
// from elsewhere.
TEST(UdpEchoTest, WildcardListenerRepliesFromTheAddressTheClientWroteTo) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb =
      StartUdpL4lb({"--listen=udp://0.0.0.0:0", Backends(echo.port(), 1), "--health_check=none"});
  ASSERT_NE(l4lb, nullptr);
  const int fd = Client();
  ASSERT_GE(fd, 0);
  for (const std::string to : {"127.0.0.5", "127.0.0.9", "127.0.0.5"}) {
    SCOPED_TRACE(to);
    ASSERT_TRUE(SendTo(fd, to, l4lb->port(), "to " + to));
    std::string from;
    const std::optional<std::string> reply = RecvFrom(fd, absl::Seconds(2), &from);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(*reply, "to " + to);
    EXPECT_EQ(from, absl::StrCat(to, ":", l4lb->port()));
  }
  close(fd);
}

std::string Payload(int client, int seq) {
  std::string p = absl::StrCat("client ", client, " seq ", seq, " ");
  while (p.size() < 100) p.push_back(static_cast<char>('a' + (client * 7 + seq + p.size()) % 26));
  return p;
}

TEST(UdpEchoTest, TenThousandDatagramsFromAHundredClientsNoneLostNoneMisdelivered) {
  const uint16_t port = FreeUdpPortOnAll({kHosts[0], kHosts[1]});
  ASSERT_NE(port, 0);
  UdpEcho echo2(kHosts[0], port), echo3(kHosts[1], port);
  ASSERT_TRUE(echo2.ok() && echo3.ok());
  auto l4lb = StartUdpL4lb(
      {Backends(port, 2), "--health_check=none", "--threads=2", "--hash_key=src_ip_port"});
  ASSERT_NE(l4lb, nullptr);
  constexpr int kClients = 100, kPerClient = 100, kWindow = 10, kGroup = 5;
  std::vector<int> fds;
  for (int c = 0; c < kClients; ++c) {
    fds.push_back(Client());
    ASSERT_GE(fds.back(), 0);
  }
  int lost = 0, unexpected = 0, foreign_source = 0;
  std::string first_unexpected;
  const absl::Time start = absl::Now();
  // kGroup clients at a time send a window of kWindow each, then read their
  // replies: at most 50 datagrams in flight, which loopback buffers hold.
  for (int w = 0; w < kPerClient / kWindow && lost <= 50; ++w) {
    for (int g = 0; g < kClients && lost <= 50; g += kGroup) {
      for (int c = g; c < g + kGroup; ++c) {
        for (int s = w * kWindow; s < (w + 1) * kWindow; ++s) {
          ASSERT_TRUE(SendTo(fds[c], "127.0.0.1", l4lb->port(), Payload(c, s)));
        }
      }
      const absl::Time deadline = absl::Now() + absl::Seconds(2);
      for (int c = g; c < g + kGroup; ++c) {
        std::set<std::string> pending;
        for (int s = w * kWindow; s < (w + 1) * kWindow; ++s) pending.insert(Payload(c, s));
        while (!pending.empty()) {
          std::string from;
          const std::optional<std::string> reply =
              RecvFrom(fds[c], std::max(deadline - absl::Now(), absl::ZeroDuration()), &from);
          if (!reply) break;
          foreign_source += from != Listener(*l4lb);
          if (pending.erase(*reply) == 0) {
            ++unexpected;
            if (first_unexpected.empty()) {
              first_unexpected = absl::StrCat("client ", c, " got \"", reply->substr(0, 20), "\"");
            }
          }
        }
        lost += pending.size();
      }
    }
  }
  printf("10000 datagrams in %s; 127.0.0.2 echoed %d, 127.0.0.3 %d\n",
         absl::FormatDuration(absl::Now() - start).c_str(), echo2.data(), echo3.data());
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(unexpected, 0) << first_unexpected;
  EXPECT_EQ(foreign_source, 0) << "replies not from " << Listener(*l4lb);
  EXPECT_EQ(echo2.data() + echo3.data(), kClients * kPerClient);
  EXPECT_GT(echo2.data(), 0);
  EXPECT_GT(echo3.data(), 0);

  // One session per client, each logged once at shutdown with its 100 datagrams.
  EXPECT_NE(l4lb->process().Stop(SIGTERM, absl::Seconds(10)), -1) << "l4lb did not exit";
  const std::vector<std::string> ended = SessionLines(*l4lb, {"shutdown"});
  EXPECT_EQ(ended.size(), size_t{kClients}) << l4lb->Log();
  for (int c = 0; c < kClients; ++c) {
    const std::vector<std::string> lines = SessionLines(*l4lb, {LocalAddress(fds[c])});
    ASSERT_EQ(lines.size(), 1u) << LocalAddress(fds[c]) << "\n" << l4lb->Log();
    EXPECT_TRUE(HasToken(lines[0], "100")) << "datagram counts: " << lines[0];
    close(fds[c]);
  }
}

TEST(UdpEchoTest, IdleSessionEndsAfterTheTimeoutAndTheNextDatagramStartsANewOne) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb =
      StartUdpL4lb({Backends(echo.port(), 1), "--health_check=none", "--udp_idle_timeout=300ms"});
  ASSERT_NE(l4lb, nullptr);
  const int fd = Client();
  ASSERT_GE(fd, 0);
  const std::string client = LocalAddress(fd);
  // A datagram every 100 ms for 700 ms: never 300 ms of silence, one session.
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(RoundTrip(fd, *l4lb, absl::StrCat("keep ", i)), absl::StrCat("keep ", i));
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(SessionLines(*l4lb, {client}).empty()) << "a busy session ended:\n" << l4lb->Log();
  const uint16_t first_peer = echo.last_peer_port();

  ASSERT_EQ(RoundTrip(fd, *l4lb, "last"), "last");
  const absl::Time silent_since = absl::Now();
  ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] { return !SessionLines(*l4lb, {client}).empty(); }))
      << l4lb->Log();
  const absl::Duration took = absl::Now() - silent_since;
  printf("idle session ended %s after the last datagram (--udp_idle_timeout=300ms)\n",
         absl::FormatDuration(took).c_str());
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LE(took, absl::Milliseconds(800));
  EXPECT_EQ(SessionLines(*l4lb, {client, "idle"}).size(), 1u) << l4lb->Log();

  // The same client again: a new session, so l4lb opens a new backend socket.
  EXPECT_EQ(RoundTrip(fd, *l4lb, "again"), "again");
  EXPECT_NE(echo.last_peer_port(), first_peer) << "the backend saw the old session's socket";
  EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] {
    return SessionLines(*l4lb, {client, "idle"}).size() == 2;
  })) << l4lb->Log();
  close(fd);
}

// 100,000 client addresses through one worker holding at most 1,000 sessions: the
// oldest make room, memory stays flat, and service goes on.
TEST(UdpEchoTest, SessionTableStaysBoundedUnderAHundredThousandClients) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb = StartUdpL4lb(
      {Backends(echo.port(), 1), "--health_check=none", "--threads=1", "--udp_max_sessions=1000"});
  ASSERT_NE(l4lb, nullptr);
  const pid_t pid = l4lb->process().pid();
  const int64_t rss_start = StatusKib(pid, "VmRSS");
  const int fds_start = l4lb->FdCount();
  ASSERT_GT(rss_start, 0);

  // Client i is 127.1.0.(1 + i / 1000):(20000 + i % 1000), below the ephemeral
  // range so nothing else holds those ports. A window of sockets at a time (not
  // 100,000 fds), each closed once its reply is in.
  constexpr int kClients = 100'000, kWindow = 50;
  int answered = 0, unbound = 0, max_fds = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(45);
  const absl::Time start = absl::Now();
  for (int first = 0; first < kClients && absl::Now() < deadline && first - answered <= 300;
       first += kWindow) {
    std::vector<std::pair<int, std::string>> window;
    for (int i = first; i < first + kWindow; ++i) {
      uint16_t port = 20000 + i % 1000;
      const int fd = BindUdp(absl::StrCat("127.1.0.", 1 + i / 1000), &port);
      if (fd < 0) {
        ++unbound;
        continue;
      }
      window.emplace_back(fd, absl::StrCat(i));
      SendTo(fd, "127.0.0.1", l4lb->port(), window.back().second);
    }
    const absl::Time window_deadline = absl::Now() + absl::Seconds(1);
    for (const auto& [fd, data] : window) {
      answered +=
          RecvFrom(fd, std::max(window_deadline - absl::Now(), absl::ZeroDuration())) == data;
      close(fd);
    }
    if (first % 10'000 == 0) max_fds = std::max(max_fds, l4lb->FdCount());
  }
  const int64_t rss_peak = StatusKib(pid, "VmHWM");
  printf(
      "%d of %d clients answered (%d addresses not bindable) in %s; l4lb RSS %lld KiB at "
      "start, peak %lld KiB; fds %d at start, up to %d\n",
      answered, kClients, unbound, absl::FormatDuration(absl::Now() - start).c_str(),
      static_cast<long long>(rss_start), static_cast<long long>(rss_peak), fds_start, max_fds);
  EXPECT_GE(answered, kClients * 99 / 100);
  EXPECT_LT(rss_peak - rss_start, 64 * 1024) << "KiB grown";
  EXPECT_LE(max_fds, fds_start + 1000 + 50) << "a socket per session, at most 1000 sessions";

  // Every session beyond the 1,000 that fit was evicted, and logged as such.
  size_t evicted = 0;
  for (int i = 0; i < 50 && evicted + 1000 < static_cast<size_t>(answered); ++i) {
    if (i > 0) absl::SleepFor(absl::Milliseconds(100));
    evicted = SessionLines(*l4lb, {"evicted"}).size();
  }
  printf("%zu sessions logged as evicted\n", evicted);
  EXPECT_GE(evicted + 1000, static_cast<size_t>(answered));

  const int fresh = Client();
  ASSERT_GE(fresh, 0);
  EXPECT_EQ(RoundTrip(fresh, *l4lb, "fresh"), "fresh");
  close(fresh);
}

// ---------------------------------------------------------------------------
// Health: a UDP send/expect check against the echo backends.

TEST(UdpHealthTest, KilledEchoBackendGoesDownAndItsClientMovesToTheOther) {
  const uint16_t port = FreeUdpPortOnAll({kHosts[0], kHosts[1]});
  ASSERT_NE(port, 0);
  UdpEcho echo2(kHosts[0], port), echo3(kHosts[1], port);
  ASSERT_TRUE(echo2.ok() && echo3.ok());
  std::vector<std::string> flags = kFastChecks;
  flags.insert(flags.end(), {Backends(port, 2), "--health_check=udp", "--health_send=ping",
                             "--health_expect=ping"});
  auto l4lb = StartUdpL4lb(flags);
  ASSERT_NE(l4lb, nullptr);

  // A client (its own source IP: src_ip hashing) that lands on 127.0.0.2.
  int fd = -1;
  std::string client;
  for (int i = 1; i <= 30 && fd < 0; ++i) {
    const int candidate = Client(absl::StrCat("127.0.2.", i));
    ASSERT_GE(candidate, 0);
    const int before = echo2.data();
    ASSERT_EQ(RoundTrip(candidate, *l4lb, "where"), "where");
    if (echo2.data() > before) {
      fd = candidate;
      client = LocalAddress(fd);
    } else {
      close(candidate);
    }
  }
  ASSERT_GE(fd, 0) << "no client reached 127.0.0.2";
  absl::SleepFor(absl::Milliseconds(600));  // several rounds of probes, all echoed
  ASSERT_FALSE(absl::StrContains(l4lb->Log(), "is DOWN")) << l4lb->Log();

  echo2.Stop();  // from now on the kernel answers port unreachable
  const std::optional<absl::Duration> took =
      WaitForDown(*l4lb, absl::StrCat("backend 127.0.0.2:", port));
  ASSERT_TRUE(took.has_value()) << l4lb->Log();
  printf("udp check: DOWN %s after the kill\n", absl::FormatDuration(*took).c_str());
  EXPECT_LE(*took, kDownWithin);

  const int before = echo3.data();
  EXPECT_EQ(RoundTrip(fd, *l4lb, "next"), "next") << client << " got no answer after the move";
  EXPECT_EQ(echo3.data(), before + 1);
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] {
                        return !SessionLines(*l4lb, {client, "backend_down"}).empty();
                      }))
      << "the session on the dead backend did not end as backend_down\n"
      << l4lb->Log();
  close(fd);
}

// SIGTERM: live sessions go on until they idle out, new clients get nothing, and
// l4lb exits 0 once the last session ended (well before --drain_timeout). No
// --health_check: a UDP-only backend must not be failed by a TCP probe.
TEST(UdpDrainTest, SigtermKeepsLiveSessionsDropsNewClientsAndExitsWhenTheyIdleOut) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb =
      StartUdpL4lb({Backends(echo.port(), 1), "--drain_timeout=10s", "--udp_idle_timeout=800ms"});
  ASSERT_NE(l4lb, nullptr);
  const int live = Client();
  const int late = Client();
  ASSERT_GE(live, 0);
  ASSERT_GE(late, 0);
  ASSERT_EQ(RoundTrip(live, *l4lb, "before"), "before") << l4lb->Log();

  kill(l4lb->process().pid(), SIGTERM);
  ASSERT_TRUE(
      WaitFor(absl::Seconds(2), [&] { return absl::StrContains(l4lb->Log(), "draining"); }));
  const absl::Time drain_start = absl::Now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(RoundTrip(live, *l4lb, absl::StrCat("during ", i)), absl::StrCat("during ", i));
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(SendTo(late, "127.0.0.1", l4lb->port(), "new client"));
  EXPECT_FALSE(RecvFrom(late, absl::Milliseconds(500)).has_value())
      << "a drain takes no new client";
  // The live session idles out 800 ms after its last datagram; then l4lb is done.
  EXPECT_EQ(l4lb->process().Wait(absl::Seconds(5)), 0) << l4lb->Log();
  EXPECT_LT(absl::Now() - drain_start, absl::Seconds(4)) << "waited for --drain_timeout";
  EXPECT_EQ(SessionLines(*l4lb, {"idle"}).size(), 1u) << l4lb->Log();
  EXPECT_FALSE(absl::StrContains(l4lb->Log(), "is DOWN")) << l4lb->Log();
  close(live);
  close(late);
}

}  // namespace
}  // namespace l4lb::testing
