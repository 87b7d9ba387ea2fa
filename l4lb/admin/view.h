#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"

#include "health/checker.h"
#include "l4lb/stats/connection_list.h"
#include "l4lb/stats/counters.h"
#include "l4lb/stats/service_counters.h"

namespace l4lb::admin {

// A backend's state as operators see it. UP and DOWN come from the health
// checks (the snapshot the workers use); DRAIN (no new clients but pinned ones,
// live ones go on) and MAINT (no clients, checks paused) are set by the admin
// actions (actions.h) and shown instead of UP/DOWN.
enum class BackendState { kUp, kDown, kDrain, kMaint };
inline constexpr BackendState kBackendStates[] = {BackendState::kUp, BackendState::kDown,
                                                  BackendState::kDrain, BackendState::kMaint};
const char* StateName(BackendState state);  // "UP", "DOWN", "DRAIN", "MAINT"

struct BackendView {
  std::string name;  // as written in the config or --backends ("10.0.0.1:80")
  std::string dns_name;  // the host name it was resolved from; "" for an address
  BackendState state = BackendState::kUp;
  uint32_t weight = 1;
  bool backup = false;  // takes clients only while no primary does
  stats::BackendTotals counters;  // summed over workers
  health::HealthChecker::BackendReport health;
};

struct ServiceView {
  std::string name;  // the service's name, or its first listen address
  const char* protocol = "tcp";
  std::vector<std::string> listen;  // bound addresses (port 0 resolved)
  stats::ServiceTotals counters;
  std::vector<BackendView> backends;
};

// Named backends resolved again (l4lb/dns/refresher.h), per name and refresh.
struct DnsRefreshes {
  uint64_t changed = 0;  // other addresses: a new config was made
  uint64_t unchanged = 0;
  uint64_t failure = 0;  // no answer, or no address: the last good ones stay
};

// View is everything a scrape or a status page shows, read at one moment
// (Server::View() builds it on the admin thread; each figure is read once, so
// figures of one view may be a few events apart, never torn). Plain data: the
// renderers (metrics.h, status.h) are pure functions of it.
struct View {
  absl::Time now;
  absl::Time started;
  bool draining = false;
  std::vector<ServiceView> services;
  stats::Totals totals;  // every worker's own counters, summed
  int64_t open_fds = -1;  // -1: unknown
  int64_t max_fds = -1;
  // Reloads (l4lb/reload/): the running config's number (1: the one l4lb
  // started with, +1 per reload that took), reloads that took and that were
  // rejected, and the last one's time and error ("" if it took).
  uint64_t generation = 1;
  uint64_t reloads_success = 0;
  uint64_t reloads_failure = 0;
  absl::Time last_reload = absl::InfinitePast();
  std::string last_reload_error;
  // Earlier configs still draining connections after a reload.
  int draining_generations = 0;
  std::optional<DnsRefreshes> dns_refreshes;  // nullopt: not shown
};

// GET /connections: live TCP connections, as the workers listed them.
struct ConnectionsView {
  std::vector<std::string> services;  // names, by index (LiveConnection::service)
  std::vector<stats::LiveConnection> connections;
  bool truncated = false;  // the limit was reached: there are more
  int workers_silent = 0;  // workers that did not answer in time (busy, or drained)
};

}  // namespace l4lb::admin
