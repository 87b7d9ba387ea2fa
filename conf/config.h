#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/admin/admin_server.h"
#include "l4lb/server.h"

namespace l4lb::conf {

// LoadConfig reads the services of a config file (--config=FILE): TOML, one
// [[service]] table per service, every Server::Service field settable, and an
// optional [defaults] table that every service inherits key by key
// ([defaults.health] likewise). conf/examples/ has commented files; README.md
// ("Config file") lists every key.
//
//   [defaults]
//   connect_timeout = "2s"
//
//   [[service]]
//   name = "ftp"
//   listen = ["0.0.0.0:21", "0.0.0.0:30000-30099"]
//   backends = ["10.0.0.1", "10.0.0.2", "10.0.0.3=2"]
//   affinity_group = "ftp"
//   [service.health]
//   check = "ftp"
//
// Every mistake is one InvalidArgument error "FILE:LINE:COL: what is wrong",
// pointing at the offending key or value: TOML syntax, unknown keys (at any
// level), wrong types, bad values, no listener or backend, and listeners that
// overlap within or between services of the same protocol. A file that cannot be
// read is "FILE: <strerror>".
//
// The access-control keys (allow, deny, allow_file, deny_file, max_connections,
// client_*, ban_*, send_proxy, accept_proxy_from, proxy_timeout) fill
// Service::admission; conf/admission_keys.h has their rules. allow_file and
// deny_file are read here, at load, relative to FILE's directory.
//
// An optional [admin] table turns the admin endpoint on, like --admin,
// --admin_token_file and --admin_allow_no_token:
//
//   [admin]
//   listen = "127.0.0.1:9100"
//   token_file = "admin.token"   # relative to FILE's directory; read at load
//   allow_no_token = false       # true: a non-loopback listen without a token
//
// Thread safety: none needed; pure functions, called once at start-up.
absl::StatusOr<std::vector<Server::Service>> LoadConfig(const std::string& path);

// The same from text; `name` stands for FILE in errors and in resolving relative
// allow_file / deny_file paths ("t.toml": the working directory).
absl::StatusOr<std::vector<Server::Service>> LoadConfigString(absl::string_view text,
                                                              const std::string& name);

// Everything a file configures: the services and the [admin] table.
struct Config {
  std::vector<Server::Service> services;
  std::optional<admin::AdminServer::Options> admin;  // nullopt: no [admin] table
};
absl::StatusOr<Config> LoadConfigFile(const std::string& path);
absl::StatusOr<Config> LoadConfigText(absl::string_view text, const std::string& name);

}  // namespace l4lb::conf
