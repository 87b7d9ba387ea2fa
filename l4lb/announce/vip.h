#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::announce {

// A service address (VIP) that l4lb puts on one of its host's interfaces while it
// is ready to serve it, for a routing daemon to announce (README "Several
// instances behind ECMP"): BIRD's `protocol direct` (or FRR's `redistribute
// connected`) sees the address appear and disappear and announces or withdraws
// the route. Nothing in l4lb speaks BGP.
struct Vip {
  net::SocketAddress address;  // port 0
  int prefix_len = 32;         // 32 / 128: a host route
  std::string device = "lo";
  int ifindex = 0;  // of `device`, looked up by ParseVip
};

// "ADDRESS/PREFIX[,dev=NAME]" ("192.0.2.10/32", "2001:db8::10/128,dev=lo");
// the device (default lo) must exist. Errors name what is wrong:
// `"192.0.2.10/40": prefix length must be 0..32`, `dev=lo0: no such interface`.
absl::StatusOr<Vip> ParseVip(absl::string_view text);

// "192.0.2.10/32 dev lo", for logs.
std::string VipText(const Vip& vip);

// Adds the address to its device through rtnetlink (RTM_NEWADDR; what `ip addr
// add` does), scope global so that routing daemons take it. Already there (a
// previous l4lb killed before it could remove it, or an operator) is fine: l4lb
// owns it from now on. Needs CAP_NET_ADMIN.
absl::Status AddVip(const Vip& vip);

// Removes it (RTM_DELADDR); already gone is fine.
absl::Status RemoveVip(const Vip& vip);

}  // namespace l4lb::announce
