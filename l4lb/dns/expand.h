#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/net/address.h"

namespace l4lb::dns {

// Each host name's addresses (port 0), by BackendSpec::host.
using Addresses = absl::flat_hash_map<std::string, std::vector<net::SocketAddress>>;

// Sorts by family then address bytes and drops repeats: the order Expand()
// gives whatever order a DNS server answered in (servers rotate their answers).
void Canonicalize(std::vector<net::SocketAddress>* addresses);

// `backends` with each named spec replaced by one spec per address its host has
// in `resolved`, in canonical order: the spec's port, weight, backup, host and
// origin, and the address as `address` and `name` (the backend's identity, as
// for literal addresses: a reload or DNS change keeps the health of an address
// both have). Literal specs stay where they are. An address given already (a
// literal, or an earlier name) is left out: one backend per address. So every
// l4lb instance with the same config and the same answers builds the same
// Maglev table. FailedPrecondition if a name is missing from `resolved`.
//
// Pure: no I/O, any thread.
absl::StatusOr<std::vector<backend::BackendSpec>> Expand(
    const std::vector<backend::BackendSpec>& backends, const Addresses& resolved);

// "10.0.0.1, 10.0.0.2": addresses for log lines, without ports.
std::string JoinAddresses(const std::vector<net::SocketAddress>& addresses);

}  // namespace l4lb::dns
