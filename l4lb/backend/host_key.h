#pragma once

#include <string>
#include <vector>

#include "absl/types/span.h"

#include "l4lb/backend/backend_set.h"

namespace l4lb::backend {

// The identity that seeds each backend's Maglev permutation: its host, the IP
// without the port ("10.0.0.1", "2001:db8::1"; an IPv4-mapped IPv6 address is
// its IPv4 one). So every service that lists the same hosts builds the same
// table, whatever ports it gives them (an FTP control service on "10.0.0.1:21"
// and its passive range on port-less "10.0.0.1") and in whatever order (the
// table follows the set: balancer/maglev.h); with src_ip keys a client then
// reaches the same host through every service of the group, on every l4lb
// instance, without sharing any state: agreement by construction, not by the
// affinity pin, which one process alone sees.
//
// A host listed more than once in `backends` (two ports of one server) cannot
// seed two permutations with one key: each of its entries keeps its name as
// written ("10.0.0.1:80", "10.0.0.1:81"), as before this key existed.
//
// Not BackendSpec::name: that stays the address as written, which logs, metrics,
// the admin API and a reload's carried health match on.
std::vector<std::string> HostKeys(absl::Span<const BackendSpec> backends);

}  // namespace l4lb::backend
