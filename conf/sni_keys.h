#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"

#include "conf/reader.h"
#include "l4lb/server.h"

namespace l4lb::conf {

// SniKeys reads a [[service]]'s TLS passthrough keys into Server::Service:
//
//   sni_timeout = "5s"          # the whole ClientHello by then (also in [defaults])
//   sni_routes = [
//     { names = ["a.example.com"], service = "site-a" },
//     { names = ["*.example.com", "example.com"], service = "site-b" },
//   ]
//
// (or the same as [[service.sni_routes]] tables). A route's service is another
// [[service]], by name, often one without `listen` (a pool): its backends,
// health, balance and connection keys serve the routed connections. The
// service's own `backends` are the default route (no SNI, no match, not TLS)
// and may be left out: such clients are then refused.
//
// What it checks, each at the offending key (FILE:LINE:COL):
// - sni_routes: TCP only, not in [defaults] (routes name services: identity,
//   not policy); each route has names (exact or "*.suffix", valid host names,
//   none twice in the service) and a service;
// - after the whole file (CheckServices): every route's service exists, is
//   another TCP service with backends and no sni_routes of its own; a service
//   without `listen` has a name and some route to it.
//
// Thread safety: none; one per load, like Reader.
class SniKeys {
 public:
  static absl::Span<const char* const> Keys();  // sni_routes, sni_timeout

  // The keys of `table` (a service's own) and [defaults] (`scope`) into *out;
  // out->protocol is already read.
  void Read(Reader& reader, const toml::table& table, const Scope& scope,
            Server::Service* out);
  // Once every service is read: the cross-service rules above.
  // `services[i]` was read from the table at `at[i]`.
  void CheckServices(Reader& reader, const std::vector<Server::Service>& services,
                     const std::vector<toml::source_region>& at) const;

 private:
  // Where each route's `service` value is, per service (in Read order).
  std::vector<std::vector<toml::source_region>> route_at_;
};

}  // namespace l4lb::conf
