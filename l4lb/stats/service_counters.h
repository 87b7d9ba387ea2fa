#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

#include "l4lb/stats/counter.h"
#include "l4lb/stats/histogram.h"

namespace l4lb::stats {

// One backend of one service, on one worker. The labels of the admin endpoint's
// per-backend metrics (admin/metrics.h) are these, summed over workers.
struct BackendCounters {
  Counter connections;       // relayed: the connect succeeded
  Counter active;            // relayed and not yet freed
  Counter bytes_up;          // client -> backend (TCP and UDP payload)
  Counter bytes_down;        // backend -> client
  Counter connect_errors;    // refused, unreachable, reset during connect
  Counter connect_timeouts;  // the link timeout ended the attempt
  Counter udp_sessions;      // UDP sessions created on this backend
  Counter udp_active;        // UDP sessions live
  Counter udp_datagrams_up;
  Counter udp_datagrams_down;
  Histogram connect_time{ConnectBounds()};
};

// One service on one worker: what happens before a backend is picked, and the
// service's backends (indexed like its snapshot's backends()).
struct ServiceCounters {
  explicit ServiceCounters(size_t backends) : backends(backends) {}

  Counter accepted;  // TCP connections accepted
  Counter active;    // accepted and not yet freed (refused ones for an instant)
  // Refused before any backend (admission): TCP connections and new UDP
  // sessions alike. WorkerCounters keeps the worker's totals of the same.
  Counter refused_denied;
  Counter refused_limited;
  Counter refused_banned;
  Counter bad_proxy;
  // SNI routing (sni_routes): a ClientHello malformed, too large or not in by
  // sni_timeout; a server name no route takes and no default route.
  Counter bad_tls;
  Counter no_route;
  Counter no_backend;  // closed at once: no healthy backend
  Histogram duration{DurationBounds()};  // of relayed connections, at free
  std::vector<BackendCounters> backends;  // sized once: never moved while workers write
};

struct BackendTotals {
  uint64_t connections = 0, active = 0, bytes_up = 0, bytes_down = 0, connect_errors = 0,
           connect_timeouts = 0, udp_sessions = 0, udp_active = 0, udp_datagrams_up = 0,
           udp_datagrams_down = 0;
  HistogramTotals connect_time;

  void Add(const BackendTotals& other);
};

struct ServiceTotals {
  uint64_t accepted = 0, active = 0, refused_denied = 0, refused_limited = 0, refused_banned = 0,
           bad_proxy = 0, bad_tls = 0, no_route = 0, no_backend = 0;
  HistogramTotals duration;
  std::vector<BackendTotals> backends;

  // The service's own counts and histogram, not its backends' (a reload may
  // list other backends: those are added by name, l4lb/reload/).
  void AddServiceOnly(const ServiceTotals& other);
};

// Every worker's counters of one service, summed (all have the same backends).
// Thread safety: any thread, while the workers write.
ServiceTotals SumService(absl::Span<const ServiceCounters* const> workers);

}  // namespace l4lb::stats
