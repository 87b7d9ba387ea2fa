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

// What the operator said about a backend (admin API), beside what its health
// checks say. Both must allow a client: a backend takes new clients only when
// it is healthy AND ready.
enum class AdminState : uint8_t {
  kReady,  // takes clients
  kDrain,  // no new clients; clients pinned to it (affinity: an FTP session's
           // data connections) still reach it; live connections go on (HAProxy's drain)
  kMaint,  // no client at all, pinned or not; its health checks pause; live
           // connections go on until they end
};
// "ready", "drain", "maint".
const char* AdminStateName(AdminState state);

// BackendSnapshot is one immutable view of a service's backends: who exists, who
// is healthy, and the Maglev tables.
//
// The tables are built over EVERY configured backend and never change with
// health: a client whose backend is down is re-picked (re-mixed key, then a
// walk) among the healthy ones. So when one backend goes down only its own
// clients move, and when it comes back exactly those return; everyone else keeps
// their backend (a table rebuilt over the healthy set would also move ~0.1-1.5 %
// of the others, see bench/maglev_benchmark).
//
// The tables are seeded by host (host_key.h), not by the address as written:
// services that list the same hosts with other ports, or none, in any order,
// pick the same host for the same key, on every instance.
//
// Backups (BackendSpec::backup) have a table of their own, used only while no
// primary is healthy and ready (all DOWN, drained or in maintenance): then the
// backups share the clients by weight, with the same rules among themselves.
// When a primary comes back, new clients go to the primaries again; live
// connections to a backup go on, and clients pinned to one (affinity) still
// reach it, as they reach a drained backend.
//
// Table weights are the configured ones but while a backend slow-starts
// (control.h, slow_start.h): the caller then gives the ramped weights.
//
// Built off the data path (startup, the health checker) and published through a
// SnapshotPublisher; workers hold a shared_ptr and read it without locks.
class BackendSnapshot {
 public:
  struct Options {
    uint32_t maglev_table_size = 65537;
  };

  // `healthy` is empty (all healthy) or has one entry per backend. A snapshot
  // with no healthy backend is valid: Pick() then returns kNone.
  // `table_weights` is empty (each backend's configured weight) or has one
  // entry per backend, 1..kMaxWeight.
  static absl::StatusOr<std::shared_ptr<const BackendSnapshot>> Build(
      std::vector<BackendSpec> backends, std::vector<bool> healthy, const Options& options,
      std::vector<uint32_t> table_weights = {});

  // The same backends and tables with new health (one entry per backend): no
  // table build, so the health checker can publish changes at once.
  std::shared_ptr<const BackendSnapshot> WithHealth(const std::vector<bool>& healthy) const;
  // The same backends, tables and health with new admin states (one per backend).
  std::shared_ptr<const BackendSnapshot> WithAdmin(const std::vector<AdminState>& admin) const;

  static constexpr int kNone = -1;

  // The backend for a connection with `key`, as an index into backends(): never
  // one listed in `tried` (earlier attempts of this connection), a down one, nor
  // one drained or in maintenance; a backup only while no primary takes clients.
  // The first choice is the Maglev pick; retries and clients of a down backend
  // use re-mixed keys, so they spread over the others by weight instead of
  // piling onto one neighbour. kNone when no untried healthy backend is left.
  int Pick(uint64_t key, absl::Span<const uint32_t> tried) const;

  const std::vector<BackendSpec>& backends() const { return backends_; }
  // What the health checks say (the admin state aside): --kill_on_down and UDP
  // sessions end on this.
  bool healthy(size_t backend) const { return up_[backend]; }
  AdminState admin(size_t backend) const { return admin_[backend]; }
  // Healthy and not in maintenance: a client pinned to it (affinity) may go there.
  bool takes_pinned(size_t backend) const {
    return up_[backend] && admin_[backend] != AdminState::kMaint;
  }
  // Backends Pick() may return: healthy and ready (the backups' count while they serve).
  size_t healthy_count() const { return healthy_.size(); }
  // Their indices, ascending: what a balancing policy other than Maglev chooses
  // among (balancer/policy.h).
  const std::vector<uint32_t>& pickable() const { return healthy_; }
  // No primary takes new clients: the backups do (if any is healthy and ready).
  bool serving_backups() const { return serving_backups_; }
  const std::vector<bool>& health() const { return up_; }
  const std::vector<AdminState>& admin_states() const { return admin_; }
  // The weight each backend's table was built with (ramped while slow-starting).
  const std::vector<uint32_t>& table_weights() const { return table_weights_; }

 private:
  // One Maglev table over some of the backends (the primaries, or the backups).
  struct Table {
    std::shared_ptr<const balancer::MaglevTable> maglev;  // null: no such backend
    std::vector<uint32_t> members;                        // table index -> backend index
  };

  BackendSnapshot() = default;
  std::shared_ptr<const BackendSnapshot> With(std::vector<bool> up,
                                              std::vector<AdminState> admin) const;

  std::vector<BackendSpec> backends_;
  std::vector<uint32_t> table_weights_;  // per backend
  std::vector<bool> up_;                 // per backend
  std::vector<AdminState> admin_;        // per backend
  // Indices of the backends Pick() may return, ascending: the up and ready
  // primaries, or, when there is none, the up and ready backups.
  std::vector<uint32_t> healthy_;
  // The same, in host-key order (host_key.h): the walk of Pick()'s last resort.
  std::vector<uint32_t> walk_;
  std::vector<uint32_t> host_rank_;  // per backend: its place in host-key order
  bool serving_backups_ = false;
  Table primaries_;  // over all primaries, shared between snapshots
  Table backups_;    // over all backups
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
