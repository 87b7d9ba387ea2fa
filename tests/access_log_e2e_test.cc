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
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

// Far more lines than the 64 KiB queue (--access_log_buffer, ~480 lines) and the
// pipe hold: most must be dropped, and a synchronous log stalls long before.
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

TEST(AccessLogE2eTest, UnreadStderrStallsNoConnectionAndEveryLineIsWrittenOrCounted) {
  EchoServer backend("127.0.0.2");
  int err[2];
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  // One page: the pipe is full after a few dozen lines instead of 64 KiB later.
  ASSERT_GE(fcntl(err[0], F_SETPIPE_SZ, 4096), 4096);
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
      {"--listen=127.0.0.1:0", "--threads=1", "--health_check=none", "--access_log_buffer=65536",
       absl::StrCat("--backends=127.0.0.2:", backend.port())},
      err[1]);
  close(err[1]);  // l4lb holds the only write end: EOF once it exits
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(20);
  int echoed = 0;
  int tried = 0;
  for (; tried < kConnections && absl::Now() < deadline; ++tried) {
    const int fd = ConnectTcp("127.0.0.1", (*l4lb)->port());
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

  // Reading the pipe at last: the logging thread writes what it queued, then how
  // many lines found the queue full.
  ASSERT_EQ(fcntl(err[0], F_SETFL, O_NONBLOCK), 0);
  std::string log;
  EXPECT_TRUE(ReadPipe(err[0], &log, " line(s) dropped", absl::Now() + absl::Seconds(10)))
      << "no drop report; the log's end:\n"
      << log.substr(log.size() - std::min<size_t>(log.size(), 2000));
  EXPECT_EQ((*l4lb)->process().Stop(SIGTERM, absl::ZeroDuration()), -1) << "l4lb died early";
  EXPECT_TRUE(ReadPipe(err[0], &log, "", absl::Now() + absl::Seconds(20))) << "no EOF on stderr";
  EXPECT_EQ((*l4lb)->process().Wait(absl::Seconds(10)), 0);
  close(err[0]);

  const int written = LinesWith(log, " conn client=");
  const uint64_t reported = ReportedDrops(log);
  std::printf(
      "access log: %d lines written, %llu reported dropped, exit totals: %s\n", written,
      static_cast<unsigned long long>(reported),
      log.substr(log.find("exiting: ") == std::string::npos ? log.size() : log.find("exiting: "))
          .c_str());
  EXPECT_GT(reported, 0u);
  // Every connection is a line or a counted drop, and the counter is the reports' sum.
  EXPECT_EQ(ExitCounter(log, "accepted"), kConnections);
  EXPECT_EQ(written + static_cast<int64_t>(reported), ExitCounter(log, "accepted"));
  EXPECT_EQ(ExitCounter(log, "access_log_dropped"), static_cast<int64_t>(reported));
  for (const char* report :
       {"ThreadSanitizer", "AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
    EXPECT_FALSE(absl::StrContains(log, report)) << log;
  }
}

}  // namespace
}  // namespace l4lb::testing
