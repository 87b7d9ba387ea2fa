#include "conf/config.h"

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

#include "conf/admission_keys.h"
#include "conf/backend_keys.h"
#include "conf/reader.h"
#include "conf/sni_keys.h"
#include "conf/source_keys.h"
#include "health/checker.h"
#include "health/probe.h"
#include "l4lb/admin/auth.h"
#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/balancer/policy.h"
#include "l4lb/net/address.h"
#include "l4lb/net/keepalive.h"

namespace l4lb::conf {
namespace {

using Protocol = Server::Protocol;

// What a [[service]] (and [defaults]) may hold: every Server::Service field but
// `admission`, whose keys are AdmissionKeys::Keys().
constexpr const char* kServiceKeys[] = {"name",
                                        "protocol",
                                        "listen",
                                        "backends",
                                        "hash_key",
                                        "balance",
                                        "balance_factor",
                                        "maglev_table_size",
                                        "connect_timeout",
                                        "connect_retries",
                                        "idle_timeout",
                                        "health",
                                        "kill_on_down",
                                        "client_keepalive",
                                        "backend_keepalive",
                                        "client_fin_timeout",
                                        "client_timeout",
                                        "backend_timeout",
                                        "source",
                                        "transparent",
                                        "defer_accept",
                                        "backend_tfo",
                                        "slow_start",
                                        "affinity_group",
                                        "affinity_ttl",
                                        "udp_idle_timeout",
                                        "udp_max_sessions",
                                        "max_responses",
                                        "dns_refresh",
                                        "dns_servers"};
// Meaningless for TCP: set in a TCP service's own table they are a mistake (from
// [defaults] they may be meant for the UDP services).
constexpr const char* kUdpOnlyKeys[] = {"udp_idle_timeout", "udp_max_sessions", "max_responses"};
// The same the other way: a datagram has no keepalive and no half-close.
constexpr const char* kTcpOnlyKeys[] = {"client_keepalive", "backend_keepalive",
                                        "client_fin_timeout", "client_timeout",
                                        "backend_timeout",    "source",
                                        "transparent",        "defer_accept",
                                        "backend_tfo"};
// Identity, not policy: never inherited.
constexpr const char* kNotDefaults[] = {"name", "listen"};
constexpr const char* kHealthKeys[] = {"check",     "interval",  "timeout",     "rise",
                                       "fall",      "send",      "expect",      "port",
                                       "http_path", "http_host", "http_status", "passive"};
constexpr const char* kRootKeys[] = {"admin", "defaults", "service"};
constexpr const char* kAdminKeys[] = {"listen", "token_file", "allow_no_token"};

// Sessions a UDP service may keep per worker: enough for any real load, low
// enough that a typo (an extra digit or three) is caught before it costs memory.
constexpr int64_t kMaxUdpSessions = 10'000'000;

// kServiceKeys, the admission keys (admission_keys.h) and the SNI keys
// (sni_keys.h): what CheckKeys takes in a [[service]] and in [defaults].
absl::Span<const char* const> ServiceKeys() {
  static const std::vector<const char*>* const keys = [] {
    auto* all = new std::vector<const char*>(std::begin(kServiceKeys), std::end(kServiceKeys));
    for (const absl::Span<const char* const> more : {AdmissionKeys::Keys(), SniKeys::Keys()}) {
      all->insert(all->end(), more.begin(), more.end());
    }
    return all;
  }();
  return *keys;
}

bool IsPrime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

// One `listen` entry, kept to find overlaps with later ones.
struct ListenEntry {
  size_t service = 0;
  Protocol protocol = Protocol::kTcp;
  int family = 0;
  std::string host;  // the address with port 0: "0.0.0.0:0", "[::1]:0"
  bool wildcard = false;
  uint16_t first = 0;
  uint16_t last = 0;
  std::string text;
  toml::source_region at;
};

// Loader turns a parsed document into services, through Reader's typed readers.
class Loader : public Reader {
 public:
  explicit Loader(std::string file) : Reader(file), admission_(file) {}

  absl::StatusOr<Config> Load(const toml::table& root);

 private:
  void ReadAdmin(const toml::table& root);
  void ReadService(const toml::table& table, const toml::table* defaults);
  void ReadListen(const toml::table& table, Server::Service* service);
  void ReadHealth(const toml::table& table, const toml::table* defaults,
                  health::HealthOptions* out);
  void CheckOverlap(const ListenEntry& entry);
  void CheckAffinity(const Server::Service& service, const toml::node* ttl,
                     const toml::node* group);
  std::string ServiceName(size_t index) const;

