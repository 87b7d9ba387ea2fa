#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"

#include "l4lb/server.h"
#include "l4lb/tls/sni_routes.h"

namespace l4lb {

// What the sni_routes of a config's services mean together (Server::Service):
// per service, its routes with each name's target as a service index, its own
// index as the default route when it has backends of its own; null for a
// service without routes. The rules, each broken one an InvalidArgument naming
// the service (and the route's name or service):
//   - a route's service exists, is another TCP service with backends, and has
//     no sni_routes itself (one hop: a route never leads to another lookup);
//   - a service with sni_routes is TCP; it may have no backends (no default
//     route: unmatched clients are refused);
//   - a service without a listener (a pool) has a name and some route to it;
//   - names follow tls::SniRoutes::Build (exact or "*.suffix", none twice).
// Thread safety: none needed; a pure function, called by Server::Create.
absl::StatusOr<std::vector<std::shared_ptr<const tls::SniRoutes>>> BuildSniRoutes(
    const std::vector<Server::Service>& services);

}  // namespace l4lb
