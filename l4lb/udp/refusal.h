#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace l4lb::udp {

// LastSent remembers enough of the last datagram a session sent to its backend
// to tell whether an ICMP port unreachable answers it: its first bytes, when it
// left, and whether a reply has come since. An ECONNREFUSED on a connected UDP
// socket only says that *some* ICMP naming the socket's ports arrived, and
// anyone who can guess the ports can forge one; so a refusal counts against the
// backend only when the ICMP quotes the start of a datagram l4lb sent, recently,
// that nothing has answered (worker_udp.cc, RefusalMatches below).
//
// Thread safety: none; part of a worker's Session. 24 bytes.
struct LastSent {
  // Quoted bytes compared. 16 cover a DNS query's id and flags and the start of
  // its name; a forger who is not on the path does not see them.
  static constexpr size_t kPrefix = 16;

  int64_t sent_ns = 0;  // 0: nothing sent yet
  bool answered = false;
  uint8_t prefix_len = 0;
  std::array<char, kPrefix> prefix{};

  void OnSent(const char* data, size_t len, int64_t now_ns);
  void OnReply() { answered = true; }
};

// What one error-queue entry (IP_RECVERR / IPV6_RECVERR) says.
struct IcmpError {
  bool port_unreachable = false;  // ICMP type 3 code 3, or ICMPv6 type 1 code 4
  // The start of the offending datagram's payload, as the ICMP quoted it (the
  // kernel strips the quoted IP and UDP headers; it already matched the ports).
  absl::string_view quoted;
};

// True if `error` answers `sent`: a port unreachable quoting (a prefix of) the
// last datagram's first bytes, at most `window_ns` after it left, with no reply
// since. A quote without payload bytes (RFC 792's 8 octets) proves nothing and
// does not match: the health probe still finds a backend that really is gone.
bool RefusalMatches(const IcmpError& error, const LastSent& sent, int64_t now_ns,
                    int64_t window_ns);

// What an error on a session socket means, judged by the ICMP behind it.
enum class SocketError {
  kRefused,  // a port unreachable for the session's last datagram: counts against the backend
  kIcmp,     // another ICMP: forged, stale or about the path; the session goes on
  kLocal,    // no ICMP behind it: the socket's own trouble
};

// Classifies errno `err` from a send or receive on fd (IP_RECVERR set) by what
// its error queue holds, reading and emptying it (at most `max_entries`
// entries; the rest, if any, stay for the next error). Nonblocking. Reading the
// queue also clears the socket's pending error, so a send may be tried again.
SocketError ClassifySocketError(int fd, int err, const LastSent& sent, int64_t now_ns,
                                int64_t window_ns, int max_entries = 8);

}  // namespace l4lb::udp
