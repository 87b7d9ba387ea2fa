// The short-connection options end to end, in a network namespace of the test's
// own (net.ipv4.tcp_fastopen=3 there, the host's left alone): backend_tfo makes
// l4lb's backend connects carry the client's first bytes (or the PROXY header)
// in the SYN, as the backend's kernel reports for each connection it accepted
// (TCPI_OPT_SYN_DATA); a backend that refuses after a cookie was cached cuts the
// client, never hangs it; defer_accept keeps a connection from l4lb until the
// client speaks, and a client that never speaks (a server-first protocol) is
// still served, late.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "tests/harness/netns.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr char kBackendHost[] = "127.0.0.2";

// A TFO-enabled backend (TCP_FASTOPEN on its listener) that greets with
// `banner` (may be empty), then echoes one read's worth and closes. It keeps,
// per accepted connection, whether the kernel took data in the SYN.
class FastOpenBackend {
 public:
  explicit FastOpenBackend(std::string banner) : banner_(std::move(banner)) {
    listen_fd_ = ListenTcp(kBackendHost, &port_);
    const int qlen = 64;
    ok_ = listen_fd_ >= 0 &&
          setsockopt(listen_fd_, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) == 0;
    thread_ = std::thread([this] { Loop(); });
  }
  ~FastOpenBackend() {
    stop_ = true;
    thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }
  // Closes the listener: the port refuses from now on.
  void Stop() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
    listen_fd_ = -1;
    thread_ = std::thread([] {});
  }
  std::vector<bool> syn_data() {
    absl::MutexLock lock(&mu_);
    return syn_data_;
  }
  int accepted() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(syn_data_.size());
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p = {.fd = listen_fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      tcp_info info = {};
      socklen_t len = sizeof(info);
      const bool in_syn = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
                          (info.tcpi_options & TCPI_OPT_SYN_DATA) != 0;
      {
        absl::MutexLock lock(&mu_);
        syn_data_.push_back(in_syn);
      }
      SetRecvTimeout(fd, absl::Seconds(5));
      if (!banner_.empty()) SendAll(fd, banner_);
      char buf[4096];
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n > 0) SendAll(fd, buf, static_cast<size_t>(n));
      close(fd);
    }
  }

  const std::string banner_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<bool> syn_data_;
};

struct Lab {
  std::unique_ptr<NetNamespace> ns;  // first in, last out
  std::unique_ptr<FastOpenBackend> backend;
  std::unique_ptr<L4lb> l4lb;
};

// A namespace with TFO on both ways, a backend in it, l4lb before it with `flags`.
void StartLab(Lab* lab, const std::string& banner, const std::vector<std::string>& flags) {
  absl::StatusOr<std::unique_ptr<NetNamespace>> ns = NetNamespace::Enter("l4lb-tfo");
  ASSERT_TRUE(ns.ok()) << ns.status();
  lab->ns = *std::move(ns);
  ASSERT_TRUE(lab->ns->Sysctl("net.ipv4.tcp_fastopen", "3").ok());
  lab->backend = std::make_unique<FastOpenBackend>(banner);
  ASSERT_TRUE(lab->backend->ok());
  std::vector<std::string> all = {
      "--listen=127.0.0.1:0", "--threads=1", "--health_check=none",
      absl::StrCat("--backends=", kBackendHost, ":", lab->backend->port())};
  all.insert(all.end(), flags.begin(), flags.end());
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(all);
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  lab->l4lb = *std::move(l4lb);
}

// One request through l4lb: connect, send `request`, read it echoed until EOF.
std::string Exchange(uint16_t port, const std::string& request, int* error = nullptr) {
  const int fd = ConnectTcp("127.0.0.1", port);
  if (fd < 0) return "(connect failed)";
  SetRecvTimeout(fd, absl::Seconds(5));
  SendAll(fd, request);
  std::string reply = ReadToEof(fd, error);
  close(fd);
  return reply;
}

int Count(const std::vector<bool>& v) {
  int n = 0;
  for (const bool b : v) n += b ? 1 : 0;
  return n;
}

