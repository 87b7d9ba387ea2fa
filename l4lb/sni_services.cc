#include "l4lb/sni_services.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4lb {

absl::StatusOr<std::vector<std::shared_ptr<const tls::SniRoutes>>> BuildSniRoutes(
    const std::vector<Server::Service>& services) {
  using Protocol = Server::Protocol;
  std::vector<bool> routed_to(services.size(), false);
  std::vector<std::shared_ptr<const tls::SniRoutes>> out(services.size());
  const auto find = [&services](const std::string& name) -> int {
    for (size_t s = 0; s < services.size(); ++s) {
      if (Server::ServiceName(services[s]) == name) return static_cast<int>(s);
    }
    return -1;
  };
  for (size_t s = 0; s < services.size(); ++s) {
    const Server::Service& service = services[s];
    const std::string name = Server::ServiceName(service);
    if (name.empty()) return absl::InvalidArgumentError("a service has no listener");
    if (service.sni_routes.empty()) {
      if (service.backends.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("service \"", name, "\": no backends"));
      }
      continue;
    }
    const std::string at = absl::StrCat("service \"", name, "\": sni_routes: ");
    if (service.protocol != Protocol::kTcp) {
      return absl::InvalidArgumentError(absl::StrCat(at, "only for tcp services"));
    }
    std::vector<std::pair<std::vector<std::string>, int>> routes;
    for (const Server::Service::SniRoute& route : service.sni_routes) {
      const int target = find(route.service);
      const std::string to = absl::StrCat(at, "service \"", route.service, "\": ");
      if (target < 0) return absl::InvalidArgumentError(absl::StrCat(to, "no such service"));
      const Server::Service& pool = services[target];
      if (static_cast<size_t>(target) == s) {
        return absl::InvalidArgumentError(absl::StrCat(
            to, "is this service; its own backends are the default route already"));
      }
      if (pool.protocol != Protocol::kTcp) {
        return absl::InvalidArgumentError(absl::StrCat(to, "is not a tcp service"));
      }
      if (!pool.sni_routes.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(to, "has sni_routes of its own (a route leads to backends, not to "
                             "another lookup)"));
      }
      routed_to[target] = true;
      routes.emplace_back(route.names, target);
    }
    const std::optional<int> default_route =
        service.backends.empty() ? std::nullopt : std::optional<int>(static_cast<int>(s));
    absl::StatusOr<tls::SniRoutes> built = tls::SniRoutes::Build(routes, default_route);
    if (!built.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(at, built.status().message()));
    }
    out[s] = std::make_shared<const tls::SniRoutes>(*std::move(built));
  }
  for (size_t s = 0; s < services.size(); ++s) {
    if (services[s].listen.empty() && !routed_to[s]) {
      return absl::InvalidArgumentError(
          absl::StrCat("service \"", Server::ServiceName(services[s]),
                       "\": no listener, and no sni_routes entry sends clients to it"));
    }
  }
  return out;
}

}  // namespace l4lb
