#include "l4lb/stats/service_counters.h"

namespace l4lb::stats {

ServiceTotals SumService(absl::Span<const ServiceCounters* const> workers) {
  ServiceTotals t;
  for (const ServiceCounters* w : workers) {
    t.accepted += w->accepted.Get();
    t.active += w->active.Get();
    t.refused_denied += w->refused_denied.Get();
    t.refused_limited += w->refused_limited.Get();
    t.refused_banned += w->refused_banned.Get();
    t.bad_proxy += w->bad_proxy.Get();
    t.bad_tls += w->bad_tls.Get();
    t.no_route += w->no_route.Get();
    t.no_backend += w->no_backend.Get();
    t.duration.Add(w->duration);
    if (t.backends.size() < w->backends.size()) t.backends.resize(w->backends.size());
    for (size_t i = 0; i < w->backends.size(); ++i) {
      const BackendCounters& b = w->backends[i];
      BackendTotals& o = t.backends[i];
      o.connections += b.connections.Get();
      o.active += b.active.Get();
      o.bytes_up += b.bytes_up.Get();
      o.bytes_down += b.bytes_down.Get();
      o.connect_errors += b.connect_errors.Get();
      o.connect_timeouts += b.connect_timeouts.Get();
      o.udp_sessions += b.udp_sessions.Get();
      o.udp_active += b.udp_active.Get();
      o.udp_datagrams_up += b.udp_datagrams_up.Get();
      o.udp_datagrams_down += b.udp_datagrams_down.Get();
      o.connect_time.Add(b.connect_time);
    }
  }
  return t;
}

void BackendTotals::Add(const BackendTotals& o) {
  connections += o.connections;
  active += o.active;
  bytes_up += o.bytes_up;
  bytes_down += o.bytes_down;
  connect_errors += o.connect_errors;
  connect_timeouts += o.connect_timeouts;
  udp_sessions += o.udp_sessions;
  udp_active += o.udp_active;
  udp_datagrams_up += o.udp_datagrams_up;
  udp_datagrams_down += o.udp_datagrams_down;
  connect_time.Add(o.connect_time);
}

void ServiceTotals::AddServiceOnly(const ServiceTotals& o) {
  accepted += o.accepted;
  active += o.active;
  refused_denied += o.refused_denied;
  refused_limited += o.refused_limited;
  refused_banned += o.refused_banned;
  bad_proxy += o.bad_proxy;
  bad_tls += o.bad_tls;
  no_route += o.no_route;
  no_backend += o.no_backend;
  duration.Add(o.duration);
}

}  // namespace l4lb::stats
