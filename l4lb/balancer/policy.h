#pragma once

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "l4lb/backend/snapshot.h"

namespace l4lb::balancer {

// How a service picks the backend of a new connection (`balance`):
//   kMaglev         consistent hash of the client (the default): every listener
//                   and every l4lb instance picks the same backend for a client.
//   kMaglevBounded  consistent hashing with bounded loads (Mirrokni, Thorup,
//                   Zadimoghaddam 2018; HAProxy's hash-balance-factor): the
//                   client's Maglev preference order, skipping a backend that
//                   already holds more than `balance_factor` x its weighted
//                   share of the active connections. Most clients keep their
//                   backend; a hot client network cannot pile onto one.
//   kLeastConn      fewest active connections per unit of weight (SSH/SFTP
//                   farms whose sessions last hours).
//   kRoundRobin     smooth weighted round robin (nginx's), per worker.
enum class Balance : uint8_t { kMaglev, kMaglevBounded, kLeastConn, kRoundRobin };

// "maglev", "maglev_bounded", "least_conn", "round_robin"; errors quote the text.
absl::StatusOr<Balance> ParseBalance(absl::string_view text);
const char* BalanceName(Balance balance);

// A backend's load as the picking worker sees it: active connections of every
// worker (their own counters, summed: no shared atomic on the accept path) plus
// this worker's connects in flight.
using LoadFn = absl::FunctionRef<uint64_t(uint32_t backend)>;

// Picker is one worker's policy state for one service. Every pick chooses among
// the snapshot's pickable() backends not in `tried` (healthy and ready; the
// backups while no primary is), so health, drain, maintenance and backups work
// the same under every policy; kNone when none is left.
//
// Thread safety: one worker's, like the rest of its state.
class Picker {
 public:
  // `seed`: the worker's id, so that workers start their rotations (round
  // robin, least_conn's ties) at different backends.
  Picker(Balance balance, double balance_factor, uint32_t seed);

  int Pick(const backend::BackendSnapshot& snapshot, uint64_t key,
           absl::Span<const uint32_t> tried, LoadFn load);
  Balance balance() const { return balance_; }

 private:
  int Bounded(const backend::BackendSnapshot& snapshot, uint64_t key,
              absl::Span<const uint32_t> tried, LoadFn load);
  int LeastConn(const backend::BackendSnapshot& snapshot, absl::Span<const uint32_t> tried,
                LoadFn load);
  int RoundRobin(const backend::BackendSnapshot& snapshot, absl::Span<const uint32_t> tried);

  const Balance balance_;
  const double factor_;
  uint64_t rotation_;                 // least_conn: where ties start, +1 per pick
  std::vector<int64_t> current_;      // round robin: each backend's running credit
  std::vector<uint32_t> candidates_;  // scratch, kept to avoid an allocation per pick
};

}  // namespace l4lb::balancer
