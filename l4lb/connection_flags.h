#pragma once

// How the flag-defined service balances and treats its connections (binary-only,
// like main.cc): --balance, --balance_factor, --client_keepalive,
// --backend_keepalive, --client_fin_timeout, --client_timeout, --backend_timeout,
// --source, --transparent, --defer_accept, --backend_tfo. With
// --config each service sets them in the file.

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "l4lb/server.h"

namespace l4lb {

// Fills `service` (its protocol already set) from the flags. An error's message
// is "--FLAG: what is wrong"; the TCP-only ones are refused on udp:// listeners.
absl::Status ConnectionFlagsInto(Server::Service* service);

// The flags above (refused with --config).
absl::Span<const char* const> ConnectionServiceFlags();

}  // namespace l4lb
