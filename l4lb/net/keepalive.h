#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace l4lb::net {

// TCP keepalive of one side of the relay (client_keepalive, backend_keepalive):
// after `idle` without a segment the kernel probes every `interval` and resets
// the connection after `count` unanswered probes. An FTP control connection
// that sits silent through an hour-long transfer keeps a NAT or firewall entry
// alive this way, and a peer that vanished without a FIN or RST is found.
struct Keepalive {
  absl::Duration idle = absl::ZeroDuration();  // zero: off (no setsockopt at all)
  absl::Duration interval = absl::ZeroDuration();
  int count = 0;

  bool enabled() const { return idle > absl::ZeroDuration(); }
  // "off", or "IDLE,INTERVAL,COUNT" as ParseKeepalive reads it.
  std::string ToString() const;
};

// "IDLE,INTERVAL,COUNT" ("10m,1m,5"; whole seconds, 1s..32767s each: the
// kernel's TCP_KEEPIDLE/TCP_KEEPINTVL range; COUNT 1..127), or "off" / "".
// Errors quote the text and say which part is wrong.
absl::StatusOr<Keepalive> ParseKeepalive(absl::string_view text);

// SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT on a TCP
// socket. On a listening socket it holds for every connection accepted from it
// (the kernel copies the options into each child): no syscall per client.
absl::Status SetKeepalive(int fd, const Keepalive& keepalive);
// SO_KEEPALIVE off (a listener a reload took over, whose config dropped it).
absl::Status ClearKeepalive(int fd);

}  // namespace l4lb::net
