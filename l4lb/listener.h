#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

#include "l4lb/net/address.h"
#include "l4lb/net/socket.h"

namespace l4lb {

// One listen address: a SO_REUSEPORT socket per worker, so the kernel spreads new
// connections over the workers and no accept lock is shared. Each worker arms a
// multishot accept on its own socket (worker_tcp.cc).
struct ListenerSockets {
  net::SocketAddress address;  // as bound: port 0 resolved
  uint16_t service = 0;        // which service's backends its clients reach
  std::vector<net::Fd> per_worker;
};

// Binds `workers` sockets to `requested`. Port 0: the first socket picks a free
// port and the others bind that one. Errors name the address (`bind
// 127.0.0.1:80: Address already in use`).
// `udp`: datagram sockets instead (no backlog).
absl::StatusOr<ListenerSockets> OpenListener(const net::SocketAddress& requested, uint16_t service,
                                             int workers, int backlog, bool udp = false);

// Fails if another socket already listens on `address` (TCP) or is bound to it
// (UDP), even one that set SO_REUSEPORT as l4lb's own do: a second l4lb started
// on a running one's port (or another program of the same user with
// SO_REUSEPORT) would otherwise bind beside it without an error and the kernel
// would split the clients between the two. Binds a probe socket without
// SO_REUSEPORT (TCP: with SO_REUSEADDR, so connections in TIME_WAIT from an
// earlier run do not count) and closes it. Port 0 needs no probe. Callers skip
// it for a port this process holds itself (a reload, a live upgrade).
absl::Status CheckNotShared(const net::SocketAddress& address, bool udp);

}  // namespace l4lb
