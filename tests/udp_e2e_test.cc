// UDP load balancing end to end: the built l4lb (--listen=udp://...) in front of
// real dnsmasq servers queried by real dig, and in front of UDP echo servers in
// this process driven by plain sockets: datagram sizes, 10,000 datagrams from 100
// clients, idle expiry, the session bound under 100,000 clients, health checks.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/dnsmasq.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// Fast checks, so the timings below are tenths of seconds.
const std::vector<std::string> kFastChecks = {"--health_interval=200ms", "--health_timeout=200ms",
                                              "--health_rise=2", "--health_fall=3"};
// A probe fails at most one interval (+10% jitter) after the kill, then fall - 1
// more; a probe that waits for nothing back costs a timeout; 300 ms for the log poll.
const absl::Duration kDownWithin = absl::Milliseconds(200 * 3 * 1.1 + 200 + 300);

std::unique_ptr<L4lb> StartUdpL4lb(std::vector<std::string> flags) {
  // A drain keeps UDP sessions until they idle out: 1 s, not 30, at each test's end.
  flags.insert(flags.begin(), {"--listen=udp://127.0.0.1:0", "--drain_timeout=1s"});
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

std::string Backends(uint16_t port, size_t n) {
  std::string out = "--backends=";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&out, i ? "," : "", kHosts[i], ":", port);
  return out;
}

std::string Listener(const L4lb& l4lb) { return absl::StrCat("127.0.0.1:", l4lb.ports()[0]); }

// `token` stands alone in `line`: "127.0.0.1:5000" is not in "127.0.0.1:50001",
// "idle" is in "close=idle" (and "close=idle_timeout") but not in "udp_idle".
bool HasToken(absl::string_view line, absl::string_view token) {
  const auto word = [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.'; };
  for (size_t at = line.find(token); at != absl::string_view::npos; at = line.find(token, at + 1)) {
    const size_t end = at + token.size();
    if ((at == 0 || !word(line[at - 1])) && (end == line.size() || !absl::ascii_isalnum(line[end])))
      return true;
  }
  return false;
}

// l4lb's access-log lines for UDP sessions holding every one of `tokens`.
std::vector<std::string> SessionLines(const L4lb& l4lb, const std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(l4lb.Log(), '\n')) {
    if (!absl::StrContains(line, "udp session")) continue;
    bool all = true;
    for (const std::string& token : tokens) all = all && HasToken(line, token);
    if (all) out.emplace_back(line);
  }
  return out;
}

// A line of l4lb's log holding both strings.
bool HasLine(const L4lb& l4lb, const std::string& a, const std::string& b) {
  for (absl::string_view line : absl::StrSplit(l4lb.Log(), '\n')) {
    if (absl::StrContains(line, a) && absl::StrContains(line, b)) return true;
  }
  return false;
}

// Waits up to 5 s for "`backend` ... is DOWN" in l4lb's log: how long it took.
// The checker logs the change just before it publishes the new snapshot, so this
// returns 20 ms after the line: by then every datagram must see the backend DOWN.
std::optional<absl::Duration> WaitForDown(const L4lb& l4lb, const std::string& backend) {
  const absl::Time start = absl::Now();
  if (!WaitFor(absl::Seconds(5), [&] { return HasLine(l4lb, backend, "is DOWN"); })) {
    return std::nullopt;
  }
  const absl::Duration took = absl::Now() - start;
  absl::SleepFor(absl::Milliseconds(20));
  return took;
}

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or -1.
int64_t StatusKib(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (!absl::StartsWith(line, field + ":")) continue;
    int64_t kib = -1;
    const absl::string_view value =
        absl::StripAsciiWhitespace(absl::string_view(line).substr(field.size() + 1));
    return absl::SimpleAtoi(value.substr(0, value.find(' ')), &kib) ? kib : -1;
  }
  return -1;
}

