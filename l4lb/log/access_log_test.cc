#include "l4lb/log/access_log.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace l4lb::log {
namespace {

std::vector<std::string> DrainAll(AccessLogQueue& queue) {
  std::vector<std::string> lines;
  queue.Drain(queue.capacity(), [&](absl::string_view line) { lines.emplace_back(line); });
  return lines;
}

// "line 1000000", "line 1000001", ...: 12 characters, 16 bytes in a queue, so
// a 1,024-byte queue holds exactly 64 of them.
std::string Line(int i) { return absl::StrCat("line ", 1'000'000 + i); }
std::vector<std::string> Numbered(int first, int count) {
  std::vector<std::string> lines;
  for (int i = first; i < first + count; ++i) lines.push_back(Line(i));
  return lines;
}

// What the logging thread wrote and reported, read by the test thread.
class Sink {
 public:
  void Write(absl::string_view line) {
    std::unique_lock<std::mutex> lock(mu_);
    // A closed gate is a sink that does not return (stderr on a full pipe);
    // bounded, so a broken test ends.
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; });
    lines_.emplace_back(line);
  }
  void Report(absl::string_view line) {
    std::lock_guard<std::mutex> lock(mu_);
    reports_.emplace_back(line);
  }
  void Open(bool open) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = open;
    }
    cv_.notify_all();
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  std::vector<std::string> reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }
  AccessLog::Options Options(AccessLog::Options options) {
    options.write = [this](absl::string_view line) { Write(line); };
    options.report = [this](absl::string_view line) { Report(line); };
    return options;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::vector<std::string> lines_;
  std::vector<std::string> reports_;
};

// The N of "access log: N line(s) dropped ..." summed over `reports`.
uint64_t DroppedIn(const std::vector<std::string>& reports) {
  uint64_t sum = 0;
  for (const std::string& r : reports) {
    uint64_t n = 0;
    const absl::string_view rest = absl::string_view(r).substr(strlen("access log: "));
    if (absl::StrContains(r, " line(s) dropped") &&
        absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &n)) {
      sum += n;
    }
  }
  return sum;
}

TEST(AccessLogQueueTest, KeepsOrderUpToCapacityAndRefusesTheNextLine) {
  AccessLogQueue queue(1024);
  ASSERT_EQ(queue.capacity(), 1024u);
  for (const std::string& line : Numbered(0, 64)) ASSERT_TRUE(queue.Push(line));
  EXPECT_FALSE(queue.Push(Line(64)));
  EXPECT_EQ(queue.Queued(), 64u);
  EXPECT_EQ(DrainAll(queue), Numbered(0, 64));
  // Freed bytes are reused: 10 rounds of 40 lines go round the ring 6 times.
  for (int round = 0; round < 10; ++round) {
    for (const std::string& line : Numbered(round * 40, 40)) ASSERT_TRUE(queue.Push(line));
    EXPECT_EQ(DrainAll(queue), Numbered(round * 40, 40));
  }
  EXPECT_EQ(queue.Queued(), 0u);
}

TEST(AccessLogQueueTest, LinesOfEveryLengthCrossTheRingsEndWhole) {
  AccessLogQueue queue(4096);
  std::mt19937 rng(12);  // fixed seed: the same wraps every run
  std::vector<std::string> pushed, drained;
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> lines;
    for (int i = 0; i < 5; ++i) {
      const size_t len = rng() % (AccessLogQueue::kLineBytes + 1);  // 0 .. kLineBytes
      lines.push_back(std::string(len, static_cast<char>('a' + (round + i) % 26)));
      ASSERT_TRUE(queue.Push(lines.back())) << "round " << round << ", " << len << " bytes";
    }
    EXPECT_EQ(queue.Queued(), 5u);
    EXPECT_EQ(DrainAll(queue), lines) << "round " << round;
  }
  // A longer line is cut, not refused.
  ASSERT_TRUE(queue.Push(std::string(1000, 'x')));
  EXPECT_EQ(DrainAll(queue),
            std::vector<std::string>{std::string(AccessLogQueue::kLineBytes, 'x')});
}

