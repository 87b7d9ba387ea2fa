#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::net {

// The local address of backend connections (`source`, --source): on a
// multi-homed host the address backends must see, and, with several, more
// local ports (each source address has its own ephemeral range towards a
// backend). A worker takes them in turn, among those of the backend's family.

// "10.0.0.5", "10.0.0.5,10.0.0.6", "2001:db8::5" or "[2001:db8::5]": addresses
// without a port (a port would bind every connection to one 4-tuple). Errors
// quote the entry.
absl::StatusOr<std::vector<SocketAddress>> ParseSourceList(absl::string_view text);

// Binds a TCP socket to `source` with IP_BIND_ADDRESS_NO_PORT: the port is
// chosen at connect, per destination, so a source is not limited to one
// ephemeral range for all backends together. The error names the address.
absl::Status BindSource(int fd, const SocketAddress& source);

// At start-up and reload: `source` can be bound here (it is one of the host's
// addresses); otherwise the error names it.
absl::Status CheckSource(const SocketAddress& source);

}  // namespace l4lb::net
