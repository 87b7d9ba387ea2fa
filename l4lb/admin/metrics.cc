#include "l4lb/admin/metrics.h"

#include <charconv>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace l4lb::admin {
namespace {

// Label values may hold anything an operator wrote in a service name: the
// format's three escapes.
std::string Escape(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

using Labels = std::vector<std::pair<absl::string_view, std::string>>;

std::string LabelText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", labels[i].first, "=\"", Escape(labels[i].second),
                    "\"");
  }
  return out + "}";
}

// The shortest text that reads back as the same double ("0.00025", not
// "0.00025000000000000001").
// Fixed notation ("1700000000.25", not "1.70000000025e+09") for people
// reading a scrape; a value too long for that falls back to the shortest form.
std::string Number(double v) {
  char buf[64];
  std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  if (r.ec != std::errc()) r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}
double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

class Writer {
 public:
  // One family: HELP and TYPE once, then its samples.
  void Family(absl::string_view name, absl::string_view type, absl::string_view help) {
    name_ = std::string(name);
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(const Labels& labels, uint64_t value) {
    absl::StrAppend(&out_, name_, LabelText(labels), " ", value, "\n");
  }
  void Sample(const Labels& labels, double value) {
    absl::StrAppend(&out_, name_, LabelText(labels), " ", Number(value), "\n");
  }
  void Histogram(Labels labels, const stats::HistogramTotals& h) {
    uint64_t cumulative = 0;
    labels.emplace_back("le", "");
    for (size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i];
      labels.back().second = i < h.bounds.size() ? Number(Seconds(h.bounds[i])) : "+Inf";
      absl::StrAppend(&out_, name_, "_bucket", LabelText(labels), " ", cumulative, "\n");
    }
    labels.pop_back();
    absl::StrAppend(&out_, name_, "_sum", LabelText(labels), " ", Number(Seconds(h.sum_ns)), "\n",
                    name_, "_count", LabelText(labels), " ", cumulative, "\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

using BackendFn = std::function<void(Writer&, const Labels&, const BackendView&)>;

// One family over every backend of every service.
void PerBackend(Writer& w, const View& view, absl::string_view name, absl::string_view type,
                absl::string_view help, const BackendFn& fn) {
  w.Family(name, type, help);
  for (const ServiceView& s : view.services) {
    for (const BackendView& b : s.backends) fn(w, {{"service", s.name}, {"backend", b.name}}, b);
  }
}

using ServiceFn = std::function<void(Writer&, const Labels&, const ServiceView&)>;

void PerService(Writer& w, const View& view, absl::string_view name, absl::string_view type,
                absl::string_view help, const ServiceFn& fn) {
  w.Family(name, type, help);
  for (const ServiceView& s : view.services) fn(w, {{"service", s.name}}, s);
}

Labels With(Labels labels, absl::string_view key, std::string value) {
  labels.emplace_back(key, std::move(value));
  return labels;
}

void BackendFamilies(Writer& w, const View& view) {
  PerBackend(w, view, "l4lb_backend_up", "gauge",
             "1 if the backend takes new clients (health checks pass), else 0.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, uint64_t{b.state == BackendState::kUp});
             });
  PerBackend(w, view, "l4lb_backend_state", "gauge",
             "1 for the backend's state (UP, DOWN, DRAIN, MAINT), 0 for the others.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               for (BackendState state : kBackendStates) {
                 w.Sample(With(l, "state", StateName(state)), uint64_t{b.state == state});
               }
             });
  PerBackend(w, view, "l4lb_backend_weight", "gauge",
             "The backend's relative share of new clients.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, uint64_t{b.weight});
             });
  PerBackend(w, view, "l4lb_connections_total", "counter",
             "TCP connections relayed to the backend (its connect succeeded).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, b.counters.connections);
             });
  PerBackend(w, view, "l4lb_active_connections", "gauge",
             "TCP connections being relayed to the backend now.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, b.counters.active);
             });
  PerBackend(w, view, "l4lb_bytes_total", "counter",
             "Payload bytes relayed: up is client to backend, down is backend to client "
             "(TCP and UDP).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(With(l, "direction", "up"), b.counters.bytes_up);
               w.Sample(With(l, "direction", "down"), b.counters.bytes_down);
             });
  PerBackend(w, view, "l4lb_connect_errors_total", "counter",
             "Backend connects refused, unreachable or reset (each attempt).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, b.counters.connect_errors);
             });
  PerBackend(w, view, "l4lb_connect_timeouts_total", "counter",
             "Backend connects that took longer than connect_timeout (each attempt).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, b.counters.connect_timeouts);
             });
  PerBackend(w, view, "l4lb_connect_duration_seconds", "histogram",
             "Time from a backend connect's submission to its success.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Histogram(l, b.counters.connect_time);
             });
  PerBackend(w, view, "l4lb_health_checks_total", "counter",
             "Health-check probes of the backend by result (pass, fail).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(With(l, "result", "pass"), b.health.passed);
               w.Sample(With(l, "result", "fail"), b.health.failed);
             });
  PerBackend(w, view, "l4lb_health_check_duration_seconds", "gauge",
             "How long the backend's last health-check probe took (0 before the first).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, absl::ToDoubleSeconds(b.health.last_duration));
             });
  PerBackend(w, view, "l4lb_backend_last_change_timestamp_seconds", "gauge",
             "Unix time of the backend's last UP/DOWN change (l4lb's start if none).",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, absl::ToDoubleSeconds(b.health.last_change - absl::UnixEpoch()));
             });
  PerBackend(w, view, "l4lb_udp_sessions_total", "counter",
             "UDP sessions (client address to its own backend socket) created.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, b.counters.udp_sessions);
             });
  PerBackend(w, view, "l4lb_udp_active_sessions", "gauge", "UDP sessions live now.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(l, b.counters.udp_active);
             });
  PerBackend(w, view, "l4lb_udp_datagrams_total", "counter",
             "UDP datagrams forwarded: up is client to backend, down is backend to client.",
             [](Writer& w, const Labels& l, const BackendView& b) {
               w.Sample(With(l, "direction", "up"), b.counters.udp_datagrams_up);
               w.Sample(With(l, "direction", "down"), b.counters.udp_datagrams_down);
             });
}