TEST(BackendTfoTest, TheClientsFirstBytesRideInTheSyn) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "", {"--backend_tfo"}));
  constexpr int kRequests = 10;
  for (int i = 0; i < kRequests; ++i) {
    const std::string request = absl::StrCat("GET /", i, " HTTP/1.0\r\n\r\n");
    EXPECT_EQ(Exchange(lab.l4lb->port(), request), request) << "request " << i;
  }
  const std::vector<bool> syn_data = lab.backend->syn_data();
  ASSERT_EQ(syn_data.size(), kRequests);
  // The first connect fetches the cookie; every later one uses it.
  EXPECT_FALSE(syn_data[0]);
  EXPECT_EQ(Count(syn_data), kRequests - 1);
}

TEST(BackendTfoTest, OffByDefault) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "", {}));
  for (int i = 0; i < 5; ++i) {
    const std::string request = absl::StrCat("GET /", i, " HTTP/1.0\r\n\r\n");
    EXPECT_EQ(Exchange(lab.l4lb->port(), request), request);
  }
  EXPECT_EQ(Count(lab.backend->syn_data()), 0);
  EXPECT_EQ(lab.backend->accepted(), 5);
}

TEST(BackendTfoTest, ABackendThatRefusesAfterItsCookieCutsTheClient) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "", {"--backend_tfo", "--connect_retries=0"}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Exchange(lab.l4lb->port(), "warm"), "warm");
  ASSERT_GE(Count(lab.backend->syn_data()), 1) << "no cookie cached";
  lab.backend->Stop();
  // The connect "succeeded" at once (cookie cached); the SYN+data meets a reset.
  // The client must see its connection end, not wait for bytes that never come.
  const absl::Time start = absl::Now();
  int error = 0;
  EXPECT_EQ(Exchange(lab.l4lb->port(), "lost", &error), "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(4)) << "client hung";
  // And the next connection is not wedged either.
  EXPECT_EQ(Exchange(lab.l4lb->port(), "again"), "");
}

sockaddr_in Ipv4(const std::string& host, uint16_t port) {
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &to.sin_addr);
  return to;
}

// Connects with TCP_FASTOPEN_CONNECT straight to host:port, sends `data` and
// reads the echo: the first fetches a cookie for the host, later ones use it.
std::string FastOpenExchange(const std::string& host, uint16_t port, const std::string& data) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on, sizeof(on));
  sockaddr_in to = Ipv4(host, port);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
    SetRecvTimeout(fd, absl::Seconds(5));
    SendAll(fd, data);
    reply = ReadToEof(fd);
  }
  close(fd);
  return reply;
}

TEST(BackendTfoTest, ABackendThatDropsTheSynCutsTheClientWithinTheConnectTimeout) {
  absl::StatusOr<std::unique_ptr<NetNamespace>> ns = NetNamespace::Enter("l4lb-tfo");
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE((*ns)->Sysctl("net.ipv4.tcp_fastopen", "3").ok());
  // A cookie for 127.0.0.2 (the kernel keeps one per host, not per port).
  FastOpenBackend warm("");
  ASSERT_TRUE(warm.ok());
  EXPECT_EQ(FastOpenExchange(kBackendHost, warm.port(), "a"), "a");
  EXPECT_EQ(FastOpenExchange(kBackendHost, warm.port(), "b"), "b");
  ASSERT_EQ(Count(warm.syn_data()), 1) << "no cookie cached";
  // A backend that never accepts, its queue full: the kernel drops every new
  // SYN without a word, as a dead host or a firewall would.
  uint16_t stuck_port = 0;
  const int stuck = ListenTcp(kBackendHost, &stuck_port);
  ASSERT_GE(stuck, 0);
  ASSERT_EQ(listen(stuck, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    fillers.push_back(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    sockaddr_in to = Ipv4(kBackendHost, stuck_port);
    connect(fillers.back(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  absl::SleepFor(absl::Milliseconds(200));
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
      {"--listen=127.0.0.1:0", "--threads=1", "--health_check=none", "--connect_retries=0",
       "--connect_timeout=2s", "--backend_tfo",
       absl::StrCat("--backends=", kBackendHost, ":", stuck_port)});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  // The connect returns at once (cookie), so its 2 s timeout cannot fire; the
  // SYN retries (TCP_SYNCNT 1: about 3 s) must, not the kernel's 6 (127 s).
  const int fd = ConnectTcp("127.0.0.1", (*l4lb)->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(20));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(SendAll(fd, "GET / HTTP/1.0\r\n\r\n"));
  int error = 0;
  EXPECT_EQ(ReadToEof(fd, &error), "");
  const absl::Duration waited = absl::Now() - start;
  EXPECT_NE(error, EAGAIN) << "the client was still held after 20 s";
  EXPECT_GE(waited, absl::Seconds(2));
  EXPECT_LT(waited, absl::Seconds(8));
  close(fd);
  for (const int f : fillers) close(f);
  close(stuck);
}

TEST(BackendTfoTest, ThePROXYHeaderRidesInTheSynToo) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "", {"--backend_tfo", "--send_proxy=v1"}));
  for (int i = 0; i < 4; ++i) {
    // The backend echoes its first read: at least the header l4lb wrote first.
    const std::string reply = Exchange(lab.l4lb->port(), "GET / HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(absl::StartsWith(reply, "PROXY TCP4 127.0.0.1 127.0.0.1 ")) << reply;
  }
  const std::vector<bool> syn_data = lab.backend->syn_data();
  ASSERT_EQ(syn_data.size(), 4u);
  EXPECT_EQ(Count(syn_data), 3) << "the header did not ride in the SYN once a cookie was there";
}

TEST(DeferAcceptTest, ASilentClientReachesNoBackendUntilItSpeaks) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "", {"--defer_accept"}));
  const int fd = ConnectTcp("127.0.0.1", lab.l4lb->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(5));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(lab.backend->accepted(), 0) << "accepted before the client spoke";
  ASSERT_TRUE(SendAll(fd, "hello"));
  EXPECT_EQ(ReadToEof(fd), "hello");
  close(fd);
  EXPECT_EQ(lab.backend->accepted(), 1);
}

