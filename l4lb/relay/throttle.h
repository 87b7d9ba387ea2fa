#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "l4lb/admission/limits.h"
#include "l4lb/relay/connection.h"

namespace l4lb::relay {

// Throttle holds one worker's connections whose flows spent their
// client_bandwidth budget (Flow::LimitReads). A limited flow reads only what
// its client's bucket granted (admission::ClientLimits::Grant, shared by the
// client's connections on every worker): the bytes still go socket -> pipe ->
// socket, each splice is just shorter. A flow that finds its budget spent and
// the bucket empty waits here, reading nothing (its socket's receive window
// fills and the sender's TCP waits: backpressure, not buffering), and is pumped
// again kRetryNs later by the worker loop, when the bucket has refilled.
//
// Thread safety: none; owned by a worker.
class Throttle {
 public:
  // How long a parked connection waits before it asks again: fine enough that
  // a 5 ms refill is a small share of the 100 ms bucket (ClientLimits::burst_bytes).
  static constexpr int64_t kRetryNs = 5'000'000;

  // Before pumping a limited flow of c (`up`: client -> backend): a spent
  // budget asks the client's bucket for a grant. Returns the budget now.
  static uint64_t Refill(admission::ClientLimits& limits, Connection& c, bool up, int64_t now_ns);

  // A flow of c said kThrottled: c waits until due_ns() (once, whichever flows).
  void Park(Connection& c, int64_t now_ns);
  bool empty() const { return parked_.empty(); }
  // When the loop must pump the parked connections again.
  int64_t due_ns() const { return due_ns_; }
  // The parked connections (slot, generation), now off the list with their
  // `throttled` cleared; to be pumped again (those since freed do not resolve).
  std::vector<std::pair<uint32_t, uint32_t>> TakeAll(ConnectionTable& connections);

 private:
  std::vector<std::pair<uint32_t, uint32_t>> parked_;
  int64_t due_ns_ = 0;
};

}  // namespace l4lb::relay
