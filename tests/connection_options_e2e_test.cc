// Per-connection options end to end, the built l4lb between the test's own TCP
// peers: TCP keepalive on each side as the kernel reports it (ss -o), and
// client_fin_timeout cutting a half-closed connection that went silent while
// leaving one that still moves bytes alone, client_timeout and backend_timeout
// blaming the side that holds a connection up (nginx for a real download), and
// the source addresses backends see.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

std::unique_ptr<L4lb> Start(const std::vector<std::string>& flags) {
  std::vector<std::string> all = {"--listen=127.0.0.1:0", "--threads=1", "--health_check=none"};
  all.insert(all.end(), flags.begin(), flags.end());
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(all);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

// The keepalive timer ss shows on the established socket matching `filter`,
// in seconds left ("timer:(keepalive,29sec,0)", "timer:(keepalive,1min29sec,0)"),
// -1 if it has none, -2 if no socket matched.
int KeepaliveSeconds(const std::string& filter) {
  const CommandResult r =
      RunCommand({"ss", "-tnoH", "state", "established", filter}, absl::Seconds(5));
  if (r.exit_code != 0 || r.out.empty()) return -2;
  const size_t at = r.out.find("timer:(keepalive,");
  if (at == std::string::npos) return -1;
  absl::string_view left(r.out);
  left.remove_prefix(at + strlen("timer:(keepalive,"));
  left = left.substr(0, left.find(','));
  int seconds = 0;
  if (const size_t min = left.find("min"); min != absl::string_view::npos) {
    int minutes = 0;
    if (!absl::SimpleAtoi(left.substr(0, min), &minutes)) return -3;
    seconds += minutes * 60;
    left.remove_prefix(min + 3);
  }
  int rest = 0;
  if (absl::ConsumeSuffix(&left, "sec") && absl::SimpleAtoi(left, &rest)) seconds += rest;
  if (absl::ConsumeSuffix(&left, "ms")) seconds += 0;
  return seconds;
}

TEST(KeepaliveTest, EachSideGetsItsOwnTimersAndOffMeansNone) {
  EchoServer echo("127.0.0.2");
  auto l4lb = Start({absl::StrCat("--backends=127.0.0.2:", echo.port()),
                     "--client_keepalive=30s,5s,3", "--backend_keepalive=100s,7s,4"});
  ASSERT_NE(l4lb, nullptr);
  const int fd = ConnectTcp("127.0.0.1", l4lb->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(3));
  ASSERT_TRUE(SendAll(fd, "x"));
  ASSERT_EQ(ReadN(fd, 1), "x");
  // l4lb's client side: the accepted socket, source port the listener's.
  const int client_side = KeepaliveSeconds(absl::StrCat("( sport = :", l4lb->port(), " )"));
  EXPECT_GT(client_side, 20);
  EXPECT_LE(client_side, 30) << "client_keepalive's idle is 30 s";
  // l4lb's backend side: the socket whose peer is the echo server.
  const int backend_side =
      KeepaliveSeconds(absl::StrCat("( dst 127.0.0.2 and dport = :", echo.port(), " )"));
  EXPECT_GT(backend_side, 90);
  EXPECT_LE(backend_side, 100) << "backend_keepalive's idle is 100 s";
  // The test's own sockets are not l4lb's business.
  EXPECT_EQ(KeepaliveSeconds(absl::StrCat("( dport = :", l4lb->port(), " )")), -1);
  close(fd);

  EchoServer plain("127.0.0.3");
  auto off = Start({absl::StrCat("--backends=127.0.0.3:", plain.port())});
  ASSERT_NE(off, nullptr);
  const int fd2 = ConnectTcp("127.0.0.1", off->port());
  SetRecvTimeout(fd2, absl::Seconds(3));
  ASSERT_TRUE(SendAll(fd2, "y"));
  ASSERT_EQ(ReadN(fd2, 1), "y");
  EXPECT_EQ(KeepaliveSeconds(absl::StrCat("( sport = :", off->port(), " )")), -1);
  EXPECT_EQ(KeepaliveSeconds(absl::StrCat("( dst 127.0.0.3 and dport = :", plain.port(), " )")),
            -1);
  close(fd2);
}

TEST(ConnectionFlagsTest, BadValuesExit2NamingTheFlag) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"client_keepalive", "10m,1m"},
           {"backend_keepalive", "500ms,1s,3"},
           {"client_fin_timeout", "soon"},
           {"client_timeout", "-1s"},
           {"backend_timeout", "1 minute"}}) {
    const CommandResult r =
        RunCommand({L4lbBinary(), "--listen=127.0.0.1:0", "--backends=127.0.0.2:1",
                    absl::StrCat("--", flag, "=", value)},
                   absl::Seconds(10));
    EXPECT_EQ(r.exit_code, 2) << flag << "\n" << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("--", flag, ": "))) << r.err;
  }
  const CommandResult udp =
      RunCommand({L4lbBinary(), "--listen=udp://127.0.0.1:0", "--backends=127.0.0.2:1",
                  "--client_keepalive=10m,1m,5"},
                 absl::Seconds(10));
  EXPECT_EQ(udp.exit_code, 2) << udp.err;
  EXPECT_TRUE(absl::StrContains(udp.err, "--client_keepalive: only for tcp listeners")) << udp.err;
}

