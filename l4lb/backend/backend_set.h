#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::backend {

// One configured backend server.
struct BackendSpec {
  net::SocketAddress address;
  uint32_t weight = 1;  // relative share of new connections, 1..kMaxWeight
  std::string name;     // address.ToString(): stable identity, seeds the Maglev permutation
  // Takes new clients only while no other (primary) backend is UP and ready
  // (HAProxy's `backup`); health-checked like any backend.
  bool backup = false;
  // A backend named by DNS ("ftp1.farm.internal:21"): the name as written. As
  // parsed, `address` is unset (AF_UNSPEC), `port` is the port (0: the client's)
  // and `name` the entry ("ftp1.farm.internal:21"); l4lb/dns/ replaces such a
  // spec by one per address the name resolves to (`host` and `port` kept,
  // `address` and `name` that address), so the data plane sees addresses only.
  std::string host;
  uint16_t port = 0;
  // Where a named entry was written, for errors found only when it is resolved:
  // "FILE:LINE:COL" of a config file, or "--backends".
  std::string origin;

  bool resolved() const { return address.family() != AF_UNSPEC; }
  // The port connections go to (0: the client's), resolved or not.
  uint16_t target_port() const { return resolved() ? address.port() : port; }
};

inline constexpr uint32_t kMaxWeight = 10000;

// Whether backend entries carry a port.
enum class BackendPorts : uint8_t {
  kRequired,      // "10.0.0.1:80": every connection goes to that port
  kFromListener,  // "10.0.0.1": port 0, meaning the port the client connected to
                  // (services listening on port ranges, e.g. FTP passive ports)
};

// Parses "10.0.0.1:80,10.0.0.2:80=3,[2001:db8::1]:80,10.0.0.9:80@backup":
// comma-separated ADDRESS:PORT (or ADDRESS alone with kFromListener; IPv6 in
// brackets either way), each optionally followed by "=WEIGHT" (default 1), then
// optionally "@backup". Errors name the entry: `"10.0.0.1:80=0": weight must be
// 1..10000`, `"10.0.0.9:80@spare": want @backup after the address or weight`.
// Empty lists, port 0 and repeated backends are errors. An ADDRESS that is not
// an IP literal but a host name ("ftp1.farm.internal:21", letters, digits, '-',
// '_' and dots, its last label not all digits) gives a named, unresolved spec.
absl::StatusOr<std::vector<BackendSpec>> ParseBackendList(
    absl::string_view text, BackendPorts ports = BackendPorts::kRequired);

}  // namespace l4lb::backend