// UdpEcho sends every datagram back to its source, byte for byte, from one
// socket on host:port (a thread: poll on the socket and a stop eventfd). Stop()
// closes the socket, so the kernel answers ICMP port unreachable from then on:
// a dead UDP server as a health check and a connected socket see it.
class UdpEcho {
 public:
  UdpEcho(const std::string& host, uint16_t port) {
    fd_ = BindUdp(host, &port);
    port_ = port;
    SetUdpBuffers(fd_, 8 << 20);
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { Loop(); });
  }
  ~UdpEcho() {
    Stop();
    close(stop_fd_);
  }
  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }
  void Stop() {
    if (!thread_.joinable()) return;
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
    close(fd_);
  }
  // Datagrams echoed, health probes ("ping") left out.
  int data() const { return data_; }
  // The source port of the last non-probe datagram: l4lb's session socket.
  uint16_t last_peer_port() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_peer_port_;
  }

 private:
  void Loop() {
    pollfd fds[2] = {{.fd = fd_, .events = POLLIN, .revents = 0},
                     {.fd = stop_fd_, .events = POLLIN, .revents = 0}};
    std::string buf(65536, '\0');
    while (poll(fds, 2, -1) >= 0 && fds[1].revents == 0) {
      sockaddr_storage from;
      socklen_t len = sizeof(from);
      const ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      // Counted before the echo goes out: a client that has its reply may read
      // data() at once.
      if (absl::string_view(buf.data(), n) != "ping") {
        ++data_;
        const sockaddr_in& in = reinterpret_cast<const sockaddr_in&>(from);
        std::lock_guard<std::mutex> lock(mu_);
        last_peer_port_ = ntohs(in.sin_port);
      }
      sendto(fd_, buf.data(), n, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  int fd_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> data_{0};
  std::mutex mu_;
  uint16_t last_peer_port_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// A client socket on `host` (port picked by the kernel) with room for bursts.
int Client(const std::string& host = "127.0.0.1") {
  uint16_t port = 0;
  const int fd = BindUdp(host, &port);
  if (fd >= 0) SetUdpBuffers(fd, 1 << 20);
  return fd;
}

// One datagram to l4lb and its answer, which must come from the listener's
// address; "" if none came within 2 s (or from elsewhere).
std::string RoundTrip(int fd, const L4lb& l4lb, const std::string& data) {
  if (!SendTo(fd, "127.0.0.1", l4lb.port(), data)) return "";
  std::string from;
  const std::optional<std::string> reply = RecvFrom(fd, absl::Seconds(2), &from);
  EXPECT_TRUE(!reply || from == Listener(l4lb)) << "reply from " << from;
  return reply && from == Listener(l4lb) ? *reply : "";
}

// ---------------------------------------------------------------------------
// DNS: dnsmasq on 127.0.0.2-4, one port, each answering who.test TXT with
// "backend 127.0.0.N".

class DnsFarm : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access("/usr/sbin/dnsmasq", X_OK), 0) << "dnsmasq is missing: run tools/setup.sh";
    ASSERT_EQ(RunCommand({"dig", "-v"}, absl::Seconds(5)).exit_code, 0)
        << "dig is missing: run tools/setup.sh";
    port_ = FreeUdpPortOnAll(kHosts);
    ASSERT_NE(port_, 0);
    for (size_t i = 0; i < kHosts.size(); ++i) {
      dnsmasq_.emplace_back();
      ASSERT_NO_FATAL_FAILURE(Restart(i));
    }
  }
  void Restart(size_t i) {
    absl::StatusOr<Server> s = StartDnsmasq(kHosts[i], port_, Txt(i));
    ASSERT_TRUE(s.ok()) << s.status();
    dnsmasq_[i] = *std::move(s);
  }
  static std::string Txt(size_t i) { return "backend " + kHosts[i]; }
  std::string Name(size_t i) const { return absl::StrCat("backend ", kHosts[i], ":", port_); }

  uint16_t port_ = 0;
  std::vector<Server> dnsmasq_;
};

// The harness itself, without l4lb: each dnsmasq answers with its own record,
// and dig reports nothing where nothing listens.
TEST_F(DnsFarm, DigStraightToEachDnsmasqGetsItsOwnRecord) {
  for (size_t i = 0; i < kHosts.size(); ++i) {
    EXPECT_EQ(DigTxt(kHosts[i], port_), Txt(i));
    EXPECT_EQ(DigTxt(kHosts[i], port_, "127.0.1.1"), Txt(i)) << "from another source";
  }
  EXPECT_EQ(DigTxt("127.0.0.5", port_), "");
  dnsmasq_[0].process->Stop(SIGKILL, absl::Seconds(5));
  EXPECT_EQ(DigTxt(kHosts[0], port_), "");
}