// A backend that accepts, reads, and never closes nor answers: after the
// client's FIN the connection is half-closed for good.
class SilentBackend {
 public:
  SilentBackend() : listener_(ListenTcp("127.0.0.2", &port_)) {}
  ~SilentBackend() {
    for (int fd : accepted_) close(fd);
    close(listener_);
  }
  uint16_t port() const { return port_; }
  int Accept() {
    const int fd = accept(listener_, nullptr, nullptr);
    if (fd >= 0) accepted_.push_back(fd);
    return fd;
  }

 private:
  uint16_t port_ = 0;
  int listener_;
  std::vector<int> accepted_;
};

TEST(FinTimeoutTest, ASilentHalfClosedConnectionIsCutAndAnActiveOneIsNot) {
  SilentBackend backend;
  auto l4lb = Start({absl::StrCat("--backends=127.0.0.2:", backend.port()),
                     "--client_fin_timeout=1s"});
  ASSERT_NE(l4lb, nullptr);

  // Silent: the client finishes sending, the backend never does.
  const int silent = ConnectTcp("127.0.0.1", l4lb->port());
  ASSERT_GE(silent, 0);
  ASSERT_TRUE(SendAll(silent, "request"));
  const int silent_backend = backend.Accept();
  ASSERT_GE(silent_backend, 0);
  SetRecvTimeout(silent_backend, absl::Seconds(3));
  ASSERT_EQ(ReadN(silent_backend, 7), "request");
  shutdown(silent, SHUT_WR);
  EXPECT_EQ(ReadToEof(silent_backend), "") << "the FIN was forwarded";
  const absl::Time fin = absl::Now();
  SetRecvTimeout(silent, absl::Seconds(5));
  int error = 0;
  EXPECT_EQ(ReadToEof(silent, &error), "");
  const absl::Duration cut = absl::Now() - fin;
  EXPECT_EQ(error, ECONNRESET) << "a cut must look cut: " << strerror(error);
  EXPECT_GE(cut, absl::Milliseconds(900));
  EXPECT_LE(cut, absl::Milliseconds(2500));
  close(silent);

  // Active: after the client's FIN the backend goes on sending for 2.5 s, a
  // byte every 250 ms, then closes: nothing is cut, every byte arrives.
  const int active = ConnectTcp("127.0.0.1", l4lb->port());
  ASSERT_GE(active, 0);
  ASSERT_TRUE(SendAll(active, "get"));
  const int active_backend = backend.Accept();
  ASSERT_GE(active_backend, 0);
  SetRecvTimeout(active_backend, absl::Seconds(3));
  ASSERT_EQ(ReadN(active_backend, 3), "get");
  shutdown(active, SHUT_WR);
  std::thread sender([active_backend] {
    for (int i = 0; i < 10; ++i) {
      absl::SleepFor(absl::Milliseconds(250));
      if (!SendAll(active_backend, "z")) return;
    }
    shutdown(active_backend, SHUT_WR);
  });
  SetRecvTimeout(active, absl::Seconds(6));
  error = 0;
  EXPECT_EQ(ReadToEof(active, &error), std::string(10, 'z'));
  EXPECT_EQ(error, 0) << strerror(error);
  sender.join();
  close(active);

  EXPECT_EQ(l4lb->process().Stop(SIGTERM, absl::Seconds(5)), 0);
  EXPECT_TRUE(absl::StrContains(l4lb->Log(), "fin_timeouts=1 ")) << l4lb->Log();
  EXPECT_TRUE(absl::StrContains(l4lb->Log(), "close=fin_timeout")) << l4lb->Log();
}

