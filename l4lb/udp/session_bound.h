#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace l4lb::udp {

// How many UDP sessions one worker may hold for one service. Each session holds
// one socket: one fd (of the process's open-files limit, shared with TCP
// connections) and one local port (of net.ipv4.ip_local_port_range, shared by
// every process on the host). Past either, creating a session socket fails, so
// the bound is what both allow, split evenly over workers and UDP services (a
// flood on one service then leaves the others their share), and an operator's
// udp_max_sessions can only set it lower. main derives it once at start-up.
struct SessionBoundInputs {
  uint64_t open_files = 0;    // RLIMIT_NOFILE (soft, after raising it to the hard one)
  uint64_t reserved_fds = 0;  // listeners, rings, eventfds, logs, probes
  bool tcp_services = false;  // TCP connections keep half of the rest
  uint32_t local_ports = 0;   // size of the local port range; 0: unknown, not a bound
  uint32_t workers = 1;
  uint32_t udp_services = 1;
};

struct SessionBound {
  uint32_t by_fds = 0;    // per worker and service
  uint32_t by_ports = 0;  // per worker and service; UINT32_MAX when the range is unknown
  // min(by_fds, by_ports, `configured`), at least 1.
  uint32_t Apply(uint32_t configured) const;
  // "open-files limit 20000 -> 9950, local ports 1000 -> 1000 per worker and service".
  std::string ToString(const SessionBoundInputs& in) const;
};

SessionBound DeriveSessionBound(const SessionBoundInputs& in);

// Fills in the host's side: open_files from RLIMIT_NOFILE (soft) and local_ports
// from ip_local_port_range (net/socket.h). Reads /proc: at start-up only, never on
// a worker. An unreadable range leaves local_ports 0 and is the error returned.
absl::Status ReadHostLimits(SessionBoundInputs& in);

}  // namespace l4lb::udp
