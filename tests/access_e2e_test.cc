// Access control at the entry point, end to end: the built l4lb with --allow,
// --deny (lists and files), per-client connection and rate limits, bans and
// --max_connections, in front of an echo backend, clients from distinct
// loopback addresses (127.x.y.z: every one is a distinct client).

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/echo_l4lb.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"
#include "tests/harness/udp_l4lb.h"

namespace l4lb::testing {
namespace {

TEST(AccessTest, DenyAndAllowListsRefuseAtAcceptBeforeAnyBackend) {
  EchoServer echo("127.0.0.2");
  const std::string deny_file = TempDir() + "/deny.txt";
  std::ofstream(deny_file) << "# abusers\n127.0.20.0/24   # a whole network\n\n127.0.21.7\n";
  auto l4lb = StartL4lbBefore(
      echo, {"--allow=127.0.0.0/9", "--deny=127.0.9.0/24", "--deny_file=" + deny_file});
  ASSERT_NE(l4lb, nullptr);
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.8.1"));
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.21.8"));
  const int accepted = echo.accepted();
  for (const char* refused : {"127.0.9.1", "127.0.9.254", "127.0.20.3", "127.0.21.7",
                              "127.200.0.1" /* not in --allow */}) {
    EXPECT_FALSE(Ping(l4lb->port(), refused)) << refused;
    // Access-log lines reach the log from the logging thread, a few ms later.
    EXPECT_TRUE(WaitFor(
        absl::Seconds(2),
        [&] { return l4lb->HasLine(absl::StrCat("client=", refused, ":"), "close=denied"); }))
        << refused << "\n"
        << l4lb->Log();
  }
  EXPECT_EQ(echo.accepted(), accepted) << "a refused client reached the backend";
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.8.2")) << "others are still served";
  l4lb->process().Stop(SIGTERM, absl::Seconds(5));
  EXPECT_EQ(ExitTotal(*l4lb, "refused_denied"), 5);
}

TEST(AccessTest, PerClientConnectionLimit) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {"--client_max_connections=2"});
  ASSERT_NE(l4lb, nullptr);
  const int a = Hold(l4lb->port(), "127.0.30.1");
  const int b = Hold(l4lb->port(), "127.0.30.1");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(Hold(l4lb->port(), "127.0.30.1"), -1) << "a third connection of the same client";
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb->HasLine("client=127.0.30.1:", "close=limited"); }));
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.30.2")) << "another client is not limited";
  close(a);
  // Once l4lb has seen the close, the client has a place again.
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return Ping(l4lb->port(), "127.0.30.1"); }));
  close(b);
}

TEST(AccessTest, PrefixAggregationCountsANetworkAsOneClient) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {"--client_max_connections=1", "--client_prefix_v4=24"});
  ASSERT_NE(l4lb, nullptr);
  const int a = Hold(l4lb->port(), "127.0.31.1");
  ASSERT_GE(a, 0);
  EXPECT_EQ(Hold(l4lb->port(), "127.0.31.2"), -1) << "same /24";
  EXPECT_TRUE(Ping(l4lb->port(), "127.0.32.1")) << "another /24";
  close(a);
}

TEST(AccessTest, RateFloodGetsBannedOthersServedAndTheBanExpires) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(
      echo, {"--client_rate=10/s", "--client_burst=5", "--ban_after=5", "--ban_time=2s"});
  ASSERT_NE(l4lb, nullptr);
  // 200 connections as fast as they go from one address: the burst passes, then
  // refusals, then the ban.
  int served = 0;
  for (int i = 0; i < 200; ++i) served += Ping(l4lb->port(), "127.0.40.1");
  EXPECT_GE(served, 5);
  EXPECT_LE(served, 20) << "the rate did not hold";
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb->HasLine("client=127.0.40.1:", "close=limited"); }));
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb->HasLine("client=127.0.40.1:", "close=banned"); }));
  const absl::Time banned = absl::Now();
  // Others keep being served while it is banned.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Ping(l4lb->port(), absl::StrCat("127.0.41.", 1 + i)));
  EXPECT_FALSE(Ping(l4lb->port(), "127.0.40.1")) << "still banned";
  // The ban ends on its own after ban_time.
  ASSERT_TRUE(WaitFor(absl::Seconds(6), [&] { return Ping(l4lb->port(), "127.0.40.1"); }));
  EXPECT_GE(absl::Now() - banned, absl::Milliseconds(1500));
  // The log stayed bounded: at most a line a second per worker for refusals.
  EXPECT_LE(l4lb->CountLines("refused client", ""), 2 * 10) << l4lb->Log();
}

TEST(AccessTest, MaxConnectionsRefusesNewClientsAndKeepsTheEstablished) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {"--max_connections=5"});
  ASSERT_NE(l4lb, nullptr);
  EXPECT_TRUE(l4lb->HasLine("at most 5 live TCP connections", "--max_connections"));
  std::vector<int> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(Hold(l4lb->port(), absl::StrCat("127.0.50.", 1 + i)));
    ASSERT_GE(held.back(), 0) << i;
  }
  EXPECT_FALSE(Ping(l4lb->port(), "127.0.50.100"));
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb->HasLine("client=127.0.50.100:", "close=limited"); }));
  for (int fd : held) {  // the established ones still relay
    ASSERT_TRUE(SendAll(fd, "y"));
    EXPECT_EQ(ReadN(fd, 1), "y");
  }
  close(held.back());
  held.pop_back();
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return Ping(l4lb->port(), "127.0.50.100"); }));
  for (int fd : held) close(fd);
}

TEST(AccessTest, DefaultMaxConnectionsComesFromTheOpenFilesLimit) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lbBefore(echo, {});
  ASSERT_NE(l4lb, nullptr);
  EXPECT_TRUE(l4lb->HasLine("live TCP connections (from the open-files limit)", "at most"))
      << l4lb->Log();
}

TEST(AccessTest, UdpDeniedClientsGetNoSession) {
  UdpEcho echo("127.0.0.2", 0);
  ASSERT_TRUE(echo.ok());
  auto l4lb = StartUdpL4lb({Backends(echo.port(), 1), "--deny=127.0.60.0/24"});
  ASSERT_NE(l4lb, nullptr);
  uint16_t port = 0;
  const int allowed = BindUdp("127.0.61.1", &port);
  const int denied = BindUdp("127.0.60.1", &port);
  ASSERT_TRUE(SendTo(allowed, "127.0.0.1", l4lb->port(), "hello"));
  EXPECT_EQ(RecvFrom(allowed, absl::Seconds(5)).value_or(""), "hello");
  ASSERT_TRUE(SendTo(denied, "127.0.0.1", l4lb->port(), "hello"));
  EXPECT_FALSE(RecvFrom(denied, absl::Milliseconds(500)).has_value());
  EXPECT_EQ(echo.data(), 1) << "a denied datagram reached the backend";
  close(allowed);
  close(denied);
  l4lb->process().Stop(SIGTERM, absl::Seconds(5));
  EXPECT_EQ(ExitTotal(*l4lb, "refused_denied"), 1);
  EXPECT_EQ(ExitTotal(*l4lb, "udp_sessions"), 1);
}

}  // namespace
}  // namespace l4lb::testing
