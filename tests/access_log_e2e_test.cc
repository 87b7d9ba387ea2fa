// l4lb with its stderr on a pipe that nobody reads (a stuck journald, a supervisor
// that stopped reading): the access log must drop lines, count and report them,
// and never stall a worker.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"
#include "tests/harness/udp_l4lb.h"

namespace l4lb::testing {
namespace {

// Connections (or UDP sessions) per test: far more lines than the 64 KiB queue
// (--access_log_buffer, ~480 lines) and the pipe hold, so most must be dropped;
// a synchronous log stalls long before.
constexpr int kConnections = 3000;

// Appends what the nonblocking `fd` yields to *out until it holds `needle`
// (empty: until EOF) or `deadline` passes. False at the deadline.
bool ReadPipe(int fd, std::string* out, const std::string& needle, absl::Time deadline) {
  char buf[1 << 16];
  while (needle.empty() || !absl::StrContains(*out, needle)) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return false;
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 100))) < 0 && errno != EINTR) {
      return false;
    }
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0) return needle.empty();  // EOF: l4lb has exited
    if (n > 0) out->append(buf, static_cast<size_t>(n));
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
  }
  return true;
}

// The sum of N over the logging thread's "access log: N line(s) dropped" lines.
uint64_t ReportedDrops(const std::string& log) {
  constexpr absl::string_view kReport = "access log: ";
  uint64_t sum = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    const size_t at = line.find(kReport);
    if (at == absl::string_view::npos || !absl::StrContains(line, " line(s) dropped")) continue;
    const absl::string_view rest = line.substr(at + kReport.size());
    uint64_t n = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &n)) sum += n;
  }
  return sum;
}

// The counter `name` in l4lb's "exiting: accepted=N ..." line; -1 if absent.
int64_t ExitCounter(const std::string& log, const std::string& name) {
  const size_t line = log.find("exiting: ");
  if (line == std::string::npos) return -1;
  const size_t at = log.find(" " + name + "=", line);
  if (at == std::string::npos) return -1;
  const size_t start = at + name.size() + 2;
  int64_t value = -1;
  if (!absl::SimpleAtoi(log.substr(start, log.find_first_of(" \n", start) - start), &value)) {
    return -1;
  }
  return value;
}

int LinesWith(const std::string& log, absl::string_view what) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) n += absl::StrContains(line, what);
  return n;
}

// l4lb with `flags`, its stderr on a pipe the test holds and does not read.
class UnreadStderr {
 public:
  explicit UnreadStderr(const std::vector<std::string>& flags) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    read_end_ = fds[0];
    // One page: the pipe is full after a few dozen lines instead of 64 KiB later.
    if (fcntl(read_end_, F_SETPIPE_SZ, 4096) < 4096) ADD_FAILURE() << "F_SETPIPE_SZ";
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags, fds[1]);
    close(fds[1]);  // l4lb holds the only write end: EOF once it exits
    if (l4lb.ok()) l4lb_ = *std::move(l4lb);
    EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  }
  ~UnreadStderr() {
    if (read_end_ >= 0) close(read_end_);
  }
  L4lb* l4lb() { return l4lb_.get(); }

  // Reads the pipe at last: the logging thread writes what it queued, then how
  // many lines found the queue full; then l4lb stops (exit 0). Returns it all.
  std::string ReadAndStop() {
    std::string log;
    EXPECT_EQ(fcntl(read_end_, F_SETFL, O_NONBLOCK), 0);
    EXPECT_TRUE(ReadPipe(read_end_, &log, " line(s) dropped", absl::Now() + absl::Seconds(10)))
        << "no drop report; the log's end:\n"
        << log.substr(log.size() - std::min<size_t>(log.size(), 2000));
    EXPECT_EQ(l4lb_->process().Stop(SIGTERM, absl::ZeroDuration()), -1) << "l4lb died early";
    EXPECT_TRUE(ReadPipe(read_end_, &log, "", absl::Now() + absl::Seconds(20)))
        << "no EOF on stderr";
    EXPECT_EQ(l4lb_->process().Wait(absl::Seconds(10)), 0);
    for (const char* report :
         {"ThreadSanitizer", "AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
      EXPECT_FALSE(absl::StrContains(log, report)) << log;
    }
    return log;
  }

 private:
  int read_end_ = -1;
  std::unique_ptr<L4lb> l4lb_;
};

