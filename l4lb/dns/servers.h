#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::dns {

// The DNS servers named backends are resolved with (dns_servers, --dns_servers),
// comma-separated: "10.0.0.53", "10.0.0.53:5353", "[2001:db8::53]:53"; port 53
// when none is given. Empty text: none (then /etc/resolv.conf's servers). Errors
// name the entry, like the other address lists.
absl::StatusOr<std::vector<net::SocketAddress>> ParseServerList(absl::string_view text);

}  // namespace l4lb::dns
