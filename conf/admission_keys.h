#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

#include "conf/reader.h"
#include "l4lb/admission/admission.h"
#include "l4lb/admission/cidr.h"
#include "l4lb/server.h"

namespace l4lb::conf {

// AdmissionKeys reads the access-control keys of a [[service]] (or [defaults])
// into Server::Service::admission: allow, deny, allow_file, deny_file,
// max_connections, the client_* limits, the ban_* keys and the PROXY protocol
// keys (README "Config file" lists them with their defaults).
//
// Rules beyond each value's own check, so that no key is silently ignored:
// - A key that only refines another needs it: client_burst and ban_after need
//   client_rate (a ban counts refusals by rate), ban_window and ban_time need
//   ban_after, client_prefix_v4/v6 and client_table_size need a per-client limit
//   (client_max_connections or client_rate), proxy_timeout needs
//   accept_proxy_from. The two may come from the service or from [defaults].
// - send_proxy, accept_proxy_from and proxy_timeout are TCP-only: in a UDP
//   service's own table they are errors; from [defaults] they are meant for the
//   TCP services and a UDP service does not take them.
// - allow = [] is an error (an empty allow list lets everyone in, the opposite
//   of what it looks like), and so is an allow_file with no address in it.
// - allow_file and deny_file are relative to the config file's directory; each
//   file is read once per load, however many services use it.
//
// Thread safety: none; one per load, like Reader.
class AdmissionKeys {
 public:
  // `config_path` is the config file's path (or the name standing for it).
  explicit AdmissionKeys(const std::string& config_path);

  // Every key above, for the loader's unknown-key check.
  static absl::Span<const char* const> Keys();

  // Fills *out from `scope` (a service's table and [defaults]); mistakes go to
  // reader.Fail() at the offending key or value.
  void Read(Reader& reader, const Scope& scope, Server::Protocol protocol,
            admission::AdmissionOptions* out);

 private:
  // key = ["CIDR", ...]: appends to *out; returns the node (null if absent or bad).
  const toml::node* ReadCidrs(Reader& reader, const Scope& scope, const char* key,
                              std::vector<admission::Cidr>* out);
  // key = "PATH": appends the file's prefixes to *out; returns the node.
  const toml::node* ReadCidrFile(Reader& reader, const Scope& scope, const char* key,
                                 std::vector<admission::Cidr>* out);
  void ReadClient(Reader& reader, const Scope& scope, admission::ClientLimits::Options* out);
  void ReadProxy(Reader& reader, const Scope& scope, admission::AdmissionOptions* out);
  // Fails at `key` (if set) when none of `needs` is set; `why` ends the message.
  void Require(Reader& reader, const Scope& scope, const char* key,
               absl::Span<const char* const> needs, const char* why);

  std::string dir_;  // the config file's directory, with a trailing '/'; "" for none
  absl::flat_hash_map<std::string, std::vector<admission::Cidr>> files_;  // by resolved path
};

}  // namespace l4lb::conf
