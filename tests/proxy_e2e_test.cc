// PROXY protocol both ways with real peers from Debian: l4lb sends v1/v2 headers
// to nginx (`listen ... proxy_protocol`, logging $proxy_protocol_addr) and to
// HAProxy (`accept-proxy`, whose parser is strict); HAProxy's `send-proxy` and
// `send-proxy-v2` in front of l4lb (--accept_proxy_from) hand it the real client,
// which then is the one access lists and the access log see. Malformed and late
// headers are refused, and so is any header from a peer outside the list, while
// its ordinary bytes (and a server's banner to it) pass untouched.

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A Debian server (nginx, haproxy) started from a config the test writes, in
// the foreground, ready once `port` on `host` accepts.
class Peer {
 public:
  Peer(const std::string& name, const std::string& config,
       const std::vector<std::string>& argv_before_config, const std::string& host, uint16_t port)
      : dir_(absl::StrCat(TempDir(), "/", name, "-", port)) {
    mkdir(dir_.c_str(), 0755);
    config_ = dir_ + "/" + name + ".conf";
    std::ofstream(config_) << absl::StrReplaceAll(config, {{"DIR", dir_}});
    std::vector<std::string> argv = argv_before_config;
    argv.push_back(config_);
    absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(argv, dir_ + "/stdout.log");
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) process_ = *std::move(p);
    EXPECT_TRUE(WaitFor(absl::Seconds(10),
                        [&] {
                          const int fd = ConnectTcp(host, port);
                          if (fd >= 0) close(fd);
                          return fd >= 0;
                        }))
        << name << " did not start:\n"
        << Log();
  }
  std::string Log() const { return Slurp(dir_ + "/stdout.log") + Slurp(dir_ + "/access.log"); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string config_;
  std::unique_ptr<Process> process_;
};

// nginx answering "hello" at /, its access log naming what the PROXY header said.
std::unique_ptr<Peer> StartNginxProxyProtocol(uint16_t port) {
  const std::string config = absl::StrCat(
      "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\npid DIR/nginx.pid;\n"
      "error_log DIR/error.log;\nevents { worker_connections 64; }\nhttp {\n"
      "  log_format pp 'proxy=$proxy_protocol_addr:$proxy_protocol_port peer=$remote_addr';\n"
      "  access_log DIR/access.log pp;\n"
      "  client_body_temp_path DIR;\n  proxy_temp_path DIR;\n  fastcgi_temp_path DIR;\n"
      "  uwsgi_temp_path DIR;\n  scgi_temp_path DIR;\n"
      "  server { listen 127.0.0.2:",
      port, " proxy_protocol; location / { return 200 \"hello\\n\"; } }\n}\n");
  return std::make_unique<Peer>("nginx", config,
                                std::vector<std::string>{"/usr/sbin/nginx", "-e", "stderr", "-c"},
                                "127.0.0.2", port);
}

std::unique_ptr<L4lb> StartL4lb(std::vector<std::string> flags) {
  flags.insert(flags.begin(), {"--listen=127.0.0.1:0", "--threads=1", "--health_check=none"});
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

std::string Curl(uint16_t port, const std::string& source) {
  const CommandResult r = RunCommand({"curl", "-s", "--max-time", "5", "--interface", source,
                                      absl::StrCat("http://127.0.0.1:", port, "/")},
                                     absl::Seconds(10));
  return r.exit_code == 0 ? r.out : "";
}

class SendProxyTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SendProxyTest, NginxSeesTheRealClient) {
  const uint16_t port = FreePortOnAll({"127.0.0.2"});
  std::unique_ptr<Peer> nginx = StartNginxProxyProtocol(port);
  auto l4lb = StartL4lb(
      {absl::StrCat("--backends=127.0.0.2:", port), absl::StrCat("--send_proxy=", GetParam())});
  ASSERT_NE(l4lb, nullptr);
  EXPECT_EQ(Curl(l4lb->port(), "127.0.70.1"), "hello\n");
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    return absl::StrContains(nginx->Log(), "proxy=127.0.70.1:");
  })) << nginx->Log();
  // nginx's peer is l4lb (its backend socket), the header names the client.
  EXPECT_TRUE(absl::StrContains(nginx->Log(), "peer=127.0.0.1")) << nginx->Log();
}