TEST(AccessLogQueueTest, CapacityIsRoundedUpToAPowerOfTwo) {
  EXPECT_EQ(AccessLogQueue(0).capacity(), AccessLogQueue::kMinBytes);
  EXPECT_EQ(AccessLogQueue(5000).capacity(), 8192u);
  EXPECT_EQ(AccessLogQueue(1 << 20).capacity(), size_t{1} << 20);
}

TEST(AccessLineTest, FormatsStringsCharactersAndIntegersAndCutsAtTheLimit) {
  AccessLogQueue queue(4096);
  stats::Counter dropped;
  AccessLine(queue, dropped) << "conn client=" << std::string("10.0.0.1:5") << ' '
                             << "up=" << uint64_t{18446744073709551615u} << " ms=" << int64_t{-3}
                             << " n=" << 0;
  AccessLine(queue, dropped) << std::string(1000, 'x') << "more";
  EXPECT_EQ(dropped.Get(), 0u);
  EXPECT_EQ(DrainAll(queue),
            (std::vector<std::string>{"conn client=10.0.0.1:5 up=18446744073709551615 ms=-3 n=0",
                                      std::string(AccessLogQueue::kLineBytes, 'x')}));
}

TEST(AccessLineTest, AFullQueueDropsAndCountsTheLineInsteadOfWaiting) {
  AccessLogQueue queue(1024);
  stats::Counter dropped;
  for (int i = 0; i < 100; ++i) AccessLine(queue, dropped) << "line " << 1'000'000 + i;
  EXPECT_EQ(dropped.Get(), 36u);
  // The queued lines stay as they were: later ones never overwrite them.
  EXPECT_EQ(DrainAll(queue), Numbered(0, 64));
  AccessLine(queue, dropped) << "line " << 1'000'100;
  EXPECT_EQ(DrainAll(queue), Numbered(100, 1));
  EXPECT_EQ(dropped.Get(), 36u);
}