// How long until l4lb logs closing a connection with `close`, from now (3.5 s at
// most: absl::InfiniteDuration() if it did not).
absl::Duration UntilClosed(const L4lb& l4lb, const std::string& close) {
  const absl::Time start = absl::Now();
  if (!WaitFor(absl::Milliseconds(3500), [&] { return l4lb.HasLine("close=" + close, "conn "); })) {
    return absl::InfiniteDuration();
  }
  return absl::Now() - start;
}

// A download whose client stops reading: the client holds it up, not nginx.
// client_timeout cuts it; backend_timeout alone does not (nginx's bytes wait
// for the client), and the download then completes byte-exact.
TEST(SideTimeoutTest, AClientThatStopsReadingIsTheClientsTimeout) {
  absl::StatusOr<Server> nginx = StartNginx("127.0.0.2", FreePortOnAll({"127.0.0.2"}), "x");
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  constexpr uint64_t kSize = 48 << 20;  // more than every buffer on the way holds
  WriteRandomFile(nginx->files + "/big.bin", kSize, 3);
  const auto stalled_download = [&](L4lb& l4lb) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(l4lb.port()), .sin_addr = {}, .sin_zero = {}};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    EXPECT_TRUE(SendAll(fd, "GET /big.bin HTTP/1.0\r\n\r\n"));
    return fd;  // and read nothing
  };
  const std::string backends = absl::StrCat("--backends=127.0.0.2:", nginx->port);
  {
    auto l4lb = Start({backends, "--client_timeout=1s", "--backend_timeout=30s"});
    ASSERT_NE(l4lb, nullptr);
    const int fd = stalled_download(*l4lb);
    const absl::Duration cut = UntilClosed(*l4lb, "client_timeout");
    EXPECT_GE(cut, absl::Milliseconds(700));  // the buffers fill within ~0.2 s
    EXPECT_LE(cut, absl::Milliseconds(3000));
    int error = 0;
    SetRecvTimeout(fd, absl::Seconds(5));
    EXPECT_LT(ReadToEof(fd, &error).size(), kSize);
    EXPECT_EQ(error, ECONNRESET) << "a cut must look cut: " << strerror(error);
    close(fd);
    EXPECT_EQ(l4lb->process().Stop(SIGTERM, absl::Seconds(5)), 0);
    EXPECT_TRUE(absl::StrContains(l4lb->Log(), " client_timeouts=1 ")) << l4lb->Log();
  }
  {
    auto l4lb = Start({backends, "--backend_timeout=1s"});
    ASSERT_NE(l4lb, nullptr);
    const int fd = stalled_download(*l4lb);
    EXPECT_EQ(UntilClosed(*l4lb, "backend_timeout"), absl::InfiniteDuration())
        << "a backend blocked behind a stalled client is not the one to blame";
    SetRecvTimeout(fd, absl::Seconds(10));
    int error = 0;
    const std::string got = ReadToEof(fd, &error);
    EXPECT_EQ(error, 0) << strerror(error);
    EXPECT_TRUE(absl::EndsWith(got, std::string(ReadFile(nginx->files + "/big.bin"))))
        << got.size() << " bytes";
    close(fd);
  }
}

// An upload to a backend that stops reading: the backend holds it up.
TEST(SideTimeoutTest, ABackendThatStopsReadingIsTheBackendsTimeout) {
  const auto stalled_upload = [](L4lb& l4lb, SilentBackend& backend) {
    const int fd = ConnectTcp("127.0.0.1", l4lb.port());
    EXPECT_GE(fd, 0);
    EXPECT_GE(backend.Accept(), 0);  // and never reads
    // Send until every buffer on the way is full (bounded: 64 MiB).
    const std::string chunk(1 << 16, 'u');
    for (int i = 0; i < 1024; ++i) {
      if (send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) <= 0) break;
    }
    return fd;
  };
  {
    SilentBackend backend;
    auto l4lb = Start({absl::StrCat("--backends=127.0.0.2:", backend.port()),
                       "--backend_timeout=1s", "--client_timeout=30s"});
    ASSERT_NE(l4lb, nullptr);
    const int fd = stalled_upload(*l4lb, backend);
    const absl::Duration cut = UntilClosed(*l4lb, "backend_timeout");
    EXPECT_GE(cut, absl::Milliseconds(700));
    EXPECT_LE(cut, absl::Milliseconds(3000));
    close(fd);
  }
  {
    SilentBackend backend;
    // The upload can never finish: the drain timeout ends it at the stop.
    auto l4lb = Start({absl::StrCat("--backends=127.0.0.2:", backend.port()), "--client_timeout=1s",
                       "--drain_timeout=1s"});
    ASSERT_NE(l4lb, nullptr);
    const int fd = stalled_upload(*l4lb, backend);
    EXPECT_EQ(UntilClosed(*l4lb, "client_timeout"), absl::InfiniteDuration())
        << "a client whose bytes wait for the backend is not the one to blame";
    close(fd);
  }
}

