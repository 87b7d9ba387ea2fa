#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace l4lb::backend {

// PassiveHealth carries what workers see of a service's backends between health
// probes (refused or timed-out connects, resets) to the health checker, which
// counts them toward `fall`: a dead backend is ejected even between probes.
//
// Thread safety: Report() from any worker, Take() from the checker. Failures are
// rare events, so one shared atomic per backend costs nothing on the hot path.
class PassiveHealth {
 public:
  explicit PassiveHealth(size_t backends)
      : failures_(std::make_unique<std::atomic<uint32_t>[]>(backends)), size_(backends) {}

  void Report(size_t backend, uint64_t /*client_key*/) {
    if (backend < size_) failures_[backend].fetch_add(1, std::memory_order_relaxed);
  }
  // Failures reported since the last Take().
  uint32_t Take(size_t backend) {
    return backend < size_ ? failures_[backend].exchange(0, std::memory_order_relaxed) : 0;
  }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<std::atomic<uint32_t>[]> failures_;
  size_t size_;
};

}  // namespace l4lb::backend
