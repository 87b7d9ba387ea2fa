#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4lb::net {

// TCP congestion control per socket (TCP_CONGESTION). l4lb may run one algorithm
// towards clients (often a WAN: the host's default, e.g. bbr) and another towards
// backends (a LAN, where bbr's pacing costs the balancer CPU for no gain:
// bench/RESULTS.md).

// The kernel's default for new sockets (net.ipv4.tcp_congestion_control).
absl::StatusOr<std::string> DefaultCongestion();

// What a socket may be given (net.ipv4.tcp_available_congestion_control):
// "reno cubic bbr".
absl::StatusOr<std::string> AvailableCongestion();

// Sets `name` on a TCP socket. The error names the algorithm and lists what the
// kernel offers: `no TCP congestion control "bbr2" here (available: reno cubic)`.
absl::Status SetCongestion(int fd, absl::string_view name);

// What `fd` runs now.
absl::StatusOr<std::string> GetCongestion(int fd);

}  // namespace l4lb::net
