#pragma once

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "l4lb/stats/counters.h"

namespace l4lb::log {

// AccessLogQueue carries access-log lines from one worker to the logging thread:
// a ring of bytes holding length-prefixed lines, with one producer (the worker)
// and one consumer (AccessLog's thread). The worker never waits and never
// allocates: Push() copies the line in, or refuses it when the ring is full
// (AccessLine counts that). A line takes 4 + its length rounded up to 4 bytes,
// so 1 MiB holds about 6,000 lines of 170 bytes.
//
// Thread safety: Push() from the producer thread only; Drain() and Queued()
// from the consumer thread only. The two sides run concurrently, synchronised
// by one release/acquire index each, no lock.
class AccessLogQueue {
 public:
  // Longer lines are cut here. The longest line l4lb writes (three IPv6
  // addresses, 20-digit counters, an error text) is about 420 bytes.
  static constexpr size_t kLineBytes = 512;
  static constexpr size_t kMinBytes = 1024;  // room for the longest line after a wrap

  // A ring of `bytes`, rounded up to a power of two, at least kMinBytes.
  explicit AccessLogQueue(size_t bytes);
  AccessLogQueue(const AccessLogQueue&) = delete;
  AccessLogQueue& operator=(const AccessLogQueue&) = delete;

  size_t capacity() const { return static_cast<size_t>(mask_ + 1); }  // bytes

  // Producer: queues `line` (cut at kLineBytes); false when there is no room.
  bool Push(absl::string_view line);

  // Consumer: hands up to `max` queued lines to write(absl::string_view), oldest
  // first, each one's bytes freed once write returns. Returns how many.
  template <typename Write>
  size_t Drain(size_t max, Write&& write) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    const uint64_t head = head_.load(std::memory_order_acquire);
    size_t n = 0;
    while (tail != head && n < max) {
      const uint64_t at = tail & mask_;
      uint32_t len;
      memcpy(&len, &ring_[at], sizeof(len));
      if (len == kWrap) {  // the rest of the ring is unused: the next line is at 0
        tail += capacity() - at;
        continue;
      }
      write(absl::string_view(&ring_[at + sizeof(len)], len));
      tail += RecordBytes(len);
      tail_.store(tail, std::memory_order_release);  // the producer may reuse them now
      ++n;
    }
    return n;
  }
  // Consumer: lines waiting to be drained.
  size_t Queued() const;

 private:
  static constexpr uint32_t kWrap = 0xFFFFFFFF;  // a length that says "continue at 0"
  static constexpr uint64_t RecordBytes(size_t len) { return sizeof(uint32_t) + ((len + 3) & ~3u); }

  std::unique_ptr<char[]> ring_;
  const uint64_t mask_;
  // Byte indices since construction (never wrap in practice); the ring offset
  // is index & mask_. Each side writes its own, on its own cache line.
  alignas(64) std::atomic<uint64_t> head_{0};  // where the next line goes: the producer's
  uint64_t tail_seen_ = 0;  // the producer's last read of tail_: most pushes skip the load
  alignas(64) std::atomic<uint64_t> tail_{0};  // the next line to write out: the consumer's
};

// AccessLine formats one line (into a buffer on the stack) and queues it at the
// end of the statement:
//
//   log::AccessLine(*queue, counters_.access_log_dropped) << "conn client=" << ...;
//
// If the queue has no room the line is dropped and `dropped` counted once.
// Strings, characters and integers only (the access log's fields), no
// allocation. Use on the queue's producer thread.
class AccessLine {
 public:
  AccessLine(AccessLogQueue& queue, stats::Counter& dropped) : queue_(queue), dropped_(dropped) {}
  ~AccessLine();
  AccessLine(const AccessLine&) = delete;
  AccessLine& operator=(const AccessLine&) = delete;

  AccessLine& operator<<(absl::string_view text);
  AccessLine& operator<<(char c) { return *this << absl::string_view(&c, 1); }
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool> &&
           !std::is_same_v<T, char>) AccessLine&
  operator<<(T value) {
    char digits[24];  // 20 digits of 2^64 and a sign
    const std::to_chars_result r = std::to_chars(digits, digits + sizeof(digits), value);
    return *this << absl::string_view(digits, static_cast<size_t>(r.ptr - digits));
  }

 private:
  AccessLogQueue& queue_;
  stats::Counter& dropped_;
  size_t len_ = 0;
  char text_[AccessLogQueue::kLineBytes];
};

// AccessLog is the logging thread. It drains every worker's AccessLogQueue and
// writes the lines (glog INFO by default, the line unchanged), and at most once
// per report_interval it logs how many lines the workers dropped meanwhile. A
// slow or blocked log sink (stderr on a full pipe, a stuck journald) then holds
// up this thread alone: the workers' queues fill and drop, and no worker waits.
// Lines of one worker keep their order; lines of different workers interleave.
//
// Owned by the Server, which hands queue(i) to worker i (its only producer)
// before Start(). Start() and Stop() from one thread (main).
class AccessLog {
 public:
  struct Options {
    // Per worker (AccessLogQueue): how long the log sink may stall, or this
    // thread wait for a CPU, before lines are dropped (1 MiB: ~6,000 lines).
    size_t queue_bytes = 1 << 20;
    // How long the thread sleeps when every queue is empty.
    absl::Duration poll = absl::Milliseconds(10);
    absl::Duration report_interval = absl::Seconds(1);
    // Stop() writes the lines still queued for at most this long.
    absl::Duration flush_timeout = absl::Seconds(5);
    // Where lines go (default: LOG(INFO)) and where drop reports go (default:
    // LOG(WARNING)). Called on the logging thread only.
    std::function<void(absl::string_view)> write = nullptr;
    std::function<void(absl::string_view)> report = nullptr;
  };

  AccessLog(size_t queues, Options options);
  ~AccessLog();  // Stop()
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  AccessLogQueue* queue(size_t i) { return queues_.at(i).get(); }

  // Starts the thread. `dropped[i]` is the counter worker i counts its dropped
  // lines in (AccessLine); the thread only reads it, for the reports.
  void Start(std::vector<const stats::Counter*> dropped);
  // After the producers have stopped: writes what is queued (bounded by
  // flush_timeout), reports drops not yet reported, joins. A sink write that
  // never returns (a pipe nobody will ever read) holds Stop() as it holds every
  // glog line. No-op if not started or already stopped.
  void Stop();

 private:
  void Run();
  // One pass over the queues, at most `per_queue` lines from each, so one busy
  // worker does not keep the others' lines waiting. Returns the lines written.
  size_t DrainAll(size_t per_queue);
  // Reports the drops counted since the last report, if any.
  void ReportDrops();

  Options options_;
  std::vector<std::unique_ptr<AccessLogQueue>> queues_;
  std::vector<const stats::Counter*> dropped_;
  uint64_t reported_ = 0;  // drops already reported; the logging thread's
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace l4lb::log
