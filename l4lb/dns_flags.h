#pragma once

// How the flag-defined service resolves its backends given by name (binary-only,
// like main.cc): --dns_refresh, --dns_servers. With --config each service sets
// them in the file (dns_refresh, dns_servers).

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "l4lb/server.h"

namespace l4lb {

// Fills `service` (its backends already parsed) from the flags, and names
// --backends as where its named backends were written. An error's message is
// "--FLAG: what is wrong".
absl::Status DnsFlagsInto(Server::Service* service);

// The flags above (refused with --config).
absl::Span<const char* const> DnsServiceFlags();

}  // namespace l4lb