INSTANTIATE_TEST_SUITE_P(Versions, SendProxyTest, ::testing::Values("v1", "v2"));

// HAProxy in mode tcp: its log line names the client its PROXY header gave.
std::string HaproxyConfig(const std::string& frontend, const std::string& backend) {
  return absl::StrCat(
      "global\n  log stdout format raw local0\n"
      "defaults\n  mode tcp\n  log global\n  timeout connect 5s\n  timeout client 10s\n"
      "  timeout server 10s\n  log-format \"haproxy client=%ci:%cp\"\n",
      frontend, backend);
}

TEST(HaproxyTest, AcceptProxyParsesWhatL4lbSends) {
  ASSERT_EQ(access("/usr/sbin/haproxy", X_OK), 0) << "haproxy is missing: run tools/setup.sh";
  EchoServer echo("127.0.0.2");
  const uint16_t port = FreePortOnAll({"127.0.0.3"});
  for (const char* version : {"v1", "v2"}) {
    Peer haproxy(
        "haproxy",
        HaproxyConfig(absl::StrCat("frontend fe\n  bind 127.0.0.3:", port,
                                   " accept-proxy\n  default_backend be\n"),
                      absl::StrCat("backend be\n  server echo 127.0.0.2:", echo.port(), "\n")),
        {"/usr/sbin/haproxy", "-db", "-f"}, "127.0.0.3", port);
    auto l4lb = StartL4lb(
        {absl::StrCat("--backends=127.0.0.3:", port), absl::StrCat("--send_proxy=", version)});
    ASSERT_NE(l4lb, nullptr);
    const int fd = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.72.9");
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    ASSERT_TRUE(SendAll(fd, "ping"));
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(ReadToEof(fd), "ping") << version << "\n" << haproxy.Log();
    close(fd);
    EXPECT_TRUE(
        WaitFor(absl::Seconds(5),
                [&] { return absl::StrContains(haproxy.Log(), "haproxy client=127.0.72.9:"); }))
        << version << "\n"
        << haproxy.Log();
  }
}

class AcceptProxyTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AcceptProxyTest, HaproxyInFrontGivesL4lbTheRealClient) {
  ASSERT_EQ(access("/usr/sbin/haproxy", X_OK), 0) << "haproxy is missing: run tools/setup.sh";
  EchoServer echo("127.0.0.2");
  // The real client 127.0.73.1 is denied; 127.0.74.1 is not. HAProxy (peer
  // 127.0.0.3) is trusted to say which is which.
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", echo.port()),
                         "--accept_proxy_from=127.0.0.3/32", "--deny=127.0.73.0/24"});
  ASSERT_NE(l4lb, nullptr);
  const uint16_t port = FreePortOnAll({"127.0.0.4"});
  Peer haproxy("haproxy",
               HaproxyConfig(
                   absl::StrCat("frontend fe\n  bind 127.0.0.4:", port, "\n  default_backend be\n"),
                   absl::StrCat("backend be\n  source 127.0.0.3\n  server l4lb 127.0.0.1:",
                                l4lb->port(), " ", GetParam(), "\n")),
               {"/usr/sbin/haproxy", "-db", "-f"}, "127.0.0.4", port);
  for (const char* source : {"127.0.74.1", "127.0.73.1"}) {
    const int fd = ConnectTcp("127.0.0.4", port, source);
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    SendAll(fd, "ping");
    shutdown(fd, SHUT_WR);
    const std::string got = ReadToEof(fd);
    close(fd);
    if (absl::StartsWith(source, "127.0.74.")) {
      EXPECT_EQ(got, "ping") << "the header's bytes must not reach the backend";
    } else {
      EXPECT_EQ(got, "") << "the real client is denied";
    }
  }
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    // close=done: HAProxy and l4lb pass both FINs on; nothing waits for a timeout.
    return l4lb->HasLine("client=127.0.74.1:", "close=done") &&
           l4lb->HasLine("client=127.0.73.1:", "close=denied");
  })) << l4lb->Log();
  EXPECT_EQ(l4lb->CountLines("client=127.0.73.1:", "backend=127.0.0.2"), 0)
      << "the denied client reached the backend\n"
      << l4lb->Log();
}