// Every one of `ended` (connections or sessions, from the exit totals) is a
// line holding `line` or a counted drop, and the counter is the reports' sum.
void ExpectEveryLineWrittenOrCounted(const std::string& log, absl::string_view line,
                                     const std::string& ended) {
  const int written = LinesWith(log, line);
  const uint64_t reported = ReportedDrops(log);
  std::printf(
      "access log: %d lines written, %llu reported dropped; %s=%lld, access_log_dropped=%lld\n",
      written, static_cast<unsigned long long>(reported), ended.c_str(),
      static_cast<long long>(ExitCounter(log, ended)),
      static_cast<long long>(ExitCounter(log, "access_log_dropped")));
  EXPECT_GT(reported, 0u);
  EXPECT_EQ(written + static_cast<int64_t>(reported), ExitCounter(log, ended));
  EXPECT_EQ(ExitCounter(log, "access_log_dropped"), static_cast<int64_t>(reported));
}

TEST(AccessLogE2eTest, UnreadStderrStallsNoTcpConnectionAndEveryLineIsWrittenOrCounted) {
  EchoServer backend("127.0.0.2");
  UnreadStderr l4lb({"--listen=127.0.0.1:0", "--threads=1", "--health_check=none",
                     "--access_log_buffer=65536",
                     absl::StrCat("--backends=127.0.0.2:", backend.port())});
  ASSERT_NE(l4lb.l4lb(), nullptr);

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(20);
  int echoed = 0;
  int tried = 0;
  for (; tried < kConnections && absl::Now() < deadline; ++tried) {
    const int fd = ConnectTcp("127.0.0.1", l4lb.l4lb()->port());
    if (fd < 0) continue;
    SetRecvTimeout(fd, absl::Seconds(2));
    SendAll(fd, "ping");
    shutdown(fd, SHUT_WR);
    echoed += ReadToEof(fd) == "ping";
    close(fd);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("%d of %d sequential connections echoed in %.2f s, l4lb's stderr unread\n", echoed,
              kConnections, seconds);
  EXPECT_EQ(echoed, kConnections) << "tried " << tried << " in 20 s";

  const std::string log = l4lb.ReadAndStop();
  EXPECT_EQ(ExitCounter(log, "accepted"), kConnections);
  ExpectEveryLineWrittenOrCounted(log, " conn client=", "accepted");
}

// One session per datagram (--max_responses=1, as for DNS): a line per query.
TEST(AccessLogE2eTest, UnreadStderrStallsNoUdpSessionAndEveryLineIsWrittenOrCounted) {
  UdpEcho backend("127.0.0.2", 0);
  ASSERT_TRUE(backend.ok());
  UnreadStderr l4lb({"--listen=udp://127.0.0.1:0", "--threads=1", "--health_check=none",
                     "--max_responses=1", "--access_log_buffer=65536",
                     absl::StrCat("--backends=127.0.0.2:", backend.port())});
  ASSERT_NE(l4lb.l4lb(), nullptr);
  const int fd = Client();
  ASSERT_GE(fd, 0);

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(20);
  int answered = 0;
  int tried = 0;
  for (; tried < kConnections && absl::Now() < deadline; ++tried) {
    const std::string query = absl::StrCat("query ", tried);
    answered += RoundTrip(fd, *l4lb.l4lb(), query) == query;
  }
  close(fd);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("%d of %d sequential one-datagram sessions answered in %.2f s, stderr unread\n",
              answered, kConnections, seconds);
  EXPECT_EQ(answered, kConnections) << "tried " << tried << " in 20 s";

  const std::string log = l4lb.ReadAndStop();
  EXPECT_EQ(ExitCounter(log, "udp_sessions"), kConnections);
  ExpectEveryLineWrittenOrCounted(log, " udp session client=", "udp_sessions");
}

}  // namespace
}  // namespace l4lb::testing
