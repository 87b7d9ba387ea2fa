#pragma once

// SNI routing for the flag-defined service (binary-only, like main.cc):
// --sni_routes, --sni_timeout. With --config each service sets sni_routes and
// sni_timeout in the file, where routes name other services; on the command
// line each route brings its own backends and becomes a service of its own.

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "l4lb/server.h"

namespace l4lb {

// Whether --sni_routes is given: --backends is then optional (the default route).
bool SniRoutesFlagSet();

// --sni_routes="NAMES=BACKENDS;NAMES=BACKENDS..." for `front` (every other flag
// already applied): NAMES is "|"-separated ("api.example.com",
// "*.example.com|example.com"), BACKENDS what --backends takes. Each route
// becomes a listener-less service "sni:FIRST_NAME" with the front's settings
// and those backends; `front` gets the routes and --sni_timeout. Returns those
// services (none without --sni_routes). Errors: "--FLAG: what is wrong".
absl::StatusOr<std::vector<Server::Service>> SniFlagsInto(Server::Service* front);

// The flags above (refused with --config).
absl::Span<const char* const> SniServiceFlags();

}  // namespace l4lb
