#pragma once

#include "l4lb/admin/view.h"

namespace l4lb::admin {

// A View with one TCP service ("web", two backends, one DOWN) and counts a test
// can name: 3 connections and 100/900 bytes on the first backend.
inline View TestView() {
  View v;
  v.started = absl::FromUnixSeconds(1'700'000'000);
  v.now = v.started + absl::Seconds(10);
  v.open_fds = 12;
  v.max_fds = 1024;
  ServiceView s;
  s.name = "web";
  s.listen = {"127.0.0.1:8080"};
  s.counters.accepted = 4;
  s.counters.refused_banned = 1;
  s.counters.duration.bounds = stats::DurationBounds();
  s.counters.duration.buckets.assign(stats::DurationBounds().size() + 1, 0);
  s.counters.duration.buckets[1] = 3;  // <= 10 ms
  s.counters.duration.sum_ns = 15'000'000;
  for (int i = 0; i < 2; ++i) {
    BackendView b;
    b.name = i == 0 ? "10.0.0.1:80" : "10.0.0.2:80";
    b.state = i == 0 ? BackendState::kUp : BackendState::kDown;
    b.weight = i == 0 ? 1 : 3;
    b.counters.connect_time.bounds = stats::ConnectBounds();
    b.counters.connect_time.buckets.assign(stats::ConnectBounds().size() + 1, 0);
    b.health.last_change = v.started;
    if (i == 0) {
      b.counters.connections = 3;
      b.counters.bytes_up = 100;
      b.counters.bytes_down = 900;
      b.counters.connect_time.buckets[0] = 2;  // <= 100 µs
      b.counters.connect_time.buckets[2] = 1;  // <= 500 µs
      b.counters.connect_time.sum_ns = 600'000;
    }
    s.backends.push_back(b);
  }
  v.services.push_back(s);
  return v;
}

}  // namespace l4lb::admin
