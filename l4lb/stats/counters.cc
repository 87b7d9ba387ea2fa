#include "l4lb/stats/counters.h"

#include "absl/strings/str_cat.h"

namespace l4lb::stats {

Totals Sum(absl::Span<const WorkerCounters* const> workers) {
  Totals t;
  for (const WorkerCounters* w : workers) {
    t.accepted += w->accepted.Get();
    t.active += w->active.Get();
    t.relayed += w->relayed.Get();
    t.no_backend += w->no_backend.Get();
    t.connect_failed += w->connect_failed.Get();
    t.connect_retries += w->connect_retries.Get();
    t.idle_timeouts += w->idle_timeouts.Get();
    t.fin_timeouts += w->fin_timeouts.Get();
    t.client_timeouts += w->client_timeouts.Get();
    t.backend_timeouts += w->backend_timeouts.Get();
    t.resets += w->resets.Get();
    t.cut_at_drain += w->cut_at_drain.Get();
    t.killed_on_down += w->killed_on_down.Get();
    t.handed_over += w->handed_over.Get();
    t.adopted += w->adopted.Get();
    t.accept_errors += w->accept_errors.Get();
    t.refused_denied += w->refused_denied.Get();
    t.refused_limited += w->refused_limited.Get();
    t.refused_banned += w->refused_banned.Get();
    t.bad_proxy += w->bad_proxy.Get();
    t.local_errors += w->local_errors.Get();
    t.affinity_hits += w->affinity_hits.Get();
    t.bytes_up += w->bytes_up.Get();
    t.bytes_down += w->bytes_down.Get();
    t.udp_sessions += w->udp_sessions.Get();
    t.udp_idle_expired += w->udp_idle_expired.Get();
    t.udp_evicted += w->udp_evicted.Get();
    t.udp_datagrams_up += w->udp_datagrams_up.Get();
    t.udp_datagrams_down += w->udp_datagrams_down.Get();
    t.udp_dropped += w->udp_dropped.Get();
    t.udp_no_socket += w->udp_no_socket.Get();
    t.udp_refusals_ignored += w->udp_refusals_ignored.Get();
    t.access_log_dropped += w->access_log_dropped.Get();
  }
  return t;
}

void Totals::Add(const Totals& o) {
  accepted += o.accepted;
  active += o.active;
  relayed += o.relayed;
  no_backend += o.no_backend;
  connect_failed += o.connect_failed;
  connect_retries += o.connect_retries;
  idle_timeouts += o.idle_timeouts;
  fin_timeouts += o.fin_timeouts;
  client_timeouts += o.client_timeouts;
  backend_timeouts += o.backend_timeouts;
  resets += o.resets;
  cut_at_drain += o.cut_at_drain;
  killed_on_down += o.killed_on_down;
  handed_over += o.handed_over;
  adopted += o.adopted;
  accept_errors += o.accept_errors;
  refused_denied += o.refused_denied;
  refused_limited += o.refused_limited;
  refused_banned += o.refused_banned;
  bad_proxy += o.bad_proxy;
  local_errors += o.local_errors;
  affinity_hits += o.affinity_hits;
  bytes_up += o.bytes_up;
  bytes_down += o.bytes_down;
  udp_sessions += o.udp_sessions;
  udp_idle_expired += o.udp_idle_expired;
  udp_evicted += o.udp_evicted;
  udp_datagrams_up += o.udp_datagrams_up;
  udp_datagrams_down += o.udp_datagrams_down;
  udp_dropped += o.udp_dropped;
  udp_no_socket += o.udp_no_socket;
  udp_refusals_ignored += o.udp_refusals_ignored;
  access_log_dropped += o.access_log_dropped;
}

std::string Totals::ToString() const {
  return absl::StrCat(
      "accepted=", accepted, " active=", active, " relayed=", relayed, " no_backend=", no_backend,
      " connect_failed=", connect_failed, " connect_retries=", connect_retries,
      " idle_timeouts=", idle_timeouts, " fin_timeouts=", fin_timeouts, " client_timeouts=", client_timeouts, " backend_timeouts=", backend_timeouts, " resets=", resets, " cut_at_drain=", cut_at_drain,
      " killed_on_down=", killed_on_down, " handed_over=", handed_over, " adopted=", adopted,
      " accept_errors=", accept_errors, " refused_denied=", refused_denied,
      " refused_limited=", refused_limited, " refused_banned=", refused_banned, " bad_proxy=", bad_proxy, " local_errors=", local_errors,
      " affinity_hits=", affinity_hits, " bytes_up=", bytes_up, " bytes_down=", bytes_down,
      " udp_sessions=", udp_sessions, " udp_idle_expired=", udp_idle_expired,
      " udp_evicted=", udp_evicted, " udp_datagrams_up=", udp_datagrams_up,
      " udp_datagrams_down=", udp_datagrams_down, " udp_dropped=", udp_dropped,
      " udp_no_socket=", udp_no_socket, " udp_refusals_ignored=", udp_refusals_ignored,
      " access_log_dropped=", access_log_dropped);
}

}  // namespace l4lb::stats
