#pragma once

#include "l4lb/admin/view.h"

namespace l4lb::reload {

// A reload replaces the running Server with the next config's, and the old one
// drains beside it: each has its own workers and counters. Operators must see
// one set of counters that never go backwards, so the admin endpoint's view is
// the running config's plus the draining configs' plus what the configs gone
// before counted, matched by service name and backend name (as written): a
// service or backend kept across a reload keeps counting; one that was removed
// drops out of the view (and comes back with its counts if it is added again).
//
// Adds `from`'s counters (process totals, each service's own, each backend's)
// into `into`'s services and backends of the same names. `add_missing`: a
// service or backend `into` lacks is appended with its counters (the retired
// configs' sum keeps everything); otherwise it is left out (what is shown is
// what runs).
void AddCounters(admin::View& into, const admin::View& from, bool add_missing);

// The counts of a config that is gone: its gauges (active connections and UDP
// sessions) are zeroed, its counters kept.
void ZeroGauges(admin::View& view);

// /connections over several configs: `from`'s connections appended to `into`
// (service indices remapped by name, names `into` lacks appended), up to
// `limit` in all; past it `into` is marked truncated.
void AddConnections(admin::ConnectionsView& into, admin::ConnectionsView from, size_t limit);

}  // namespace l4lb::reload
