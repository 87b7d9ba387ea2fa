#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include <liburing.h>

namespace l4lb::ring {

// Ring is one io_uring instance, owned by one worker thread and created ON that
// thread: SINGLE_ISSUER binds the ring to its creator, and DEFER_TASKRUN runs
// completion work only when that thread waits, which keeps it on our CPU.
//
// Thread safety: none; every method is called by the owning worker only.
class Ring {
 public:
  struct Options {
    uint32_t sq_entries = 1024;
    uint32_t cq_entries = 8192;  // bursts of accepts and readiness CQEs exceed the SQ size
  };

  static absl::StatusOr<Ring> Create(const Options& options);

  Ring(Ring&& other) noexcept;
  Ring& operator=(Ring&&) = delete;
  Ring(const Ring&) = delete;
  ~Ring();

  // Never null: when the SQ is full, submits what is queued and tries again.
  io_uring_sqe* GetSqe();
  // Makes room for `n` SQEs that must reach the kernel in one submission (a linked
  // pair: a link cut by a submit in between would orphan the link timeout).
  void Reserve(unsigned n);
  // Submits queued SQEs and waits for at least one CQE or `timeout`.
  void SubmitAndWait(absl::Duration timeout);
  // Submits queued SQEs, then looks for completions without sleeping for up to
  // `budget`. True once a CQE is ready.
  bool PollFor(absl::Duration budget);
  // Calls fn(const io_uring_cqe&) for each ready CQE and marks them seen.
  template <typename Fn>
  unsigned DrainCompletions(Fn&& fn);

  bool deferred_taskrun() const { return deferred_taskrun_; }
  // For registrations (provided buffer rings); the address is stable.
  io_uring* raw() { return &ring_; }

 private:
  Ring() = default;

  io_uring ring_{};
  bool initialized_ = false;
  bool deferred_taskrun_ = false;
};

template <typename Fn>
unsigned Ring::DrainCompletions(Fn&& fn) {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    fn(*cqe);
    ++count;
  }
  io_uring_cq_advance(&ring_, count);
  return count;
}

}  // namespace l4lb::ring
