#pragma once

#include <string>

#include "l4lb/admin/view.h"

namespace l4lb::admin {

// RenderConnections is GET /connections?service=NAME&limit=N, like HAProxy's
// `show sess`: one object per live TCP connection, oldest first within each
// worker, at most N (the caller bounds it):
//
//   {"truncated": false, "workers_silent": 0, "connections": [{"service": "web",
//    "client": "192.0.2.7:51234", "backend": "10.0.0.1:80", "state": "relaying",
//    "age_seconds": 12.3, "bytes_up": 120, "bytes_down": 90000}]}
//
// "backend" is null while no backend is picked. Thread safety: a pure function;
// never throws (names that are not UTF-8 get U+FFFD).
std::string RenderConnections(const ConnectionsView& view);

}  // namespace l4lb::admin