void ServiceFamilies(Writer& w, const View& view) {
  w.Family("l4lb_listener_info", "gauge",
           "1 for each bound listener: its service, address and protocol.");
  for (const ServiceView& s : view.services) {
    for (const std::string& l : s.listen) {
      w.Sample({{"service", s.name}, {"listener", l}, {"protocol", s.protocol}}, uint64_t{1});
    }
  }
  PerService(w, view, "l4lb_accepted_connections_total", "counter",
             "TCP connections accepted by the service's listeners, or routed to it by another "
             "service's sni_routes.",
             [](Writer& w, const Labels& l, const ServiceView& s) {
               w.Sample(l, s.counters.accepted);
             });
  PerService(w, view, "l4lb_service_active_connections", "gauge",
             "TCP connections of the service open now (relayed or being connected), its "
             "listeners' and those sni_routes sent to it.",
             [](Writer& w, const Labels& l, const ServiceView& s) {
               w.Sample(l, s.counters.active);
             });
  PerService(w, view, "l4lb_refused_total", "counter",
             "Clients refused before any backend: reason denied (access list), limited "
             "(rate or connection limits), banned, bad_proxy (bad or late PROXY header), bad_tls "
             "(sni_routes: a malformed, oversized or late ClientHello), no_route (no SNI route "
             "and no default).",
             [](Writer& w, const Labels& l, const ServiceView& s) {
               w.Sample(With(l, "reason", "denied"), s.counters.refused_denied);
               w.Sample(With(l, "reason", "limited"), s.counters.refused_limited);
               w.Sample(With(l, "reason", "banned"), s.counters.refused_banned);
               w.Sample(With(l, "reason", "bad_proxy"), s.counters.bad_proxy);
               w.Sample(With(l, "reason", "bad_tls"), s.counters.bad_tls);
               w.Sample(With(l, "reason", "no_route"), s.counters.no_route);
             });
  PerService(w, view, "l4lb_no_backend_total", "counter",
             "TCP connections closed at once because no backend was healthy.",
             [](Writer& w, const Labels& l, const ServiceView& s) {
               w.Sample(l, s.counters.no_backend);
             });
  PerService(w, view, "l4lb_connection_duration_seconds", "histogram",
             "Lifetime of relayed TCP connections, accept to close.",
             [](Writer& w, const Labels& l, const ServiceView& s) {
               w.Histogram(l, s.counters.duration);
             });
}

