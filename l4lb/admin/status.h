#pragma once

#include <string>

#include "l4lb/admin/view.h"

namespace l4lb::admin {

// RenderStatus is GET /status: JSON with every service and backend, for people
// and scripts (README "Operating l4lb" shows one):
//
//   {"draining": false, "uptime_seconds": 12.5, "services": [{"name": "web",
//    "protocol": "tcp", "listen": ["0.0.0.0:80"], "accepted_connections": 9,
//    "active_connections": 1, "refused": {"denied": 0, ...}, "backends": [{
//      "name": "10.0.0.1:80", "state": "UP", "weight": 1, "active_connections": 1,
//      "connections_total": 9, "bytes": {"up": 100, "down": 9000},
//      "throughput_bytes_per_second": {"up": 8.0, "down": 720.0},
//      "seconds_since_state_change": 12.5,
//      "last_check": {"result": "pass", "reason": "", "age_seconds": 0.4,
//                     "duration_seconds": 0.0002}}]}]}
//
// "state" is UP or DOWN today; DRAIN and MAINT arrive with the admin actions.
// "last_check" is null for a service without probes or before the first one.
// Throughput is measured from `previous` (the view of the previous /status
// request) to `view`; null: since start.
//
// Thread safety: a pure function. Never throws (strings that are not UTF-8
// are written with U+FFFD).
std::string RenderStatus(const View& view, const View* previous);

}  // namespace l4lb::admin
