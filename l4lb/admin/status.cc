#include "l4lb/admin/status.h"

#include <nlohmann/json.hpp>

namespace l4lb::admin {
namespace {

using nlohmann::json;

double Rate(uint64_t now, uint64_t before, double seconds) {
  if (seconds <= 0 || now < before) return 0;
  return static_cast<double>(now - before) / seconds;
}

json Backend(const View& view, const BackendView& b, const BackendView* previous,
             double seconds) {
  const stats::BackendTotals zero;
  const stats::BackendTotals& before = previous != nullptr ? previous->counters : zero;
  json check = nullptr;
  if (b.health.probed && b.health.last_check != absl::InfinitePast()) {
    check = {{"result", b.health.last_ok ? "pass" : "fail"},
             {"reason", b.health.last_reason},
             {"age_seconds", absl::ToDoubleSeconds(view.now - b.health.last_check)},
             {"duration_seconds", absl::ToDoubleSeconds(b.health.last_duration)}};
  }
  return {
      {"name", b.name},
      {"dns_name", b.dns_name.empty() ? json(nullptr) : json(b.dns_name)},
      {"state", StateName(b.state)},
      {"weight", b.weight},
      {"backup", b.backup},
      {"active_connections", b.counters.active},
      {"connections_total", b.counters.connections},
      {"connect_errors", b.counters.connect_errors},
      {"connect_timeouts", b.counters.connect_timeouts},
      {"bytes", {{"up", b.counters.bytes_up}, {"down", b.counters.bytes_down}}},
      {"throughput_bytes_per_second",
       {{"up", Rate(b.counters.bytes_up, before.bytes_up, seconds)},
        {"down", Rate(b.counters.bytes_down, before.bytes_down, seconds)}}},
      {"udp_active_sessions", b.counters.udp_active},
      {"seconds_since_state_change", absl::ToDoubleSeconds(view.now - b.health.last_change)},
      {"last_check", std::move(check)},
  };
}

}  // namespace

std::string RenderStatus(const View& view, const View* previous) {
  const absl::Time since = previous != nullptr ? previous->now : view.started;
  const double seconds = absl::ToDoubleSeconds(view.now - since);
  json services = json::array();
  for (size_t s = 0; s < view.services.size(); ++s) {
    const ServiceView& service = view.services[s];
    const ServiceView* before =
        previous != nullptr && s < previous->services.size() ? &previous->services[s] : nullptr;
    json backends = json::array();
    for (size_t i = 0; i < service.backends.size(); ++i) {
      const BackendView* b = before != nullptr && i < before->backends.size() &&
                                     before->backends[i].name == service.backends[i].name
                                 ? &before->backends[i]
                                 : nullptr;
      backends.push_back(Backend(view, service.backends[i], b, seconds));
    }
    services.push_back({
        {"name", service.name},
        {"protocol", service.protocol},
        {"listen", service.listen},
        {"accepted_connections", service.counters.accepted},
        {"active_connections", service.counters.active},
        {"no_backend", service.counters.no_backend},
        {"refused",
         {{"denied", service.counters.refused_denied},
          {"limited", service.counters.refused_limited},
          {"banned", service.counters.refused_banned},
          {"bad_proxy", service.counters.bad_proxy},
          {"bad_tls", service.counters.bad_tls},
          {"no_route", service.counters.no_route}}},
        {"backends", std::move(backends)},
    });
  }
  json out = {
      {"draining", view.draining},
      {"uptime_seconds", absl::ToDoubleSeconds(view.now - view.started)},
      {"open_fds", view.open_fds},
      {"max_fds", view.max_fds},
      {"generation", view.generation},
      {"reloads",
       {{"success", view.reloads_success},
        {"failure", view.reloads_failure},
        {"last_seconds_ago", view.last_reload == absl::InfinitePast()
                                 ? json(nullptr)
                                 : json(absl::ToDoubleSeconds(view.now - view.last_reload))},
        {"last_error", view.last_reload_error},
        {"draining_configs", view.draining_generations}}},
      {"services", std::move(services)},
  };
  if (view.dns_refreshes) {
    out["dns_refreshes"] = {{"changed", view.dns_refreshes->changed},
                            {"unchanged", view.dns_refreshes->unchanged},
                            {"failure", view.dns_refreshes->failure}};
  }
  // replace: a name that is not UTF-8 must not make dump() throw.
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace l4lb::admin
