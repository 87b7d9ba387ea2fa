#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "l4lb/net/address.h"

namespace l4lb::admission {

// The PROXY protocol, versions 1 (text) and 2 (binary), after HAProxy's
// doc/proxy-protocol.txt ("the spec" below), as pure functions over bytes: no
// socket, no clock, no allocation beyond the result. A worker (or the admission
// chain) feeds ParseProxyHeader() what it has read so far and gets one of three
// answers: need more (and how much it may buffer at most), a complete header (and
// how many bytes to strip), or InvalidArgument (close the connection: the spec
// says a receiver must abort on anything that does not match exactly).
//
//   absl::StatusOr<ProxyParse> r = ParseProxyHeader(buffered);
//   if (!r.ok()) return Reject(r.status());           // "v2: bad command 0x3"
//   if (!r->header) return ReadMore(r->max_total);     // never buffer past it
//   client = r->header->command == ProxyCommand::kProxy ? r->header->source : peer;
//   Relay(buffered.subspan(r->header->consumed));      // the client's first bytes
//
// Thread safety: none needed; pure functions.

// The longest v1 line, CRLF included ("PROXY UNKNOWN" + two full IPv6 addresses
// and ports; spec 2.1): a line without CRLF within it is invalid.
inline constexpr size_t kProxyV1MaxBytes = 107;
// The fixed part of a v2 header: signature, version/command, family, length.
inline constexpr size_t kProxyV2HeaderBytes = 16;
// What l4lb buffers at most for a header of either version: the smallest TCP
// segment every host must accept (576 - 40), which the spec (section 2) says
// both formats are designed to fit. A v2 header announcing more is rejected.
inline constexpr size_t kProxyMaxHeaderBytes = 536;

enum class ProxyVersion : uint8_t { kV1 = 1, kV2 = 2 };

enum class ProxyCommand : uint8_t {
  kProxy,    // relayed: source and destination are the original client's connection
  kLocal,    // v2 LOCAL: the sender's own connection (a health check); use the peer address
  kUnknown,  // v1 "PROXY UNKNOWN": the spec says use the real connection's addresses
};

enum class ProxyTransport : uint8_t {
  kUnspec,  // no usable addresses: LOCAL, v1 UNKNOWN, v2 AF_UNSPEC or AF_UNIX
  kTcp4,
  kTcp6,
  kUdp4,
  kUdp6,
};

struct ProxyHeader {
  ProxyVersion version = ProxyVersion::kV1;
  ProxyCommand command = ProxyCommand::kUnknown;
  ProxyTransport transport = ProxyTransport::kUnspec;
  // Set (family AF_INET or AF_INET6) only for kProxy with a TCP or UDP transport;
  // otherwise default-constructed (family AF_UNSPEC).
  net::SocketAddress source;
  net::SocketAddress destination;
  // Header bytes, TLVs included: strip exactly these, relay the rest.
  size_t consumed = 0;
};

struct ProxyParse {
  // Set once the header is complete; empty while more bytes are needed.
  std::optional<ProxyHeader> header;
  // With no header yet: the header ends within the first `max_total` bytes of the
  // stream, so the caller never needs to hold more than this (v1: 107; v2: 16 +
  // its length once the length is in, kProxyMaxHeaderBytes before). Reading past
  // it is harmless (consumed says where the header ends) but never necessary.
  size_t max_total = 0;
};

// Parses the header at the start of `bytes` (everything read from the connection
// so far). A valid prefix of a header is never an error; anything that is not a
// prefix of a valid header is InvalidArgument with a short reason ("v1: port
// \"65536\" out of range"). v2 TLVs are checked for framing (and a CRC32C TLV
// for its checksum, as HAProxy does) and otherwise skipped, never interpreted.
absl::StatusOr<ProxyParse> ParseProxyHeader(absl::Span<const uint8_t> bytes);

// What the first bytes of a connection say about a PROXY header, by signature
// alone ("PROXY " or v2's 12 bytes), for peers outside accept_proxy_from, whose
// headers must never reach a backend: a backend that accepts PROXY itself would
// believe the forged source. kPrefix: a strict prefix of a signature (the empty
// stream included), so only more bytes decide; never more than
// kProxySignatureMaxBytes are needed.
enum class ProxySignature : uint8_t { kAbsent, kPrefix, kPresent };
inline constexpr size_t kProxySignatureMaxBytes = 12;
ProxySignature MatchProxySignature(absl::Span<const uint8_t> bytes);

// "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n". An IPv4 address beside an
// IPv6 one is sent IPv4-mapped under TCP6 (as HAProxy's make_proxy_line_v1 does);
// an address that is neither IPv4 nor IPv6 gives "PROXY UNKNOWN\r\n".
std::string BuildProxyV1(const net::SocketAddress& source, const net::SocketAddress& destination);

// The v2 PROXY command for TCP (0x11, or 0x21 with an IPv4 address mapped when the
// families differ, like HAProxy's make_proxy_line_v2), no TLVs: 28 or 52 bytes.
// An address that is neither IPv4 nor IPv6 gives BuildProxyV2Local().
std::string BuildProxyV2(const net::SocketAddress& source, const net::SocketAddress& destination);

// The v2 LOCAL command, family UNSPEC, length 0 (16 bytes): a connection l4lb
// makes on its own behalf, e.g. a health check of a backend that requires headers.
std::string BuildProxyV2Local();

}  // namespace l4lb::admission
