#include "l4lb/log/access_log.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace l4lb::log {
namespace {

// Lines taken from one queue per pass while the thread runs; at Stop() the
// flush takes fewer per pass so that it looks at its deadline often.
constexpr size_t kLinesPerPass = 256;
constexpr size_t kFlushLinesPerPass = 16;

}  // namespace

AccessLogQueue::AccessLogQueue(size_t bytes)
    : ring_(new char[std::bit_ceil(std::max(bytes, kMinBytes))]),
      mask_(std::bit_ceil(std::max(bytes, kMinBytes)) - 1) {}

bool AccessLogQueue::Push(absl::string_view line) {
  const size_t len = std::min(line.size(), kLineBytes);
  const uint64_t need = RecordBytes(len);
  uint64_t head = head_.load(std::memory_order_relaxed);
  // A line is never split at the ring's end: it goes to offset 0 instead, and
  // a kWrap marker tells the consumer (records are 4-aligned, so it fits).
  const uint64_t to_end = capacity() - (head & mask_);
  const uint64_t skip = to_end < need ? to_end : 0;
  if (head + skip + need - tail_seen_ > capacity()) {
    // Full as far as we last knew: look at what the consumer has freed since.
    tail_seen_ = tail_.load(std::memory_order_acquire);
    if (head + skip + need - tail_seen_ > capacity()) return false;
  }
  if (skip > 0) {
    memcpy(&ring_[head & mask_], &kWrap, sizeof(kWrap));
    head += skip;
  }
  const uint32_t len32 = static_cast<uint32_t>(len);
  memcpy(&ring_[head & mask_], &len32, sizeof(len32));
  memcpy(&ring_[(head & mask_) + sizeof(len32)], line.data(), len);
  head_.store(head + need, std::memory_order_release);  // the bytes are visible with it
  return true;
}

size_t AccessLogQueue::Queued() const {
  const uint64_t head = head_.load(std::memory_order_acquire);
  size_t n = 0;
  for (uint64_t tail = tail_.load(std::memory_order_relaxed); tail != head;) {
    const uint64_t at = tail & mask_;
    uint32_t len;
    memcpy(&len, &ring_[at], sizeof(len));
    if (len == kWrap) {
      tail += capacity() - at;
      continue;
    }
    tail += RecordBytes(len);
    ++n;
  }
  return n;
}

AccessLine::~AccessLine() {
  if (!queue_.Push(absl::string_view(text_, len_))) dropped_.Add();
}

AccessLine& AccessLine::operator<<(absl::string_view text) {
  const size_t n = std::min(text.size(), sizeof(text_) - len_);
  memcpy(text_ + len_, text.data(), n);
  len_ += n;
  return *this;
}

AccessLog::AccessLog(size_t queues, Options options) : options_(std::move(options)) {
  if (!options_.write) options_.write = [](absl::string_view line) { LOG(INFO) << line; };
  if (!options_.report) options_.report = [](absl::string_view line) { LOG(WARNING) << line; };
  for (size_t i = 0; i < queues; ++i) {
    queues_.push_back(std::make_unique<AccessLogQueue>(options_.queue_bytes));
  }
}

AccessLog::~AccessLog() { Stop(); }

void AccessLog::Start(std::vector<const stats::Counter*> dropped) {
  CHECK(!thread_.joinable()) << "AccessLog started twice";
  CHECK_EQ(dropped.size(), queues_.size()) << "one drop counter per queue";
  dropped_ = std::move(dropped);
  thread_ = std::thread([this] { Run(); });
}

void AccessLog::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void AccessLog::Run() {
  absl::Time next_report = absl::Now() + options_.report_interval;
  for (;;) {
    const size_t written = DrainAll(kLinesPerPass);
    const absl::Time now = absl::Now();
    if (now >= next_report) {
      ReportDrops();
      next_report = now + options_.report_interval;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) break;
    // Workers do not wake this thread (that would be a syscall per line): it
    // polls, and drains again at once while there was work.
    if (written == 0) {
      wake_.wait_for(lock, absl::ToChronoMilliseconds(options_.poll), [this] { return stop_; });
    }
  }
  // The workers have stopped: what they queued is all there is, so the flush
  // ends when the queues are empty, or at flush_timeout if the sink is slow.
  const absl::Time deadline = absl::Now() + options_.flush_timeout;
  while (absl::Now() < deadline && DrainAll(kFlushLinesPerPass) > 0) {
  }
  ReportDrops();
  size_t left = 0;
  for (const std::unique_ptr<AccessLogQueue>& queue : queues_) left += queue->Queued();
  if (left > 0) {
    options_.report(absl::StrCat("access log: ", left,
                                 " queued line(s) not written: flushing took "
                                 "longer than ",
                                 absl::FormatDuration(options_.flush_timeout)));
  }
}

size_t AccessLog::DrainAll(size_t per_queue) {
  size_t written = 0;
  for (const std::unique_ptr<AccessLogQueue>& queue : queues_) {
    written += queue->Drain(per_queue, options_.write);
  }
  return written;
}

void AccessLog::ReportDrops() {
  uint64_t total = 0;
  for (const stats::Counter* counter : dropped_) total += counter->Get();
  if (total == reported_) return;
  options_.report(absl::StrCat("access log: ", total - reported_,
                               " line(s) dropped: the queue was full, the log is written slower "
                               "than connections end (",
                               total, " since start)"));
  reported_ = total;
}

}  // namespace l4lb::log
