#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"

#include "l4lb/stats/counter.h"
#include "l4lb/stats/service_counters.h"

namespace l4lb::stats {

// One worker's counters. Readers sum them over workers (Sum below).
struct WorkerCounters {
  Counter accepted;         // client connections accepted
  Counter active;           // accepted and not yet freed
  Counter relayed;          // reached a backend
  Counter no_backend;       // closed at once: no healthy backend
  Counter connect_failed;   // closed after every allowed backend failed
  Counter connect_retries;  // connects tried again on another backend
  Counter idle_timeouts;
  Counter fin_timeouts;  // half-closed and silent for client_fin_timeout
  Counter client_timeouts;   // client_timeout: the client side held it up
  Counter backend_timeouts;  // backend_timeout: the backend side held it up
  Counter resets;  // closed because one side reset or failed
  Counter cut_at_drain;
  Counter killed_on_down;  // closed because their backend went DOWN (--kill_on_down)
  // A live upgrade (--takeover): connections this process handed to the next
  // one, and those it took over from the previous one.
  Counter handed_over;
  Counter adopted;
  Counter accept_errors;
  // Clients refused before any backend (admission): deny/allow lists, bounds or
  // rates, bans. TCP connections and new UDP sessions alike.
  Counter refused_denied;
  Counter refused_limited;
  Counter refused_banned;
  // Peers in accept_proxy_from whose PROXY header was bad or late, and peers
  // outside it that sent one.
  Counter bad_proxy;
  Counter local_errors;   // l4lb's own limits (local ports, fds, buffers) on a backend connect
  Counter affinity_hits;  // connections sent to the backend their client is pinned to
  Counter bytes_up;       // client -> backend
  Counter bytes_down;     // backend -> client
  // UDP.
  Counter udp_sessions;        // sessions created
  Counter udp_idle_expired;    // ended by udp_idle_timeout
  Counter udp_evicted;         // ended to make room (udp_max_sessions, out of fds or ports)
  Counter udp_datagrams_up;    // client -> backend, forwarded
  Counter udp_datagrams_down;  // backend -> client, forwarded
  Counter udp_dropped;         // datagrams not forwarded (no backend, full buffers, ...)
  // New sessions whose socket found no fd or local port; evictions made room.
  Counter udp_no_socket;
  // ECONNREFUSEDs whose ICMP answers no datagram sent there: not held against the backend.
  Counter udp_refusals_ignored;
  // Access-log lines not written: the worker's queue to the logging thread was
  // full (log/access_log.h).
  Counter access_log_dropped;

  // Per service (in Server::Options order) and, inside, per backend: what the
  // admin endpoint labels by service and backend (admin/metrics.h). Sized once
  // by the worker's constructor, before its thread starts; never resized.
  std::vector<std::unique_ptr<ServiceCounters>> services;
  ServiceCounters& service(uint16_t s) { return *services[s]; }
  BackendCounters& backend(uint16_t s, int b) { return services[s]->backends[b]; }
};

struct Totals {
  uint64_t accepted = 0, active = 0, relayed = 0, no_backend = 0, connect_failed = 0,
           connect_retries = 0, idle_timeouts = 0, fin_timeouts = 0, client_timeouts = 0, backend_timeouts = 0, resets = 0, cut_at_drain = 0, killed_on_down = 0,
           handed_over = 0, adopted = 0,
           accept_errors = 0, refused_denied = 0, refused_limited = 0, refused_banned = 0, bad_proxy = 0,
           local_errors = 0, affinity_hits = 0, bytes_up = 0, bytes_down = 0, udp_sessions = 0,
           udp_idle_expired = 0, udp_evicted = 0, udp_datagrams_up = 0, udp_datagrams_down = 0,
           udp_dropped = 0, udp_no_socket = 0, udp_refusals_ignored = 0,
           access_log_dropped = 0;
  std::string ToString() const;
  // Field by field: the process's totals over several configs (reloads).
  void Add(const Totals& other);
};

Totals Sum(absl::Span<const WorkerCounters* const> workers);

}  // namespace l4lb::stats