// Nothing moving either way: both sides are waited on, the shorter timeout
// ends it and names its side; a byte every 300 ms keeps both alive.
TEST(SideTimeoutTest, AnIdleConnectionEndsAtTheShorterOneAndTrafficKeepsItAlive) {
  EchoServer echo("127.0.0.2");
  const std::string backends = absl::StrCat("--backends=127.0.0.2:", echo.port());
  for (const auto& [flags, side] :
       {std::pair{std::vector<std::string>{"--client_timeout=1s", "--backend_timeout=20s"},
                  "client_timeout"},
        std::pair{std::vector<std::string>{"--backend_timeout=1s"}, "backend_timeout"}}) {
    std::vector<std::string> all = flags;
    all.push_back(backends);
    auto l4lb = Start(all);
    ASSERT_NE(l4lb, nullptr);
    const int idle = ConnectTcp("127.0.0.1", l4lb->port());
    ASSERT_TRUE(SendAll(idle, "x"));
    SetRecvTimeout(idle, absl::Seconds(5));
    ASSERT_EQ(ReadN(idle, 1), "x");
    const int busy = ConnectTcp("127.0.0.1", l4lb->port());
    SetRecvTimeout(busy, absl::Seconds(5));
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(SendAll(busy, "b"));
      ASSERT_EQ(ReadN(busy, 1), "b") << "byte " << i;
      absl::SleepFor(absl::Milliseconds(300));
    }
    EXPECT_EQ(l4lb->CountLines("close=" + std::string(side), "conn "), 1) << side << "\n" << l4lb->Log();
    int error = 0;
    EXPECT_EQ(ReadToEof(idle, &error), "");
    EXPECT_EQ(error, ECONNRESET) << side;
    close(idle);
    close(busy);
  }
}

// --source: backends see the configured local addresses, in turn; an address
// the host does not have is refused at start-up, naming it.
TEST(SourceTest, BackendsSeeTheSourcesInTurn) {
  SilentBackend backend;
  auto l4lb = Start({absl::StrCat("--backends=127.0.0.2:", backend.port()),
                     "--source=127.0.0.5,127.0.0.6", "--drain_timeout=1s"});
  ASSERT_NE(l4lb, nullptr);
  std::vector<std::string> peers;
  std::vector<int> clients;
  for (int i = 0; i < 4; ++i) {
    const int fd = ConnectTcp("127.0.0.1", l4lb->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "x"));
    clients.push_back(fd);
    const int accepted = backend.Accept();
    ASSERT_GE(accepted, 0);
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    ASSERT_EQ(getpeername(accepted, reinterpret_cast<sockaddr*>(&peer), &len), 0);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
    peers.push_back(text);
  }
  for (int fd : clients) close(fd);
  EXPECT_EQ(peers, (std::vector<std::string>{"127.0.0.5", "127.0.0.6", "127.0.0.5", "127.0.0.6"}));

  const CommandResult bad =
      RunCommand({L4lbBinary(), "--listen=127.0.0.1:0", "--backends=127.0.0.2:1",
                  "--source=192.0.2.77"},
                 absl::Seconds(10));
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(absl::StrContains(bad.err, "--source: source 192.0.2.77: bind")) << bad.err;
  const CommandResult family =
      RunCommand({L4lbBinary(), "--listen=127.0.0.1:0", "--backends=[::1]:1", "--source=127.0.0.5"},
                 absl::Seconds(10));
  EXPECT_EQ(family.exit_code, 2) << family.err;
  EXPECT_TRUE(absl::StrContains(family.err, "--source: source: no IPv6 address for backend [::1]:1"))
      << family.err;
}

}  // namespace
}  // namespace l4lb::testing
