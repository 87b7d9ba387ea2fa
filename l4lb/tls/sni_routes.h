#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4lb::tls {

// SniRoutes maps the server name of a ClientHello (client_hello.h) to one of a
// service's routes (an index the caller gives meaning to, e.g. a backend set).
// Names follow nginx's server_name rules:
//   - "a.example.com" matches that name only;
//   - "*.example.com" matches any name below example.com ("a.example.com",
//     "a.b.example.com"), not "example.com" itself;
//   - an exact name beats a wildcard, and a longer wildcard suffix beats a
//     shorter one ("*.b.example.com" over "*.example.com");
//   - case does not matter, nor does one trailing dot;
//   - anything else goes to the default route, or nowhere (reject) without one.
// A connection without SNI, or not TLS at all, is routed by Match("") (the
// default route).
//
// Thread safety: immutable after Build(); Match() is safe from any thread.
// Lookup is one hash probe per label of the name, whatever the number of routes.
class SniRoutes {
 public:
  // Each route: its names (exact or "*.suffix") and its index (>= 0; several
  // entries may share one). InvalidArgument naming the pattern for a malformed
  // one ("*foo.com", "a.*.com", "*", "", bad characters; NormalizeServerName()'s
  // rules), a name given twice (in any case, in one route or two), a route
  // without names or an index below 0.
  static absl::StatusOr<SniRoutes> Build(
      const std::vector<std::pair<std::vector<std::string>, int>>& routes,
      std::optional<int> default_route);

  // The route for `server_name` (any case, one trailing dot allowed), or the
  // default route, or nullopt (no route and no default: reject the connection).
  std::optional<int> Match(absl::string_view server_name) const;

 private:
  SniRoutes() = default;

  std::optional<int> Find(absl::string_view lowercase_name) const;

  absl::flat_hash_map<std::string, int> exact_;     // "a.example.com" -> route
  absl::flat_hash_map<std::string, int> wildcard_;  // "*.example.com" as "example.com"
  std::optional<int> default_route_;
};

}  // namespace l4lb::tls
