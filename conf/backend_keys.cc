#include "conf/backend_keys.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/dns/servers.h"

namespace l4lb::conf {
namespace {

constexpr const char* kBackendKeys[] = {"address", "weight", "backup"};

// "ADDRESS[:PORT][=WEIGHT][@backup]" or
// {address = "ADDRESS[:PORT]", weight = N, backup = true}.
void ReadBackend(Reader& reader, const toml::node& entry, Server::Service* service) {
  std::string text;
  const toml::node* weight = nullptr;
  bool backup = false;
  if (entry.is_string()) {
    text = entry.as_string()->get();
  } else if (const toml::table* table = entry.as_table()) {
    reader.CheckKeys(*table, kBackendKeys, "a backend (want address, weight, backup)");
    const Scope scope{.own = table, .defaults = nullptr, .prefix = "backends: "};
    if (reader.ReadString(scope, "address", &text) == nullptr && reader.ok()) {
      return reader.Fail(entry.source(), "backends: address: required");
    }
    if (absl::StrContains(text, '=')) {
      return reader.Fail(entry.source(),
                         absl::StrCat("backends: \"", text, "\": the weight goes in weight = N"));
    }
    if (absl::StrContains(text, '@')) {
      return reader.Fail(entry.source(),
                         absl::StrCat("backends: \"", text, "\": a backup is backup = true"));
    }
    weight = table->get("weight");
    reader.ReadBool(scope, "backup", &backup);
  } else {
    return reader.Fail(entry.source(),
                       absl::StrCat("backends: want strings like \"10.0.0.1:80=2\" or tables like "
                                    "{address = \"10.0.0.1:80\", weight = 2}, got ",
                                    TypeName(entry)));
  }
  if (!reader.ok()) return;
  if (absl::StrContains(text, ',')) {
    return reader.Fail(entry.source(),
                       absl::StrCat("backends: \"", text, "\": one backend per string"));
  }
  absl::StatusOr<std::vector<backend::BackendSpec>> spec = backend::ParseBackendList(text);
  if (!spec.ok()) {
    // An address alone: the client's port is used (port-range listeners).
    absl::StatusOr<std::vector<backend::BackendSpec>> portless =
        backend::ParseBackendList(text, backend::BackendPorts::kFromListener);
    if (!portless.ok()) {
      return reader.Fail(entry.source(), absl::StrCat("backends: ", spec.status().message()));
    }
    spec = std::move(portless);
  }
  backend::BackendSpec& b = spec->front();
  b.backup |= backup;
  if (!b.resolved()) b.origin = absl::StrCat(reader.file(), ":", At(entry.source()), ": backends");
  if (weight != nullptr) {
    const Scope scope{.own = entry.as_table(), .defaults = nullptr, .prefix = "backends: "};
    reader.ReadInt(scope, "weight", 1, backend::kMaxWeight, &b.weight);
  }
  for (const backend::BackendSpec& other : service->backends) {
    if (other.name == b.name) {
      return reader.Fail(entry.source(), absl::StrCat("backends: \"", text, "\": listed twice"));
    }
    if ((other.target_port() == 0) != (b.target_port() == 0)) {
      return reader.Fail(
          entry.source(),
          absl::StrCat("backends: \"", text, "\": give every backend a port (", other.name, " has ",
                       other.target_port() == 0 ? "none" : "one",
                       ") or none (then clients keep the port they connected to)"));
    }
  }
  service->backends.push_back(std::move(b));
}

}  // namespace

void ReadBackends(Reader& reader, const toml::table& table, const Scope& scope,
                  Server::Service* service) {
  const toml::node* node = reader.Find(scope, "backends");
  // A front service's own backends are its SNI default route: optional.
  if (node == nullptr && table.get("sni_routes") != nullptr) return;
  if (node == nullptr) {
    return reader.Fail(table.source(),
                       "backends: required, e.g. backends = [\"10.0.0.1:80\", \"10.0.0.2:80=2\"]");
  }
  const toml::array* entries = node->as_array();
  if (entries == nullptr) {
    return reader.Fail(
        node->source(),
        absl::StrCat("backends: want an array like [\"10.0.0.1:80\"], got ", TypeName(*node)));
  }
  if (entries->empty())
    return reader.Fail(node->source(), "backends: empty; want at least one backend");
  for (const toml::node& entry : *entries) ReadBackend(reader, entry, service);
  reader.ReadDuration(scope, "dns_refresh", /*zero_ok=*/false, &service->dns_refresh);
  if (const toml::node* servers = reader.Find(scope, "dns_servers")) {
    // ["10.0.0.53", "127.0.0.1:5353"] or one string, "10.0.0.53,10.0.0.54".
    std::string text;
    if (const auto* one = servers->as_string()) {
      text = one->get();
    } else if (const toml::array* list = servers->as_array()) {
      for (const toml::node& item : *list) {
        if (!item.is_string()) {
          return reader.Fail(item.source(),
                             "dns_servers: want addresses as strings, e.g. [\"10.0.0.53\"]");
        }
        absl::StrAppend(&text, text.empty() ? "" : ",", item.as_string()->get());
      }
    } else {
      return reader.Fail(servers->source(), "dns_servers: want [\"IP[:PORT]\", ...]");
    }
    absl::StatusOr<std::vector<net::SocketAddress>> parsed = dns::ParseServerList(text);
    if (!parsed.ok()) {
      return reader.Fail(servers->source(),
                         absl::StrCat("dns_servers: ", parsed.status().message()));
    }
    service->dns_servers = *std::move(parsed);
  }
}

}  // namespace l4lb::conf