TEST(DeferAcceptTest, WithoutItASilentClientIsRelayedAtOnce) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "", {}));
  const int fd = ConnectTcp("127.0.0.1", lab.l4lb->port());
  ASSERT_GE(fd, 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (lab.backend->accepted() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(lab.backend->accepted(), 1);
  close(fd);
}

TEST(DeferAcceptTest, AServerFirstClientIsServedLateNotRefused) {
  Lab lab;
  ASSERT_NO_FATAL_FAILURE(StartLab(&lab, "220 ready\r\n", {"--defer_accept"}));
  const int fd = ConnectTcp("127.0.0.1", lab.l4lb->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(10));
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadN(fd, 11), "220 ready\r\n");
  const absl::Duration late = absl::Now() - start;
  EXPECT_GE(late, absl::Milliseconds(500)) << "defer_accept had no effect";
  EXPECT_LT(late, absl::Seconds(8));
  close(fd);
}

TEST(ShortConnectionFlagsTest, AKernelWithoutClientTfoIsSaidAtStart) {
  absl::StatusOr<std::unique_ptr<NetNamespace>> ns = NetNamespace::Enter("l4lb-tfo");
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE((*ns)->Sysctl("net.ipv4.tcp_fastopen", "0").ok());
  FastOpenBackend backend("");
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
      L4lb::Start({"--listen=127.0.0.1:0", "--threads=1", "--health_check=none",
                   absl::StrCat("--backends=", kBackendHost, ":", backend.port()),
                   "--backend_tfo"});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  EXPECT_TRUE((*l4lb)->HasLine("backend_tfo", "sysctl -w net.ipv4.tcp_fastopen=1")) << (*l4lb)->Log();
  // It still serves, without Fast Open.
  EXPECT_EQ(Exchange((*l4lb)->port(), "plain"), "plain");
  EXPECT_EQ(Exchange((*l4lb)->port(), "plain"), "plain");
  EXPECT_EQ(Count(backend.syn_data()), 0);
}

TEST(ShortConnectionFlagsTest, RefusedOnUdpListenersNamingTheFlag) {
  for (const char* flag : {"--defer_accept", "--backend_tfo"}) {
    const CommandResult r = RunCommand(
        {L4lbBinary(), "--listen=udp://127.0.0.1:0", "--backends=127.0.0.2:53", flag},
        absl::Seconds(10));
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_NE(r.err.find(absl::StrCat(flag, ": only for tcp listeners")), std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace l4lb::testing
