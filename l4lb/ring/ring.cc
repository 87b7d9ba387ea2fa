#include "l4lb/ring/ring.h"

#include <string.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace l4lb::ring {

absl::StatusOr<Ring> Ring::Create(const Options& options) {
  Ring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  params.cq_entries = options.cq_entries;
  int ret = io_uring_queue_init_params(options.sq_entries, &ring.ring_, &params);
  if (ret == -EINVAL) {
    // Kernels before 6.1 lack these flags; the ring works without them, only a
    // little more of the completion work runs in interrupt-ish context.
    LOG(WARNING) << "io_uring: SINGLE_ISSUER|DEFER_TASKRUN not supported, running without them";
    params = {};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = options.cq_entries;
    ret = io_uring_queue_init_params(options.sq_entries, &ring.ring_, &params);
  } else {
    ring.deferred_taskrun_ = ret == 0;
  }
  if (ret < 0) {
    return absl::Status(absl::ErrnoToStatusCode(-ret),
                        absl::StrCat("io_uring_queue_init: ", strerror(-ret),
                                     ret == -ENOMEM ? " (raise the locked-memory limit?)" : ""));
  }
  ring.initialized_ = true;
  return ring;
}

Ring::Ring(Ring&& other) noexcept
    : ring_(other.ring_),
      initialized_(std::exchange(other.initialized_, false)),
      deferred_taskrun_(other.deferred_taskrun_) {}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* Ring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // A full SQ: push what is queued to the kernel. This never waits for completions.
    const int ret = io_uring_submit(&ring_);
    LOG_IF_EVERY_N(WARNING, ret < 0, 1000) << "io_uring_submit: " << strerror(-ret);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Ring::Reserve(unsigned n) {
  if (io_uring_sq_space_left(&ring_) < n) io_uring_submit(&ring_);
}

bool Ring::PollFor(absl::Duration budget) {
  io_uring_submit(&ring_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(budget);
  do {
    if (io_uring_cq_ready(&ring_) > 0) return true;
    // With DEFER_TASKRUN completions wait as task work until the ring is
    // entered; GETEVENTS runs it without sleeping.
    io_uring_get_events(&ring_);
  } while (std::chrono::steady_clock::now() < deadline);
  return io_uring_cq_ready(&ring_) > 0;
}

void Ring::SubmitAndWait(absl::Duration timeout) {
  const timespec t = absl::ToTimespec(std::max(timeout, absl::ZeroDuration()));
  __kernel_timespec ts{.tv_sec = t.tv_sec, .tv_nsec = t.tv_nsec};
  io_uring_cqe* cqe = nullptr;
  const int ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  // -ETIME (timeout) and -EINTR (a signal) are normal ways for the wait to end.
  LOG_IF_EVERY_N(WARNING, ret < 0 && ret != -ETIME && ret != -EINTR, 1000)
      << "io_uring_submit_and_wait_timeout: " << strerror(-ret);
}

}  // namespace l4lb::ring
