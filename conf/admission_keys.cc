#include "conf/admission_keys.h"

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace l4lb::conf {
namespace {

using admission::Cidr;

constexpr const char* kKeys[] = {"allow",
                                 "deny",
                                 "allow_file",
                                 "deny_file",
                                 "max_connections",
                                 "client_max_connections",
                                 "client_rate",
                                 "client_burst",
                                 "client_prefix_v4",
                                 "client_prefix_v6",
                                 "ban_after",
                                 "ban_window",
                                 "ban_time",
                                 "client_table_size",
                                 "client_bandwidth",
                                 "send_proxy",
                                 "accept_proxy_from",
                                 "proxy_timeout"};
// PROXY protocol is a TCP stream header: nothing carries it over UDP here.
// client_bandwidth bounds what a stream's splices read; a UDP session has no
// backpressure to apply it with (it could only drop datagrams).
constexpr const char* kTcpOnlyKeys[] = {"send_proxy", "accept_proxy_from", "proxy_timeout",
                                        "client_bandwidth"};
// What makes a per-client table exist: without one of these the client's prefix
// and the table's size describe nothing.
constexpr const char* kClientLimitKeys[] = {"client_max_connections", "client_rate",
                                            "client_bandwidth"};

// Bounds that catch a typo (a digit too many) before it costs memory or means
// "no limit" in disguise; far above any real farm.
constexpr int64_t kMaxServiceConnections = 10'000'000;
constexpr int64_t kMaxPerClient = 1'000'000;
constexpr int64_t kMinClientTable = 16;  // one entry per shard at least
constexpr int64_t kMaxClientTable = 100'000'000;

}  // namespace

AdmissionKeys::AdmissionKeys(const std::string& config_path) {
  const size_t slash = config_path.rfind('/');
  if (slash != std::string::npos) dir_ = config_path.substr(0, slash + 1);
}

absl::Span<const char* const> AdmissionKeys::Keys() { return kKeys; }

void AdmissionKeys::Read(Reader& reader, const Scope& scope, Server::Protocol protocol,
                         admission::AdmissionOptions* out) {
  const toml::node* allow = ReadCidrs(reader, scope, "allow", &out->allow);
  if (allow != nullptr && out->allow.empty()) {
    reader.Fail(allow->source(),
                "allow: empty, which would let everyone in; write allow = [\"0.0.0.0/0\", "
                "\"::/0\"] to mean that");
  }
  ReadCidrs(reader, scope, "deny", &out->deny);
  const size_t listed = out->allow.size();
  if (const toml::node* file = ReadCidrFile(reader, scope, "allow_file", &out->allow)) {
    if (out->allow.size() == listed) {
      reader.Fail(file->source(), absl::StrCat("allow_file: \"", file->as_string()->get(),
                                               "\": no addresses, which would let everyone in"));
    }
  }
  ReadCidrFile(reader, scope, "deny_file", &out->deny);
  reader.ReadInt(scope, "max_connections", 1, kMaxServiceConnections, &out->max_connections);
  ReadClient(reader, scope, &out->client);
  if (protocol == Server::Protocol::kUdp) {
    for (const char* key : kTcpOnlyKeys) {
      if (scope.own == nullptr) break;
      if (const toml::node* node = scope.own->get(key)) {
        reader.Fail(node->source(), absl::StrCat(key, ": only for protocol = \"tcp\""));
      }
    }
    out->client.bandwidth = 0;
    return;  // from [defaults] they are meant for the TCP services
  }
  ReadProxy(reader, scope, out);
}

const toml::node* AdmissionKeys::ReadCidrs(Reader& reader, const Scope& scope, const char* key,
                                           std::vector<Cidr>* out) {
  const toml::node* node = reader.Find(scope, key);
  if (node == nullptr) return nullptr;
  const toml::array* entries = node->as_array();
  if (entries == nullptr) {
    reader.Fail(node->source(),
                absl::StrCat(key, ": want an array like [\"10.0.0.0/8\"], got ", TypeName(*node)));
    return nullptr;
  }
  for (const toml::node& entry : *entries) {
    if (!entry.is_string()) {
      reader.Fail(entry.source(),
                  absl::StrCat(key, ": want strings like \"10.0.0.0/8\", got ", TypeName(entry)));
      return nullptr;
    }
    absl::StatusOr<Cidr> cidr = admission::ParseCidr(entry.as_string()->get());
    if (!cidr.ok()) {
      reader.Fail(entry.source(), absl::StrCat(key, ": ", cidr.status().message()));
      return nullptr;
    }
    out->push_back(*cidr);
  }
  return node;
}

const toml::node* AdmissionKeys::ReadCidrFile(Reader& reader, const Scope& scope, const char* key,
                                              std::vector<Cidr>* out) {
  std::string path;
  const toml::node* node = reader.ReadString(scope, key, &path);
  if (node == nullptr) return nullptr;
  if (path.empty()) {
    reader.Fail(node->source(), absl::StrCat(key, ": empty; want a file of CIDRs, one a line"));
    return nullptr;
  }
  // Relative to the config file, not to l4lb's working directory: the two
  // travel together (a config in /etc/l4lb naming "deny.txt" means its neighbour).
  if (path[0] != '/') path = dir_ + path;
  auto cached = files_.find(path);
  if (cached == files_.end()) {
    absl::StatusOr<std::string> text = ReadFile(path);
    absl::StatusOr<std::vector<Cidr>> cidrs =
        text.ok() ? admission::ParseCidrFile(*text, path) : text.status();
    if (!cidrs.ok()) {
      reader.Fail(node->source(), absl::StrCat(key, ": ", cidrs.status().message()));
      return nullptr;
    }
    cached = files_.emplace(path, *std::move(cidrs)).first;
  }
  out->insert(out->end(), cached->second.begin(), cached->second.end());
  return node;
}

void AdmissionKeys::ReadClient(Reader& reader, const Scope& scope,
                               admission::ClientLimits::Options* out) {
  reader.ReadInt(scope, "client_max_connections", 1, kMaxPerClient, &out->max_connections);
  std::string rate;
  if (const toml::node* node = reader.ReadString(scope, "client_rate", &rate)) {
    absl::StatusOr<double> parsed = admission::ParseRate(rate);
    if (!parsed.ok()) {
      return reader.Fail(node->source(), absl::StrCat("client_rate: ", parsed.status().message()));
    }
    out->rate = *parsed;
  }
  std::string bandwidth;
  if (const toml::node* node = reader.ReadString(scope, "client_bandwidth", &bandwidth)) {
    absl::StatusOr<uint64_t> parsed = admission::ParseBandwidth(bandwidth);
    if (!parsed.ok()) {
      return reader.Fail(node->source(),
                         absl::StrCat("client_bandwidth: ", parsed.status().message()));
    }
    out->bandwidth = *parsed;
  }
  reader.ReadInt(scope, "client_burst", 1, kMaxPerClient, &out->burst);
  reader.ReadInt(scope, "client_prefix_v4", 0, 32, &out->prefix_v4);
  reader.ReadInt(scope, "client_prefix_v6", 0, 128, &out->prefix_v6);
  reader.ReadInt(scope, "ban_after", 1, kMaxPerClient, &out->ban_after);
  reader.ReadDuration(scope, "ban_window", /*zero_ok=*/false, &out->ban_window);
  reader.ReadDuration(scope, "ban_time", /*zero_ok=*/false, &out->ban_time);
  reader.ReadInt(scope, "client_table_size", kMinClientTable, kMaxClientTable, &out->max_clients);

  constexpr const char* kRate[] = {"client_rate"};
  constexpr const char* kBan[] = {"ban_after"};
  Require(reader, scope, "client_burst", kRate, "the burst is the size of the rate's bucket");
  Require(reader, scope, "ban_after", kRate, "a ban counts refusals by rate");
  Require(reader, scope, "ban_window", kBan, "the window in which ban_after refusals ban");
  Require(reader, scope, "ban_time", kBan, "how long a ban lasts");
  for (const char* key : {"client_prefix_v4", "client_prefix_v6"}) {
    Require(reader, scope, key, kClientLimitKeys, "the prefix makes one client of a network");
  }
  Require(reader, scope, "client_table_size", kClientLimitKeys,
          "the table holds their per-client state");
}

void AdmissionKeys::ReadProxy(Reader& reader, const Scope& scope,
                              admission::AdmissionOptions* out) {
  using SendProxy = admission::AdmissionOptions::SendProxy;
  std::string send;
  if (const toml::node* node = reader.ReadString(scope, "send_proxy", &send)) {
    if (send == "v1") {
      out->send_proxy = SendProxy::kV1;
    } else if (send == "v2") {
      out->send_proxy = SendProxy::kV2;
    } else if (send == "off") {
      out->send_proxy = SendProxy::kOff;
    } else {
      reader.Fail(node->source(), absl::StrCat("send_proxy: \"", send, "\": want v1, v2 or off"));
    }
  }
  ReadCidrs(reader, scope, "accept_proxy_from", &out->accept_proxy_from);
  reader.ReadDuration(scope, "proxy_timeout", /*zero_ok=*/false, &out->proxy_timeout);
  constexpr const char* kAccept[] = {"accept_proxy_from"};
  Require(reader, scope, "proxy_timeout", kAccept, "it bounds the wait for a peer's PROXY header");
}

void AdmissionKeys::Require(Reader& reader, const Scope& scope, const char* key,
                            absl::Span<const char* const> needs, const char* why) {
  const toml::node* node = reader.Find(scope, key);
  if (node == nullptr) return;
  for (const char* need : needs) {
    if (reader.Find(scope, need) != nullptr) return;
  }
  reader.Fail(node->source(),
              absl::StrCat(key, ": needs ", absl::StrJoin(needs, " or "), " (", why, ")"));
}

}  // namespace l4lb::conf
