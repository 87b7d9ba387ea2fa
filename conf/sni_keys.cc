#include "conf/sni_keys.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "l4lb/tls/sni_routes.h"

namespace l4lb::conf {
namespace {

constexpr const char* kKeys[] = {"sni_routes", "sni_timeout"};
constexpr const char* kRouteKeys[] = {"names", "service"};

}  // namespace

absl::Span<const char* const> SniKeys::Keys() { return kKeys; }

void SniKeys::Read(Reader& reader, const toml::table& table, const Scope& scope,
                   Server::Service* out) {
  std::vector<toml::source_region>& route_at = route_at_.emplace_back();
  if (scope.defaults != nullptr) {
    if (const toml::node* node = scope.defaults->get("sni_routes")) {
      return reader.Fail(node->source(),
                         "sni_routes: not allowed in [defaults]; each front service sets its own");
    }
  }
  reader.ReadDuration(scope, "sni_timeout", /*zero_ok=*/false, &out->sni_timeout);
  const toml::node* node = table.get("sni_routes");
  if (node == nullptr) {
    if (const toml::node* timeout = table.get("sni_timeout")) {
      reader.Fail(timeout->source(), "sni_timeout: needs sni_routes in the same service");
    }
    return;
  }
  if (out->protocol != Server::Protocol::kTcp) {
    return reader.Fail(node->source(), "sni_routes: only for tcp services");
  }
  const toml::array* routes = node->as_array();
  if (routes == nullptr || routes->empty()) {
    return reader.Fail(node->source(),
                       "sni_routes: want routes like [{ names = [\"a.example.com\"], service = "
                       "\"site-a\" }]");
  }
  std::vector<std::pair<std::vector<std::string>, int>> all;
  for (const toml::node& entry : *routes) {
    const toml::table* route = entry.as_table();
    if (route == nullptr) {
      return reader.Fail(entry.source(),
                         absl::StrCat("sni_routes: want tables like { names = [...], service = "
                                      "\"...\" }, got ",
                                      TypeName(entry)));
    }
    reader.CheckKeys(*route, kRouteKeys, "an sni route (want names, service)");
    const Scope in_route{.own = route, .defaults = nullptr, .prefix = "sni_routes: "};
    Server::Service::SniRoute& r = out->sni_routes.emplace_back();
    const toml::node* service = reader.ReadString(in_route, "service", &r.service);
    if (!reader.ok()) return;
    if (service == nullptr) return reader.Fail(entry.source(), "sni_routes: service: required");
    route_at.push_back(service->source());
    const toml::node* names = route->get("names");
    const toml::array* list = names != nullptr ? names->as_array() : nullptr;
    if (list == nullptr || list->empty()) {
      return reader.Fail((names != nullptr ? names : &entry)->source(),
                         "sni_routes: names: want names like [\"a.example.com\", "
                         "\"*.example.com\"]");
    }
    for (const toml::node& name : *list) {
      if (!name.is_string()) {
        return reader.Fail(name.source(), absl::StrCat("sni_routes: names: want strings, got ",
                                                       TypeName(name)));
      }
      r.names.push_back(name.as_string()->get());
      // One name at a time: a malformed or repeated one is the first error,
      // and it then points at the name.
      all.emplace_back(std::vector<std::string>{r.names.back()}, 0);
      if (absl::StatusOr<tls::SniRoutes> so_far = tls::SniRoutes::Build(all, {}); !so_far.ok()) {
        return reader.Fail(name.source(),
                           absl::StrCat("sni_routes: ", so_far.status().message()));
      }
    }
  }
}

void SniKeys::CheckServices(Reader& reader, const std::vector<Server::Service>& services,
                            const std::vector<toml::source_region>& at) const {
  std::vector<bool> routed_to(services.size(), false);
  for (size_t s = 0; s < services.size() && s < route_at_.size(); ++s) {
    for (size_t r = 0; r < services[s].sni_routes.size() && r < route_at_[s].size(); ++r) {
      const std::string& name = services[s].sni_routes[r].service;
      size_t target = 0;
      while (target < services.size() && services[target].name != name) ++target;
      const std::string what = absl::StrCat("sni_routes: service \"", name, "\": ");
      const toml::source_region& where = route_at_[s][r];
      if (target == services.size()) {
        return reader.Fail(where, absl::StrCat(what, "no [[service]] has that name"));
      }
      const Server::Service& pool = services[target];
      if (target == s) {
        return reader.Fail(where, absl::StrCat(what, "is this service (its own backends are "
                                                     "the default route already)"));
      }
      if (pool.protocol != Server::Protocol::kTcp) {
        return reader.Fail(where, absl::StrCat(what, "is not a tcp service"));
      }
      if (!pool.sni_routes.empty()) {
        return reader.Fail(where, absl::StrCat(what, "has sni_routes of its own (a route leads "
                                                     "to backends, not to another lookup)"));
      }
      if (pool.backends.empty()) return reader.Fail(where, absl::StrCat(what, "has no backends"));
      routed_to[target] = true;
    }
  }
  for (size_t s = 0; s < services.size(); ++s) {
    if (!services[s].listen.empty() || routed_to[s]) continue;
    return reader.Fail(at[s], services[s].protocol == Server::Protocol::kTcp
                                  ? "listen: required (or name this service in another "
                                    "service's sni_routes), e.g. listen = [\"0.0.0.0:80\"]"
                                  : "listen: required, e.g. listen = [\"0.0.0.0:53\"]");
  }
}

}  // namespace l4lb::conf