  AdmissionKeys admission_;
  SniKeys sni_;
  std::vector<Server::Service> services_;
  std::vector<toml::source_region> service_at_;  // each service's [[service]] header
  std::vector<ListenEntry> listen_;
  std::optional<admin::AdminServer::Options> admin_;
};

absl::StatusOr<Config> Loader::Load(const toml::table& root) {
  CheckKeys(root, kRootKeys, "the file (want [defaults], [[service]] or [admin])");
  ReadAdmin(root);
  const toml::table* defaults = SubTable(&root, "defaults", "defaults");
  if (defaults != nullptr) {
    CheckKeys(*defaults, ServiceKeys(), "[defaults]");
    for (const char* key : kNotDefaults) {
      if (const toml::node* node = defaults->get(key)) {
        Fail(node->source(), absl::StrCat(key,
                                          ": not allowed in [defaults]; every service "
                                          "sets its own"));
      }
    }
    if (const toml::table* health = SubTable(defaults, "health", "health")) {
      CheckKeys(*health, kHealthKeys, "[defaults.health]");
    }
  }
  const toml::node* services = root.get("service");
  if (ok() && services == nullptr) {
    toml::source_region start;
    start.begin = {1, 1};
    Fail(start, "no [[service]] table: nothing to listen on");
  } else if (ok() && !services->is_array_of_tables()) {
    Fail(services->source(),
         absl::StrCat("service: want [[service]] tables (double brackets, one per service), got ",
                      TypeName(*services)));
  }
  for (size_t i = 0; ok() && i < services->as_array()->size(); ++i) {
    ReadService(*services->as_array()->get(i)->as_table(), defaults);
  }
  if (ok()) sni_.CheckServices(*this, services_, service_at_);
  if (!ok()) return error();
  return Config{.services = std::move(services_), .admin = std::move(admin_)};
}

void Loader::ReadAdmin(const toml::table& root) {
  const toml::table* table = SubTable(&root, "admin", "admin");
  if (table == nullptr) return;
  CheckKeys(*table, kAdminKeys, "[admin]");
  const Scope scope{.own = table, .defaults = nullptr, .prefix = "admin."};
  std::string listen;
  const toml::node* listen_node = ReadString(scope, "listen", &listen);
  if (!ok()) return;
  if (listen_node == nullptr) {
    return Fail(table->source(), "admin.listen: required, e.g. listen = \"127.0.0.1:9100\"");
  }
  absl::StatusOr<net::SocketAddress> address = net::SocketAddress::Parse(listen);
  if (!address.ok()) {
    return Fail(listen_node->source(), absl::StrCat("admin.listen: ", address.status().message()));
  }
  admin::AdminServer::Options options{.listen = *address, .token = ""};
  std::string path;
  if (const toml::node* node = ReadString(scope, "token_file", &path)) {
    // Relative to the config file, as allow_file and deny_file are.
    const size_t slash = file().rfind('/');
    if (!path.empty() && path[0] != '/' && slash != std::string::npos) {
      path = file().substr(0, slash + 1) + path;
    }
    absl::StatusOr<std::string> token = admin::ReadToken(path);
    if (!token.ok()) {
      return Fail(node->source(), absl::StrCat("admin.token_file: ", token.status().message()));
    }
    options.token = *std::move(token);
  }
  bool allow_no_token = false;
  ReadBool(scope, "allow_no_token", &allow_no_token);
  if (!ok()) return;
  if (absl::Status exposed = admin::CheckExposure(*address, !options.token.empty(), allow_no_token);
      !exposed.ok()) {
    return Fail(listen_node->source(),
                absl::StrCat("admin.listen: ", exposed.message(),
                             " (in this file: token_file = \"FILE\" or allow_no_token = true)"));
  }
  admin_ = std::move(options);
}

std::string Loader::ServiceName(size_t index) const {
  const std::string& name = services_[index].name;
  return name.empty() ? absl::StrCat("#", index + 1) : absl::StrCat("\"", name, "\"");
}

void Loader::ReadService(const toml::table& table, const toml::table* defaults) {
  CheckKeys(table, ServiceKeys(), "[[service]]");
  const Scope scope{.own = &table, .defaults = defaults, .prefix = ""};
  Server::Service service;
  if (const toml::node* name = ReadString(scope, "name", &service.name)) {
    if (service.name.empty()) Fail(name->source(), "name: empty");
    for (size_t i = 0; i < services_.size(); ++i) {
      if (services_[i].name == service.name) {
        Fail(name->source(), absl::StrCat("name: \"", service.name,
                                          "\" is taken by the service at ", At(service_at_[i])));
      }
    }
  }
  std::string protocol = "tcp";
  if (const toml::node* node = ReadString(scope, "protocol", &protocol)) {
    if (protocol == "udp") {
      service.protocol = Protocol::kUdp;
    } else if (protocol != "tcp") {
      Fail(node->source(), absl::StrCat("protocol: \"", protocol, "\": want tcp or udp"));
    }
  }
  if (service.protocol == Protocol::kTcp) {
    for (const char* key : kUdpOnlyKeys) {
      if (const toml::node* node = table.get(key)) {
        Fail(node->source(), absl::StrCat(key, ": only for protocol = \"udp\""));
      }
    }
  } else {
    for (const char* key : kTcpOnlyKeys) {
      if (const toml::node* node = table.get(key)) {
        Fail(node->source(), absl::StrCat(key, ": only for tcp services"));
      }
    }
  }
  ReadListen(table, &service);
  ReadBackends(*this, table, scope, &service);
  std::string hash_key;
  if (const toml::node* node = ReadString(scope, "hash_key", &hash_key)) {
    absl::StatusOr<backend::HashKey> parsed = backend::ParseHashKey(hash_key);
    if (parsed.ok()) {
      service.hash_key = *parsed;
    } else {
      Fail(node->source(), absl::StrCat("hash_key: ", parsed.status().message()));
    }
  }
  std::string balance;
  if (const toml::node* node = ReadString(scope, "balance", &balance)) {
    absl::StatusOr<balancer::Balance> parsed = balancer::ParseBalance(balance);
    if (!parsed.ok()) {
      Fail(node->source(), absl::StrCat("balance: ", parsed.status().message()));
    } else if (*parsed != balancer::Balance::kMaglev && service.protocol == Protocol::kUdp &&
               table.get("balance") != nullptr) {
      Fail(node->source(), "balance: only maglev for udp services");
    } else if (service.protocol == Protocol::kTcp) {
      service.balance = *parsed;
    }
  }
  if (const toml::node* node = Find(scope, "balance_factor")) {
    const std::optional<double> f = node->value<double>();
    if (!f || !(*f > 1.0 && *f <= 100.0)) {
      Fail(node->source(), "balance_factor: want a number above 1 and at most 100, e.g. 1.25");
    } else {
      service.balance_factor = *f;
    }
  }
  if (const toml::node* node =
          ReadInt(scope, "maglev_table_size", 1, UINT32_MAX, &service.maglev_table_size)) {
    if (!IsPrime(service.maglev_table_size)) {
      Fail(node->source(),
           absl::StrCat("maglev_table_size: ", service.maglev_table_size, " is not prime"));
    }
  }
  ReadDuration(scope, "connect_timeout", /*zero_ok=*/false, &service.connect_timeout);
  ReadInt(scope, "connect_retries", 0, 8, &service.connect_retries);
  ReadDuration(scope, "idle_timeout", /*zero_ok=*/true, &service.idle_timeout);
  ReadBool(scope, "kill_on_down", &service.kill_on_down);
  if (service.protocol == Protocol::kTcp) {
    for (const auto& [key, keepalive] : {std::pair{"client_keepalive", &service.client_keepalive},
                                         std::pair{"backend_keepalive", &service.backend_keepalive}}) {
      std::string text;
      if (const toml::node* node = ReadString(scope, key, &text)) {
        absl::StatusOr<net::Keepalive> parsed = net::ParseKeepalive(text);
        if (parsed.ok()) {
          *keepalive = *parsed;
        } else {
          Fail(node->source(), absl::StrCat(key, ": ", parsed.status().message()));
        }
      }
    }
    ReadDuration(scope, "client_fin_timeout", /*zero_ok=*/true, &service.client_fin_timeout);
    ReadDuration(scope, "client_timeout", /*zero_ok=*/true, &service.client_timeout);
    ReadDuration(scope, "backend_timeout", /*zero_ok=*/true, &service.backend_timeout);
    ReadSourceKeys(*this, scope, &service);
    ReadBool(scope, "defer_accept", &service.defer_accept);
    ReadBool(scope, "backend_tfo", &service.backend_tfo);
  }
  ReadDuration(scope, "slow_start", /*zero_ok=*/true, &service.slow_start);
  const toml::node* group = ReadString(scope, "affinity_group", &service.affinity_group);
  ReadDuration(scope, "affinity_ttl", /*zero_ok=*/false, &service.affinity_ttl);
  CheckAffinity(service, group != nullptr ? Find(scope, "affinity_ttl") : nullptr, group);
  ReadDuration(scope, "udp_idle_timeout", /*zero_ok=*/false, &service.udp_idle_timeout);
  ReadInt(scope, "udp_max_sessions", 1, kMaxUdpSessions, &service.udp_max_sessions);
  ReadInt(scope, "max_responses", 0, UINT32_MAX, &service.max_responses);
  admission_.Read(*this, scope, service.protocol, &service.admission);
  sni_.Read(*this, table, scope, &service);
  // A TCP connect says nothing about a UDP server (most listen on UDP alone):
  // UDP services are probed only when told how (check = "udp" or "dns").
  if (service.protocol == Protocol::kUdp)
    service.health.probe.kind = health::ProbeSpec::Kind::kNone;
  ReadHealth(table, defaults, &service.health);
  services_.push_back(std::move(service));
  service_at_.push_back(table.source());
}

void Loader::ReadListen(const toml::table& table, Server::Service* service) {
  const toml::node* node = table.get("listen");
  // Required, unless another service's sni_routes send clients here (a pool):
  // SniKeys::CheckServices tells, once every service is read.
  if (node == nullptr) return;
  const toml::array* entries = node->as_array();
  if (entries == nullptr) {
    return Fail(node->source(),
                absl::StrCat("listen: want an array like [\"0.0.0.0:80\"], got ", TypeName(*node)));
  }
  if (entries->empty()) {
    return Fail(node->source(), "listen: empty; want at least one ADDRESS:PORT");
  }
  for (const toml::node& entry : *entries) {
    if (!entry.is_string()) {
      return Fail(entry.source(),
                  absl::StrCat("listen: want strings like \"0.0.0.0:80\", got ", TypeName(entry)));
    }
    const std::string& text = entry.as_string()->get();
    absl::StatusOr<std::vector<net::SocketAddress>> addresses = net::ParseListenAddress(text);
    if (!addresses.ok()) {
      return Fail(entry.source(), absl::StrCat("listen: ", addresses.status().message()));
    }
    net::SocketAddress host = addresses->front();
    host.set_port(0);
    ListenEntry listen{.service = services_.size(),
                       .protocol = service->protocol,
                       .family = host.family(),
                       .host = host.ToString(),
                       .wildcard = host.is_wildcard(),
                       .first = addresses->front().port(),
                       .last = addresses->back().port(),
                       .text = text,
                       .at = entry.source()};
    CheckOverlap(listen);
    listen_.push_back(std::move(listen));
    service->listen.insert(service->listen.end(), addresses->begin(), addresses->end());
  }
}

// Two listeners overlap when some port of one is a port of the other, on the same
// protocol and address family, and the addresses are equal or one is the
// wildcard (0.0.0.0, [::]): the kernel would split clients between them, or refuse.
void Loader::CheckOverlap(const ListenEntry& entry) {
  if (entry.first == 0) return;  // port 0: each binds a free port of its own
  for (const ListenEntry& other : listen_) {
    if (other.first == 0 || other.protocol != entry.protocol || other.family != entry.family ||
        entry.last < other.first || other.last < entry.first) {
      continue;
    }
    if (other.host != entry.host && !other.wildcard && !entry.wildcard) continue;
    const std::string whose = other.service == entry.service
                                  ? "this service"
                                  : absl::StrCat("service ", ServiceName(other.service));
    return Fail(entry.at, absl::StrCat("listen: \"", entry.text, "\" overlaps \"", other.text,
                                       "\" of ", whose, " at ", At(other.at)));
  }
}

// A group is one table with one expiry: its services must agree on the ttl.
void Loader::CheckAffinity(const Server::Service& service, const toml::node* ttl,
                           const toml::node* group) {
  if (service.affinity_group.empty()) return;
  for (size_t i = 0; i < services_.size(); ++i) {
    const Server::Service& other = services_[i];
    if (other.affinity_group != service.affinity_group ||
        other.affinity_ttl == service.affinity_ttl) {
      continue;
    }
    return Fail(
        (ttl != nullptr ? ttl : group)->source(),
        absl::StrCat("affinity_ttl: ", absl::FormatDuration(service.affinity_ttl), " but service ",
                     ServiceName(i), " in affinity group \"", service.affinity_group, "\" has ",
                     absl::FormatDuration(other.affinity_ttl), " (one group, one ttl)"));
  }
}

void Loader::ReadHealth(const toml::table& table, const toml::table* defaults,
                        health::HealthOptions* out) {
  const toml::table* own = SubTable(&table, "health", "health");
  if (own != nullptr) CheckKeys(*own, kHealthKeys, "[service.health]");
  const Scope scope{
      .own = own, .defaults = SubTable(defaults, "health", "health"), .prefix = "health."};
  std::string text;
  const toml::node* check = ReadString(scope, "check", &text);
  if (check != nullptr) {
    absl::StatusOr<health::ProbeSpec::Kind> kind = health::ParseProbeKind(text);
    if (!kind.ok())
      return Fail(check->source(), absl::StrCat("health.check: ", kind.status().message()));
    out->probe.kind = *kind;
  }
  ReadDuration(scope, "interval", /*zero_ok=*/false, &out->interval);
  ReadDuration(scope, "timeout", /*zero_ok=*/false, &out->timeout);
  ReadInt(scope, "rise", 1, 100, &out->rise);
  ReadInt(scope, "fall", 1, 100, &out->fall);
  for (auto [key, field] : {std::pair{"send", &out->probe.send}, {"expect", &out->probe.expect}}) {
    if (const toml::node* node = ReadString(scope, key, &text)) {
      absl::StatusOr<std::string> bytes = health::Unescape(text);
      if (!bytes.ok()) {
        return Fail(node->source(), absl::StrCat("health.", key, ": ", bytes.status().message()));
      }
      *field = *std::move(bytes);
    }
  }
  if (out->probe.kind == health::ProbeSpec::Kind::kSendExpect && out->probe.expect.empty()) {
    return Fail(check->source(),
                "health.expect: required by check = \"send_expect\" (what the "
                "reply starts with)");
  }
  ReadInt(scope, "port", 0, 65535, &out->probe.port);
  if (const toml::node* node = ReadString(scope, "http_path", &out->probe.http_path)) {
    if (!absl::StartsWith(out->probe.http_path, "/")) {
      return Fail(node->source(), absl::StrCat("health.http_path: \"", out->probe.http_path,
                                               "\": want a path like /healthz"));
    }
  }
  ReadString(scope, "http_host", &out->probe.http_host);
  if (const toml::node* node = ReadString(scope, "http_status", &text)) {
    absl::StatusOr<std::vector<char>> statuses = health::ParseHttpStatuses(text);
    if (!statuses.ok()) {
      return Fail(node->source(),
                  absl::StrCat("health.http_status: ", statuses.status().message()));
    }
    out->probe.http_statuses = *std::move(statuses);
  }
  ReadBool(scope, "passive", &out->passive);
}

}  // namespace

absl::StatusOr<Config> LoadConfigText(absl::string_view text, const std::string& name) {
  Loader loader(name);
  toml::parse_result parsed =
      toml::parse(std::string_view(text.data(), text.size()), std::string_view(name));
  if (!parsed) {
    const std::string_view what = parsed.error().description();
    loader.Fail(parsed.error().source(), absl::string_view(what.data(), what.size()));
    return loader.error();
  }
  return loader.Load(parsed.table());
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return LoadConfigText(*text, path);
}

absl::StatusOr<std::vector<Server::Service>> LoadConfigString(absl::string_view text,
                                                              const std::string& name) {
  absl::StatusOr<Config> config = LoadConfigText(text, name);
  if (!config.ok()) return config.status();
  return std::move(config->services);
}

absl::StatusOr<std::vector<Server::Service>> LoadConfig(const std::string& path) {
  absl::StatusOr<Config> config = LoadConfigFile(path);
  if (!config.ok()) return config.status();
  return std::move(config->services);
}

}  // namespace l4lb::conf