INSTANTIATE_TEST_SUITE_P(Versions, AcceptProxyTest,
                         ::testing::Values("send-proxy", "send-proxy-v2"));

TEST(AcceptProxyTest, MalformedAndLateHeaders) {
  EchoServer echo("127.0.0.2");
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", echo.port()),
                         "--accept_proxy_from=127.0.75.0/24", "--proxy_timeout=300ms"});
  ASSERT_NE(l4lb, nullptr);
  // Malformed: refused, no backend connect.
  for (const char* junk :
       {"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n", "GET / HTTP/1.0\r\n\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 extra\r\n", "\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff"}) {
    const int fd = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.75.1");
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    SendAll(fd, junk);
    int error = -1;
    EXPECT_EQ(ReadToEof(fd, &error), "") << junk;
    close(fd);
  }
  // Nothing at all: cut at proxy_timeout.
  const int silent = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.75.2");
  SetRecvTimeout(silent, absl::Seconds(5));
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadToEof(silent), "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  close(silent);
  EXPECT_EQ(echo.accepted(), 0) << "a bad header reached a backend";
  // A good v1 header in two pieces, then data: the client is the header's.
  const int good = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.75.3");
  SetRecvTimeout(good, absl::Seconds(5));
  SendAll(good, "PROXY TCP4 198.51.100.7 ");
  absl::SleepFor(absl::Milliseconds(50));
  SendAll(good, "192.0.2.1 40000 21\r\nhello");
  shutdown(good, SHUT_WR);
  EXPECT_EQ(ReadToEof(good), "hello");
  close(good);
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return l4lb->HasLine("client=198.51.100.7:40000", "close=done") &&
           l4lb->CountLines("close=bad_proxy", "") == 5;
  })) << l4lb->Log();
  l4lb->process().Stop(SIGTERM, absl::Seconds(5));
  EXPECT_TRUE(l4lb->HasLine("exiting", "bad_proxy=5")) << l4lb->Log();
}

// Records every byte its connections send (all of them, in arrival order) and
// answers nothing: what reached the backend, and only that.
class RecordingServer {
 public:
  explicit RecordingServer(const std::string& host) : listen_fd_(ListenTcp(host, &port_)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~RecordingServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  void Loop() {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    while (!stop_) {  // bounded by the test: the destructor stops it
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (size_t i = fds.size(); i-- > 1;) {  // newest first: erasing keeps the rest
        if (fds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = recv(fds[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
          std::lock_guard<std::mutex> lock(mu_);
          received_.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EAGAIN) {
          close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<ptrdiff_t>(i));
        }
      }
      if (fds[0].revents != 0) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) fds.push_back({fd, POLLIN, 0});
      }
    }
    for (size_t i = 1; i < fds.size(); ++i) close(fds[i].fd);
  }

  uint16_t port_ = 0;
  const int listen_fd_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::string received_;  // guarded by mu_
  std::thread thread_;
};

// Something to read (or the peer's FIN or reset) on fd right now.
bool Readable(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0;
}

const std::string kV1Header = "PROXY TCP4 198.51.100.8 192.0.2.1 1 2\r\n";
// v2, PROXY over TCP4: 198.51.100.8:1 -> 192.0.2.1:2.
const std::string kV2Header = std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0C", 16) +
                              std::string("\xC6\x33\x64\x08\xC0\x00\x02\x01\x00\x01\x00\x02", 12);

