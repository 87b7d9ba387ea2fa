#pragma once

#include <string>

#include "l4lb/admin/view.h"

namespace l4lb::admin {

// RenderMetrics is GET /metrics: the Prometheus text format (version 0.0.4) of
// a View. Names follow Prometheus' conventions (l4lb_..._total for counters,
// base units: _seconds, _bytes), labels are service, backend, and where it
// applies direction, state, result, reason. README "Operating l4lb" lists every
// family with its meaning; tests/admin_e2e_test runs `promtool check metrics`
// over the output.
//
// Thread safety: a pure function.
std::string RenderMetrics(const View& view);

}  // namespace l4lb::admin
