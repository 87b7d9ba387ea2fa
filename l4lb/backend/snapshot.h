#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/balancer/maglev.h"
#include "l4lb/net/address.h"

namespace l4lb::backend {

// Which part of the client address picks the backend.
enum class HashKey : uint8_t {
  kSrcIp,      // same client host -> same backend on every listener and instance
  kSrcIpPort,  // spreads one host's connections too
};
// "src_ip" or "src_ip_port".
absl::StatusOr<HashKey> ParseHashKey(absl::string_view text);

// The flow key for a client, from balancer/flow_hash.h: the same on every l4lb
// instance. IPv4 and v4-mapped IPv6 clients give the same key.
uint64_t FlowKey(const net::SocketAddress& client, HashKey hash_key);

// BackendSnapshot is one immutable view of a service's backends: who exists, who
// is healthy, and the Maglev table over the healthy ones.
//
// Built off the data path (startup, later the health thread) and published through
// a SnapshotPublisher; workers hold a shared_ptr and read it without locks.
class BackendSnapshot {
 public:
  struct Options {
    uint32_t maglev_table_size = 65537;
  };

  // `healthy` is empty (all healthy) or has one entry per backend. A snapshot
  // with no healthy backend is valid: Pick() then returns kNone.
  static absl::StatusOr<std::shared_ptr<const BackendSnapshot>> Build(
      std::vector<BackendSpec> backends, std::vector<bool> healthy, const Options& options);

  static constexpr int kNone = -1;

  // The backend for the `attempt`-th try (0 first) of a connection with `key`,
  // as an index into backends(); never one listed in `tried`. kNone when no
  // untried healthy backend is left. Attempt 0 is the Maglev pick; retries use
  // re-mixed keys, so a dead backend's clients spread over the others instead of
  // piling onto one neighbour.
  int Pick(uint64_t key, uint32_t attempt, absl::Span<const uint32_t> tried) const;

  const std::vector<BackendSpec>& backends() const { return backends_; }
  size_t healthy_count() const { return healthy_.size(); }

 private:
  BackendSnapshot() = default;

  std::vector<BackendSpec> backends_;
  std::vector<uint32_t> healthy_;  // Maglev index -> index into backends_
  std::optional<balancer::MaglevTable> table_;
};

// SnapshotPublisher hands the newest snapshot of one service to the workers.
//
// Thread safety: Publish() from any thread (the health checker); workers poll
// generation() once per loop pass (one relaxed-cost atomic load) and call
// Current() only when it changed, so the hot path takes no lock.
class SnapshotPublisher {
 public:
  explicit SnapshotPublisher(std::shared_ptr<const BackendSnapshot> initial)
      : current_(std::move(initial)) {}

  void Publish(std::shared_ptr<const BackendSnapshot> snapshot);
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const BackendSnapshot> Current() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const BackendSnapshot> current_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{1};
};

}  // namespace l4lb::backend