// The hole this closes: a peer outside accept_proxy_from that sends a header
// would have had it relayed, and a backend that accepts PROXY would believe it.
TEST(ForeignProxyTest, HeadersFromOutsideTheListAreRefused) {
  RecordingServer backend("127.0.0.2");
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", backend.port()),
                         "--accept_proxy_from=127.0.75.0/24", "--proxy_timeout=1s"});
  ASSERT_NE(l4lb, nullptr);
  struct Case {
    const char* source;
    std::vector<std::string> pieces;  // sent 30 ms apart, each checked not yet refused
  };
  std::vector<std::string> bytewise;
  for (char b : kV2Header + "hello") bytewise.push_back(std::string(1, b));
  const std::vector<Case> cases = {
      {"127.0.76.1", {kV1Header + "hello"}},
      {"127.0.76.2", {kV2Header + "hello"}},
      {"127.0.76.3", bytewise},  // refused at its 12th byte
      {"127.0.76.4", {"PRO", "XY TCP4 198.51.100.8 192.0.2.1 1 2\r\nhello"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    const int fd = ConnectTcp("127.0.0.1", l4lb->port(), c.source);
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    size_t sent = 0;
    int error = 0;
    for (const std::string& piece : c.pieces) {
      // Still a signature's prefix: the connection waits for more.
      if (sent > 0 && sent < 12) {
        EXPECT_FALSE(Readable(fd)) << "refused after " << sent << " bytes";
      }
      if (!SendAll(fd, piece)) {  // refused: the reset is in (and this send took its error)
        error = errno;
        break;
      }
      sent += piece.size();
      absl::SleepFor(absl::Milliseconds(30));
    }
    int read_error = 0;
    EXPECT_EQ(ReadToEof(fd, &read_error), "");
    if (error == 0) error = read_error;
    EXPECT_EQ(error, ECONNRESET) << "refusals reset the client: " << strerror(error);
    close(fd);
  }
  // A signature's prefix and then nothing: refused at proxy_timeout.
  const int stalled = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.76.5");
  ASSERT_GE(stalled, 0);
  SetRecvTimeout(stalled, absl::Seconds(5));
  ASSERT_TRUE(SendAll(stalled, "PROX"));
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadToEof(stalled), "");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(800));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  close(stalled);
  // The rest of a header and a reset at once: the reset must not flush the
  // unscreened bytes on to the backend (a side's last bytes usually are). Which
  // l4lb sees first, the bytes (bad_proxy) or the reset (client_reset), is
  // the kernel's timing; neither may deliver them.
  const int reset = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.76.6");
  ASSERT_GE(reset, 0);
  ASSERT_TRUE(SendAll(reset, "PRO"));
  absl::SleepFor(absl::Milliseconds(30));
  ASSERT_TRUE(SendAll(reset, "XY TCP4 198.51.100.8 192.0.2.1 1 2\r\nhello"));
  const linger now{.l_onoff = 1, .l_linger = 0};
  setsockopt(reset, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
  close(reset);
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return l4lb->HasLine("client=127.0.76.6:", "close=bad_proxy") ||
           l4lb->HasLine("client=127.0.76.6:", "close=client_reset");
  })) << l4lb->Log();
  const int refused = l4lb->CountLines("client=127.0.76.", "close=bad_proxy");
  EXPECT_EQ(refused - l4lb->CountLines("client=127.0.76.6:", "close=bad_proxy"), 5) << l4lb->Log();
  EXPECT_EQ(backend.received(), "") << "a foreign PROXY header reached the backend";
  EXPECT_TRUE(l4lb->HasLine("peer 127.0.76.1:", "PROXY header from outside accept_proxy_from"))
      << l4lb->Log();
  l4lb->process().Stop(SIGTERM, absl::Seconds(5));
  EXPECT_TRUE(l4lb->HasLine("exiting", absl::StrCat("bad_proxy=", refused, " "))) << l4lb->Log();
}