void ProcessFamilies(Writer& w, const View& view) {
  const stats::Totals& t = view.totals;
  for (const auto& [name, help, value] :
       std::vector<std::tuple<const char*, const char*, uint64_t>>{
           {"l4lb_accept_errors_total", "accept(2) failures (EMFILE, ENFILE, ...).",
            t.accept_errors},
           {"l4lb_local_errors_total",
            "Backend connects that failed on l4lb's own limits (local ports, fds, buffers).",
            t.local_errors},
           {"l4lb_idle_timeouts_total", "Connections closed by idle_timeout.", t.idle_timeouts},
           {"l4lb_fin_timeouts_total",
            "Half-closed connections cut after client_fin_timeout without a byte.",
            t.fin_timeouts},
           {"l4lb_client_timeouts_total",
            "Connections cut by client_timeout: l4lb waited that long on the client side.",
            t.client_timeouts},
           {"l4lb_backend_timeouts_total",
            "Connections cut by backend_timeout: l4lb waited that long on the backend side.",
            t.backend_timeouts},
           {"l4lb_resets_total", "Connections closed because one side reset or failed.",
            t.resets},
           {"l4lb_killed_on_down_total", "Connections closed because their backend went DOWN.",
            t.killed_on_down},
           {"l4lb_cut_at_drain_total", "Connections cut at the drain timeout.", t.cut_at_drain},
           {"l4lb_takeover_handed_over_total",
            "Connections this process handed to the next one in a live upgrade (--takeover).",
            t.handed_over},
           {"l4lb_takeover_adopted_total",
            "Connections this process took over from the previous one (--takeover).",
            t.adopted},
           {"l4lb_udp_dropped_total", "UDP datagrams not forwarded.", t.udp_dropped},
           {"l4lb_access_log_dropped_total",
            "Access-log lines dropped: the queue to the logging thread was full.",
            t.access_log_dropped},
       }) {
    w.Family(name, "counter", help);
    w.Sample({}, value);
  }
  w.Family("l4lb_draining", "gauge", "1 once a drain (SIGTERM) has begun, else 0.");
  w.Sample({}, uint64_t{view.draining});
  w.Family("l4lb_reloads_total", "counter",
           "Config reloads (SIGHUP, POST /reload) by result: success (the new config "
           "runs) or failure (rejected; the running config stays).");
  w.Sample({{"result", "success"}}, view.reloads_success);
  w.Sample({{"result", "failure"}}, view.reloads_failure);
  if (view.dns_refreshes) {
    w.Family("l4lb_dns_refreshes_total", "counter",
             "Backend DNS names resolved again, per name: changed (other addresses: a new "
             "config serves them), unchanged, or failure (the last good addresses stay).");
    w.Sample({{"result", "changed"}}, view.dns_refreshes->changed);
    w.Sample({{"result", "unchanged"}}, view.dns_refreshes->unchanged);
    w.Sample({{"result", "failure"}}, view.dns_refreshes->failure);
  }
  w.Family("l4lb_config_generation", "gauge",
           "The running config: 1 at start, +1 per reload that took.");
  w.Sample({}, view.generation);
  w.Family("l4lb_draining_configs", "gauge",
           "Earlier configs whose connections are still draining after a reload.");
  w.Sample({}, static_cast<uint64_t>(view.draining_generations));
  w.Family("l4lb_start_time_seconds", "gauge", "Unix time l4lb started.");
  w.Sample({}, absl::ToDoubleSeconds(view.started - absl::UnixEpoch()));
  if (view.open_fds >= 0) {
    w.Family("process_open_fds", "gauge", "Open file descriptors.");
    w.Sample({}, static_cast<uint64_t>(view.open_fds));
  }
  if (view.max_fds >= 0) {
    w.Family("process_max_fds", "gauge", "The open-files limit (RLIMIT_NOFILE).");
    w.Sample({}, static_cast<uint64_t>(view.max_fds));
  }
}

}  // namespace

std::string RenderMetrics(const View& view) {
  Writer w;
  BackendFamilies(w, view);
  ServiceFamilies(w, view);
  ProcessFamilies(w, view);
  return w.Take();
}

}  // namespace l4lb::admin