TEST_F(DnsFarm, QueriesSpreadOverAllBackendsAndEachClientSticks) {
  std::vector<std::string> flags = kFastChecks;
  flags.insert(flags.end(), {Backends(port_, 3), "--health_check=dns", "--max_responses=1"});
  auto l4lb = StartUdpL4lb(flags);
  ASSERT_NE(l4lb, nullptr);
  const uint16_t port = l4lb->port();
  ASSERT_TRUE(absl::StartsWith(DigTxt("127.0.0.1", port), "backend 127.0.0.")) << l4lb->Log();

  std::map<std::string, std::string> backend_of;  // client IP -> answer
  std::map<std::string, int> clients_per_backend;
  for (int c = 1; c <= 30; ++c) {
    const std::string client = absl::StrCat("127.0.1.", c);
    backend_of[client] = DigTxt("127.0.0.1", port, client);
    ++clients_per_backend[backend_of[client]];
  }
  for (size_t i = 0; i < kHosts.size(); ++i) {
    printf("%s: %d of 30 dig clients\n", kHosts[i].c_str(), clients_per_backend[Txt(i)]);
    EXPECT_GT(clients_per_backend[Txt(i)], 0) << kHosts[i] << " got no client";
  }
  EXPECT_EQ(clients_per_backend.size(), kHosts.size()) << "failed or unexpected answers";

  // One source address, fixed port: three queries, three sessions (max_responses=1
  // ends each at its answer), one backend: the one this IP got from any port.
  for (int c = 1; c <= 5; ++c) {
    const std::string ip = absl::StrCat("127.0.1.", c);
    uint16_t source_port = 0;
    close(BindUdp(ip, &source_port));  // free now; dig binds it
    for (int q = 0; q < 3; ++q) {
      EXPECT_EQ(DigTxt("127.0.0.1", port, absl::StrCat(ip, "#", source_port)), backend_of[ip])
          << ip << "#" << source_port << " query " << q;
    }
    const std::string client = absl::StrCat(ip, ":", source_port);
    EXPECT_TRUE(WaitFor(absl::Seconds(2),
                        [&] {
                          return SessionLines(*l4lb, {client, "max_responses"}).size() == 3;
                        }))
        << client << ": want 3 sessions ended by max_responses\n"
        << l4lb->Log();
  }
  // Probes ran all along: a DNS check accepts dnsmasq's answer (REFUSED for ". NS").
  EXPECT_FALSE(absl::StrContains(l4lb->Log(), "is DOWN")) << l4lb->Log();
}

// A killed dnsmasq is found by the DNS check, and by a TCP check on its TCP port
// (dnsmasq serves both); its clients then get answers from the two others.
TEST_F(DnsFarm, KilledDnsmasqGoesDownAndItsClientsMove) {
  for (const std::string check : {"dns", "tcp"}) {
    SCOPED_TRACE(check);
    std::vector<std::string> flags = kFastChecks;
    flags.insert(flags.end(), {Backends(port_, 3), "--max_responses=1", "--health_check=" + check,
                               absl::StrCat("--health_port=", port_)});
    auto l4lb = StartUdpL4lb(flags);
    ASSERT_NE(l4lb, nullptr);
    std::string on_first;  // a client IP that 127.0.0.2 answers
    for (int c = 1; c <= 30 && on_first.empty(); ++c) {
      const std::string client = absl::StrCat("127.0.1.", c);
      if (DigTxt("127.0.0.1", l4lb->port(), client) == Txt(0)) on_first = client;
    }
    ASSERT_FALSE(on_first.empty()) << "no client reached " << kHosts[0];

    dnsmasq_[0].process->Stop(SIGKILL, absl::Seconds(5));
    const std::optional<absl::Duration> took = WaitForDown(*l4lb, Name(0));
    ASSERT_TRUE(took.has_value()) << l4lb->Log();
    printf("%s check: DOWN %s after the kill\n", check.c_str(),
           absl::FormatDuration(*took).c_str());
    EXPECT_LE(*took, kDownWithin);

    const std::string moved = DigTxt("127.0.0.1", l4lb->port(), on_first);
    EXPECT_TRUE(moved == Txt(1) || moved == Txt(2)) << on_first << " got \"" << moved << "\"";
    std::map<std::string, int> after;
    for (int c = 1; c <= 30; ++c) {
      ++after[DigTxt("127.0.0.1", l4lb->port(), absl::StrCat("127.0.1.", c))];
    }
    EXPECT_EQ(after.count(""), 0u) << after[""] << " queries unanswered";
    EXPECT_EQ(after.count(Txt(0)), 0u);
    ASSERT_NO_FATAL_FAILURE(Restart(0));
  }
}

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
