#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/backend/snapshot.h"

namespace l4lb::backend {

// ServiceControl is the one writer of a service's snapshots: the health checker
// (health changes) and the admin API (drain, maintenance, weights) both publish
// through it, so neither can overwrite the other's change with a snapshot
// derived from an older one. A weight change rebuilds the Maglev table here, on
// the caller's thread (the admin thread: milliseconds for 65537 slots), never
// on a worker; workers pick the result up like a health change.
//
// Thread safety: every method from any thread; one mutex per service, taken
// only on changes (rare), never on the data path.
class ServiceControl {
 public:
  ServiceControl(SnapshotPublisher* publisher, BackendSnapshot::Options options)
      : publisher_(publisher), options_(options) {}
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
  absl::StatusOr<std::shared_ptr<const BackendSnapshot>> SetWeight(size_t backend, uint32_t weight);

 private:
  SnapshotPublisher* const publisher_;
  const BackendSnapshot::Options options_;
  std::mutex mu_;  // serializes read-modify-publish
};

}  // namespace l4lb::backend
