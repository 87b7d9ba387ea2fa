#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <atomic>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace l4lb::backend {

// PassiveHealth carries what workers see of a service's backends between health
// probes to the health checker. Workers report only what proves a backend unwell
// (connect refused or timed out, a reset before the backend sent a byte: see
// worker_tcp.cc); the checker (health/checker.cc) turns a report into an early
// probe and lets it decide, so client traffic alone never takes a backend DOWN.
//
// A client address counts once per window (the checker opens one per probe
// interval): one host opening connection after connection to a backend that
// resets them is one failure, not a thousand. A window remembers at most
// kMaxClients addresses; more failing clients than that count no further, which
// bounds the memory an address flood can take.
//
// Thread safety: Report() from any worker, Take() and NewWindow() from the
// checker. Failures are rare next to connections, so a mutex per backend costs
// nothing measurable; the common case (no failure) never touches it, on
// either side: Take() of a backend with nothing reported reads one flag (the
// checker takes every backend's at each of its wakeups, about one per probe:
// with 1,000 backends probed each second the locks were a quarter of its CPU).
class PassiveHealth {
 public:
  static constexpr size_t kMaxClients = 64;

  struct Taken {
    uint32_t failures = 0;  // distinct clients newly counted in this window
    uint32_t reports = 0;   // every report since the last Take, counted or not
  };

  explicit PassiveHealth(size_t backends);

  // `client_key`: a stable hash of the client's address (not its port).
  void Report(size_t backend, uint64_t client_key);
  // What was reported since the last Take().
  Taken Take(size_t backend);
  // Starts a new window for `backend`: every client may count once more.
  void NewWindow(size_t backend);
  size_t size() const { return size_; }

 private:
  struct PerBackend {
    std::mutex mu;
    // Set with a report, cleared by Take (both under mu); read without it.
    std::atomic<bool> pending{false};
    std::vector<uint64_t> clients ABSL_GUARDED_BY(mu);  // counted in this window
    uint32_t failures ABSL_GUARDED_BY(mu) = 0;
    uint32_t reports ABSL_GUARDED_BY(mu) = 0;
  };

  std::unique_ptr<PerBackend[]> backends_;
  size_t size_;
};

}  // namespace l4lb::backend
