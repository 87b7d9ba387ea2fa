#pragma once

#include "conf/reader.h"
#include "l4lb/server.h"

namespace l4lb::conf {

// The keys of a [[service]] (or [defaults]) that say where its backends are:
//
//   backends = ["10.0.0.1:21", "ftp1.farm.internal:21=2", { address = "10.0.0.3:21", backup = true
//   }] dns_refresh = "30s"            # named backends: resolved again this often dns_servers =
//   ["127.0.0.1:5353"]  # ... asking these (default: /etc/resolv.conf)
//
// A backend whose address is a host name stays a named, unresolved spec
// (BackendSpec::host, its `origin` "FILE:LINE:COL: backends" for the error if
// it never resolves): l4lb/dns/ resolves it, so loading stays pure (no I/O but
// the file). Mistakes go to reader.Fail() at the offending key or value.
//
// Thread safety: none; called by the loader, on one thread.
void ReadBackends(Reader& reader, const toml::table& table, const Scope& scope,
                  Server::Service* service);

}  // namespace l4lb::conf