TEST(ForeignProxyTest, OrdinaryBytesFromOutsideTheListAreRelayedExactly) {
  EchoServer echo("127.0.0.2");
  // A long proxy_timeout: bytes that are no signature must not wait for it.
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", echo.port()),
                         "--accept_proxy_from=127.0.75.0/24", "--proxy_timeout=5s"});
  ASSERT_NE(l4lb, nullptr);
  // Binary that starts like the v2 signature and leaves it at its last byte.
  std::string binary = std::string("\r\n\r\n\0\r\nQUIT\x0B", 12);
  std::mt19937_64 rng(76);
  for (int i = 0; i < 60000; ++i) binary.push_back(static_cast<char>(rng()));
  const std::vector<std::vector<std::string>> streams = {
      {"PASS x\r\n"},
      {"GET / HTTP/1.0\r\n\r\n"},
      {binary},
      {"\r\n\r\n", std::string("\0QUIX", 5)},  // a v2 prefix; its 11th byte leaves it
      {"P", "ROXY", "\r\n"},                   // "PROXY" then not a space
      {"PRO"},                                 // a prefix, then the client's FIN: never a header
  };
  int n = 0;
  for (const std::vector<std::string>& pieces : streams) {
    SCOPED_TRACE(absl::CHexEscape(pieces[0].substr(0, 20)));
    const int fd = ConnectTcp("127.0.0.1", l4lb->port(), absl::StrCat("127.0.77.", ++n));
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    std::string all;
    for (const std::string& piece : pieces) {
      ASSERT_TRUE(SendAll(fd, piece));
      all += piece;
      absl::SleepFor(absl::Milliseconds(30));
    }
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(ReadToEof(fd), all);
    close(fd);
  }
  // Decided at once: "PA" is no "PROXY " at its 2nd byte, so the echo is back
  // long before proxy_timeout, with the connection still open.
  const int fd = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.77.99");
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(1));
  ASSERT_TRUE(SendAll(fd, "PA"));
  EXPECT_EQ(ReadN(fd, 2), "PA");
  ASSERT_TRUE(SendAll(fd, "SS y\r\n"));
  EXPECT_EQ(ReadN(fd, 6), "SS y\r\n");
  close(fd);
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return l4lb->CountLines("client=127.0.77.", "close=done") == 7;
  })) << l4lb->Log();
  l4lb->process().Stop(SIGTERM, absl::Seconds(5));
  EXPECT_TRUE(l4lb->HasLine("exiting", "bad_proxy=0")) << l4lb->Log();
}

// FTP, SSH, SMTP: the server speaks first and the client waits for it, so the
// screening of the client's first bytes must hold up neither the connect nor
// the banner.
TEST(ForeignProxyTest, ServerSpeaksFirstToAClientOutsideTheList) {
  std::string heard;
  OneShotServer banner("127.0.0.2", [&](int fd) {
    SetRecvTimeout(fd, absl::Seconds(5));
    SendAll(fd, "220 ready\r\n");
    heard = ReadN(fd, 8);
    SendAll(fd, "331 ok\r\n");
  });
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", banner.port()),
                         "--accept_proxy_from=127.0.75.0/24", "--proxy_timeout=300ms"});
  ASSERT_NE(l4lb, nullptr);
  const int fd = ConnectTcp("127.0.0.1", l4lb->port(), "127.0.78.1");
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(5));
  EXPECT_EQ(ReadN(fd, 11), "220 ready\r\n");
  // Silence longer than proxy_timeout is no offence: only a signature's prefix is timed.
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(SendAll(fd, "USER x\r\n"));
  EXPECT_EQ(ReadN(fd, 8), "331 ok\r\n");
  EXPECT_EQ(ReadToEof(fd), "");
  close(fd);
  EXPECT_TRUE(banner.Join(absl::Seconds(5)));
  EXPECT_EQ(heard, "USER x\r\n");
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return l4lb->HasLine("client=127.0.78.1:", "up=8");
  })) << l4lb->Log();
}

}  // namespace
}  // namespace l4lb::testing
