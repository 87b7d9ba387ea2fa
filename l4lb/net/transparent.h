#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "l4lb/net/address.h"

namespace l4lb::net {

// Transparent mode (`transparent`, --transparent): a backend connection leaves
// from its client's own address (IP_TRANSPARENT lets a socket bind an address
// the host does not have), so backends see real clients without the PROXY
// protocol. It needs CAP_NET_ADMIN (or CAP_NET_RAW), and a route on l4lb's host
// that delivers the backends' replies, addressed to the clients, locally
// (README "Transparent mode"); without it the connects time out.

// The address a backend of `backend_family` is connected from for `client`,
// port 0. An IPv4 client seen on a dual-stack listener (::ffff:a.b.c.d) is its
// IPv4 address. InvalidArgument when the families still differ (an IPv6 client,
// an IPv4 backend): no address of that client can reach that backend.
absl::StatusOr<SocketAddress> TransparentSource(const SocketAddress& client, int backend_family);

// IP_TRANSPARENT (IPv6: IPV6_TRANSPARENT) on a TCP socket, then BindSource: the
// port is chosen at connect, per backend, so one client address has a whole
// ephemeral range towards each backend. The error names the address.
absl::Status BindTransparent(int fd, const SocketAddress& source);

// At start-up and reload, once per family of a service's backends: whether this
// process may set IP_TRANSPARENT. PermissionDenied says which capability is missing.
absl::Status CheckTransparent(int family);

}  // namespace l4lb::net
