#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::announce {

// A service address (VIP) and how l4lb shows a routing daemon that it serves it
// (README "Several instances behind ECMP"). Two things on l4lb's host:
// - the address on `device` (lo): the kernel delivers the VIP's packets to
//   l4lb's listeners; there from l4lb's start to its exit;
// - a route VIP/PREFIX dev `device` in routing table `table`, which no rule
//   consults: the signal. BIRD's `protocol kernel { kernel table 200; learn; }`
//   (FRR: `ip import-table 200` + redistribute) sees it appear and go and
//   announces or withdraws the VIP. There only while l4lb can serve.
// Withdrawing the route, not the address, is what lets l4lb go on taking the
// packets the router still sends while it converges (announce/DESIGN.md).
struct Vip {
  net::SocketAddress address;  // port 0
  int prefix_len = 32;         // 32 / 128: a host route
  std::string device = "lo";
  int ifindex = 0;  // of `device`, looked up by ParseVip
  uint32_t table = 200;
};

// "ADDRESS/PREFIX[,dev=NAME][,table=N]" ("192.0.2.10/32",
// "2001:db8::10/128,dev=lo,table=201"); the device (default lo) must exist.
// Errors name what is wrong: `"192.0.2.10/40": prefix length must be 0..32`,
// `dev=lo0: no such interface`.
absl::StatusOr<Vip> ParseVip(absl::string_view text);

// "192.0.2.10/32 dev lo", for logs.
std::string VipText(const Vip& vip);

// Adds the address to its device through rtnetlink (RTM_NEWADDR; what `ip addr
// add` does), scope global. Already there is fine. Needs CAP_NET_ADMIN.
absl::Status AddVip(const Vip& vip);
// Removes it (RTM_DELADDR); already gone is fine.
absl::Status RemoveVip(const Vip& vip);

// Adds the route in `table` (RTM_NEWROUTE, proto static); already there is fine.
absl::Status AddRoute(const Vip& vip);
// Removes it (RTM_DELROUTE); already gone is fine.
absl::Status RemoveRoute(const Vip& vip);

}  // namespace l4lb::announce