// One producer and one consumer thread at once, the producer waiting for room
// instead of dropping: every line arrives, in order. Run under --config=tsan too.
TEST(AccessLogQueueTest, ConsumerOnAnotherThreadGetsEveryLineInOrder) {
  constexpr int kLines = 200'000;
  AccessLogQueue queue(4096);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  // Line i is its number padded to 8 + i % 100 characters: lengths vary, so
  // lines wrap at every offset of the ring.
  auto line = [](int i) { return absl::StrCat(i, std::string(8 + i % 100, ' ')); };
  std::thread producer([&] {
    for (int i = 0; i < kLines && absl::Now() < deadline; ++i) {
      const std::string text = line(i);
      while (!queue.Push(text) && absl::Now() < deadline) std::this_thread::yield();
    }
  });
  int received = 0;
  int wrong = 0;
  while (received < kLines && absl::Now() < deadline) {
    const size_t n = queue.Drain(64, [&](absl::string_view text) {
      wrong += text != line(received);
      ++received;
    });
    if (n == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_EQ(received, kLines);
  EXPECT_EQ(wrong, 0) << "lines out of order or garbled";
}

TEST(AccessLogTest, ThreadWritesEveryWorkersLinesAndStopFlushesWhatIsQueued) {
  Sink sink;
  // An hour between polls: once the thread has found its queues empty, only
  // Stop()'s flush can write what comes next.
  AccessLog log(2, sink.Options({.poll = absl::Hours(1)}));
  stats::Counter dropped[2];
  AccessLine(*log.queue(0), dropped[0]) << "first";
  log.Start({&dropped[0], &dropped[1]});
  // Written in the thread's first pass; the next pass finds nothing and sleeps.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sink.lines().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(sink.lines(), std::vector<std::string>{"first"});
  // More than one pass takes from a queue (256), fewer than it holds (1,024).
  for (int i = 0; i < 1000; ++i) {
    AccessLine(*log.queue(0), dropped[0]) << Line(i);
    AccessLine(*log.queue(1), dropped[1]) << Line(10000 + i);
  }
  log.Stop();
  std::vector<std::string> lines = sink.lines();
  lines.erase(lines.begin());  // "first"
  ASSERT_EQ(lines.size(), 2000u);
  // Each worker's lines in its order; the two interleave.
  std::vector<std::string> first, second;
  for (const std::string& line : lines) (line < Line(10000) ? first : second).push_back(line);
  EXPECT_EQ(first, Numbered(0, 1000));
  EXPECT_EQ(second, Numbered(10000, 1000));
  EXPECT_TRUE(sink.reports().empty());
}

TEST(AccessLogTest, ABlockedSinkNeverHoldsUpTheProducerAndItsDropsAreReported) {
  Sink sink;
  sink.Open(false);
  AccessLog log(1, sink.Options({.queue_bytes = 1024,
                                 .poll = absl::Milliseconds(1),
                                 .report_interval = absl::Milliseconds(50)}));
  stats::Counter dropped;
  log.Start({&dropped});
  // The thread takes the first line and hangs in the sink; its bytes stay taken
  // until the write returns, so exactly 64 lines find room.
  for (int i = 0; i < 10'000; ++i) AccessLine(*log.queue(0), dropped) << Line(i);
  EXPECT_EQ(dropped.Get(), 10'000u - 64);
  sink.Open(true);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sink.reports().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  // Reports repeat only for new drops: give the thread a few more intervals.
  absl::SleepFor(absl::Milliseconds(200));
  log.Stop();
  EXPECT_EQ(sink.lines(), Numbered(0, 64));
  const std::vector<std::string> reports = sink.reports();
  ASSERT_EQ(reports.size(), 1u) << absl::StrJoin(reports, "\n");
  EXPECT_EQ(DroppedIn(reports), 9936u) << reports[0];
  EXPECT_TRUE(absl::StartsWith(reports[0], "access log: 9936 line(s) dropped")) << reports[0];
}

TEST(AccessLogTest, DropsAreReportedAtMostOncePerInterval) {
  Sink sink;
  // A sink slower than the producer: the smallest queue overflows all the time.
  AccessLog::Options options = sink.Options({.queue_bytes = AccessLogQueue::kMinBytes,
                                             .poll = absl::Milliseconds(1),
                                             .report_interval = absl::Milliseconds(100)});
  options.write = [&sink](absl::string_view line) {
    absl::SleepFor(absl::Microseconds(200));
    sink.Write(line);
  };
  AccessLog log(1, std::move(options));
  stats::Counter dropped;
  log.Start({&dropped});
  const absl::Time start = absl::Now();
  int pushed = 0;
  for (; pushed < 1'000'000 && absl::Now() - start < absl::Seconds(1); ++pushed) {
    AccessLine(*log.queue(0), dropped) << Line(pushed);
    absl::SleepFor(absl::Microseconds(20));
  }
  log.Stop();
  const absl::Duration ran = absl::Now() - start;
  const std::vector<std::string> reports = sink.reports();
  std::printf("%d lines in %s: %zu written, %llu dropped, %zu reports\n", pushed,
              absl::FormatDuration(ran).c_str(), sink.lines().size(),
              static_cast<unsigned long long>(dropped.Get()), reports.size());
  ASSERT_GT(dropped.Get(), 0u);
  // One report per 100 ms while dropping, plus the last one at Stop().
  EXPECT_LE(reports.size(), static_cast<size_t>(ran / absl::Milliseconds(100)) + 2);
  EXPECT_GE(reports.size(), 2u);
  // The reports add up to the counter: every drop is reported once.
  EXPECT_EQ(DroppedIn(reports), dropped.Get());
  EXPECT_EQ(sink.lines().size() + dropped.Get(), static_cast<size_t>(pushed));
}

}  // namespace
}  // namespace l4lb::log
