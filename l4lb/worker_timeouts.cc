// client_timeout and backend_timeout on a worker: HAProxy's `timeout client` and
// `timeout server` for a relay. A side's clock runs while l4lb waits on that
// side, to send (the flow from it may read) or to take bytes (the flow to it is
// blocked on it), and restarts with every byte moved from or to it. It stops
// while the side's own bytes wait for room on the other side and nothing waits
// for it: a backend whose download is parked behind a client with a zero
// window is not the one holding the connection up, the client is. A connection
// where nothing is moving at all is waited on both ways: the shorter of the two
// ends it, each named (close=client_timeout, close=backend_timeout).
//
// Each side has its own IdleList per service (Connection::client_idle,
// backend_idle), so a touch is O(1) and the sweep stops at the first side
// still in time. Services without these timeouts touch nothing.

#include "l4lb/worker.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;

namespace {

// One side: out of its list while not waited on; touched when it moved a
// byte, or when l4lb starts waiting on it again (a fresh full period).
void UpdateSide(relay::IdleList& list, int64_t timeout_ns, Connection& c, bool moved, bool waited,
                int64_t now_ns) {
  if (timeout_ns == 0) return;
  if (!waited) return list.Remove(c);
  if (moved || !list.Contains(c)) list.Touch(c, now_ns);
}

}  // namespace

void Worker::UpdateSideTimers(Connection& c, bool client_moved, bool backend_moved) {
  ServiceState& service = services_[c.service];
  if (service.client_timeout_ns == 0 && service.backend_timeout_ns == 0) return;
  // up_blocked: the client's bytes wait for the backend to take them.
  const bool client_waited = !(c.up_blocked && !c.down_blocked);
  const bool backend_waited = !(c.down_blocked && !c.up_blocked);
  UpdateSide(service.client_idle, service.client_timeout_ns, c, client_moved, client_waited,
             now_ns_);
  UpdateSide(service.backend_idle, service.backend_timeout_ns, c, backend_moved, backend_waited,
             now_ns_);
}

void Worker::ForgetSideTimers(Connection& c) {
  ServiceState& service = services_[c.service];
  service.client_idle.Remove(c);
  service.backend_idle.Remove(c);
}

void Worker::ExpireSideTimers() {
  for (ServiceState& service : services_) {
    for (auto [list, timeout_ns, reason] :
         {std::tuple{&service.client_idle, service.client_timeout_ns, CloseReason::kClientTimeout},
          std::tuple{&service.backend_idle, service.backend_timeout_ns,
                     CloseReason::kBackendTimeout}}) {
      if (timeout_ns == 0) continue;
      while (Connection* c = list->Oldest()) {
        if (now_ns_ - list->LastNs(*c) < timeout_ns) break;
        Close(*c, reason);  // takes c out of both lists
      }
    }
  }
}

}  // namespace l4lb
