#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace l4lb::net {

// Fewer packets and wake-ups per short connection, for client-first protocols
// (HTTP, TLS): both opt-in per service, because a server-first protocol (FTP,
// SSH, SMTP: the server speaks first) breaks with either.
//
// defer_accept: TCP_DEFER_ACCEPT on a listener. The kernel completes the
// handshake but hands the connection to accept() only once the client's first
// bytes are there, so the worker never wakes for a connection with nothing to
// relay, and its backend connect can carry those bytes at once. A client that
// sends nothing is accepted anyway after kDeferAcceptSeconds (one SYN-ACK
// retransmission): a server-first client is delayed, not refused.
inline constexpr int kDeferAcceptSeconds = 1;
// On (kDeferAcceptSeconds) or off, on a listening socket: every time a config is
// applied, so a reload that turns it off clears it on taken-over listeners.
absl::Status SetDeferAccept(int fd, bool on);

// backend_tfo: TCP_FASTOPEN_CONNECT on a backend socket. With a cookie from an
// earlier connection to that backend, connect() returns at once and the first
// bytes written (the client's request, or the PROXY header) ride in the SYN: one
// round trip less before the backend answers. Without a cookie (first
// connection, a backend without TFO) it is an ordinary connect that asks for
// one. The price, as in HAProxy's `tfo`: a connect that returned at once cannot
// fail, so a backend that refuses is found by the first write (the client is
// cut, not retried on another backend), and a backend connection whose client
// never sends is never opened. Nor can the connect's timeout (the ring's linked
// timeout) fire: a backend that drops the SYN would hold the client for the
// kernel's SYN retries (net.ipv4.tcp_syn_retries, 6: over two minutes), so
// `syn_retries` (TCP_SYNCNT) bounds them: SynRetriesWithin(connect_timeout).
absl::Status SetFastOpenConnect(int fd, int syn_retries);
// The fewest SYN retransmissions (1..127) whose backoff (1 s, doubling, each at
// most 120 s) lasts at least `timeout`: 1 for up to 3 s, 2 for 7 s, 4 for 31 s.
int SynRetriesWithin(absl::Duration timeout);

// net.ipv4.tcp_fastopen of the calling thread's network namespace: bit 1 lets
// this host's connects use TFO, bit 2 lets its listeners accept it.
inline constexpr int kFastOpenClientBit = 1;
absl::StatusOr<int> ReadFastOpenSysctl();
// An error saying what to set when the sysctl lacks the client bit (every
// backend_tfo connect would go without Fast Open) or cannot be read.
absl::Status CheckFastOpenClient();

}  // namespace l4lb::net
