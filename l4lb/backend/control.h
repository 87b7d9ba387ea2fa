#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "l4lb/backend/slow_start.h"
#include "l4lb/backend/snapshot.h"

namespace l4lb::backend {

// ServiceControl's slow start (outside the class: a default argument there).
struct RampOptions {
  absl::Duration duration = absl::ZeroDuration();  // zero: no slow start
  std::string service;                             // for the logs
  // A monotonic clock by default; tests inject their own.
  std::function<absl::Time()> clock;
};

// ServiceControl is the one writer of a service's snapshots: the health checker
// (health changes, slow-start steps) and the admin API (drain, maintenance,
// weights) all publish through it, so none can overwrite another's change with
// a snapshot derived from an older one. A weight change or a slow-start step
// rebuilds the Maglev tables here, on the caller's thread (the admin or the
// health thread: milliseconds for 65537 slots), never on a worker; workers pick
// the result up like a health change.
//
// Slow start (Ramp::duration above 0, slow_start.h): a backend that begins to
// take clients, UP after DOWN or enabled from MAINT while UP, ramps from a tenth
// of its weight to all of it; Tick() takes the steps. Going DOWN or into MAINT
// ends its ramp (the next return starts a new one). At l4lb's start nobody
// ramps; a reload carries the ramps by backend name and starts one for each
// backend it adds (StartRamps()).
//
// Thread safety: every method from any thread; one mutex per service, taken
// only on changes and ticks (rare), never on the data path.
class ServiceControl {
 public:
  using Ramp = RampOptions;

  ServiceControl(SnapshotPublisher* publisher, BackendSnapshot::Options options, Ramp ramp = {});
  ServiceControl(const ServiceControl&) = delete;
  ServiceControl& operator=(const ServiceControl&) = delete;

  std::shared_ptr<const BackendSnapshot> Current() const { return publisher_->Current(); }
  SnapshotPublisher* publisher() const { return publisher_; }

  // The health checker's view (one entry per backend); returns what was published.
  std::shared_ptr<const BackendSnapshot> SetHealth(const std::vector<bool>& healthy);
  // The backend named `name` as configured (BackendSpec::name), or NotFound.
  absl::StatusOr<size_t> Find(absl::string_view name) const;
  std::shared_ptr<const BackendSnapshot> SetAdmin(size_t backend, AdminState state);
  // 1..kMaxWeight; the table is rebuilt over every backend with the new weight,
  // so only keys whose slots change hands move (Maglev's minimal disruption).
  // A ramping backend goes on ramping, toward the new weight.
  absl::StatusOr<std::shared_ptr<const BackendSnapshot>> SetWeight(size_t backend, uint32_t weight);

  bool slow_start() const { return slow_start_.enabled(); }
  // Publishes the next slow-start step of every ramping backend whose step is
  // due; returns how long until the next one is (infinite: nobody ramps).
  absl::Duration Tick();
  // When each backend's ramp began (nullopt: not ramping), on this control's clock.
  std::vector<std::optional<absl::Time>> RampsSince() const;
  // At set-up (a reload): ramps that began at these times (one entry per
  // backend; nullopt: none), published at once. No-op without slow start.
  void StartRamps(const std::vector<std::optional<absl::Time>>& since);
  absl::Time Now() const { return clock_(); }

 private:
  // Ramp bookkeeping after a health or admin change from `before` to
  // (healthy, admin): starts and ends ramps. Under mu_.
  void UpdateRamps(const BackendSnapshot& before, const std::vector<bool>& healthy,
                   const std::vector<AdminState>& admin, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Each backend's step now; ramps that are over are dropped.
  std::vector<int> Steps(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes `current`'s backends with `healthy`, `admin` and the ramp weights
  // at `now`; rebuilds the tables only when the weights differ from `current`'s.
  std::shared_ptr<const BackendSnapshot> PublishLocked(const BackendSnapshot& current,
                                                       std::vector<BackendSpec> backends,
                                                       const std::vector<bool>& healthy,
                                                       const std::vector<AdminState>& admin,
                                                       absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  SnapshotPublisher* const publisher_;
  const BackendSnapshot::Options options_;
  const SlowStart slow_start_;
  const std::string service_;
  const std::function<absl::Time()> clock_;
  mutable std::mutex mu_;  // serializes read-modify-publish
  std::vector<std::optional<absl::Time>> ramp_since_ ABSL_GUARDED_BY(mu_);  // per backend
};

}  // namespace l4lb::backend
