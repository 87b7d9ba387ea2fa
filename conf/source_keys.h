#pragma once

#include "conf/reader.h"
#include "l4lb/server.h"

namespace l4lb::conf {

// The local address of a TCP service's backend connections: `source` (the
// host's own addresses, taken in turn) or `transparent = true` (each client's
// own address, net/transparent.h), from the service's table or [defaults]. Both
// at once are refused at `transparent`: which address would win is not for us
// to guess. The loader calls it for TCP services only (kTcpOnlyKeys).
void ReadSourceKeys(Reader& reader, const Scope& scope, Server::Service* service);

}  // namespace l4lb::conf
