#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace l4lb::tls {

// The server name a TLS client asks for, read from its ClientHello before any
// backend is picked (SNI routing for TLS passthrough, issue 15): a pure function
// over the bytes buffered so far, no socket, no clock, no allocation beyond the
// name. The caller peeks (MSG_PEEK) what has arrived, calls again with the longer
// buffer as more arrives, and relays the bytes untouched once it has an answer:
// l4lb never terminates TLS, the backend's TLS stack sees the same bytes.
//
//   ClientHelloResult r = ParseClientHello(peeked);
//   switch (r.kind) {
//     case kNeedMore:     return PeekAgain();           // never more than max_bytes
//     case kServerName:   return Pick(routes.Match(r.server_name));
//     case kNoServerName:
//     case kNotTls:       return Pick(routes.Match(""));  // the default route, if any
//     case kMalformed:    return Reject(r.reason);       // "session id of 33 bytes ..."
//   }
//
// What is read (RFC 8446 5.1 and 4.1.2, RFC 6066 3):
// - TLS records of content type 22 (handshake), version 3.1 to 3.4, 1 to 16384
//   bytes each. The ClientHello may be fragmented over any number of records
//   (as small as 1 byte), and the records split over any number of reads: any
//   prefix of a valid hello is kNeedMore.
// - A stream whose first record header is not TLS-like (first byte not 22, then
//   not 3, then not 1..4) is kNotTls, known after at most 3 bytes: "GET /",
//   "SSH-2.0-", "PROXY TCP4 ..." and SSLv2-compatible hellos (first byte 0x80)
//   can take a default route instead of waiting for bytes that never come.
// - Everything in the ClientHello is checked for framing: session id (at most 32),
//   cipher suites (even, at least 2 bytes), compression methods (at least 1),
//   extensions (optional; each type at most once, lengths within their block, no
//   bytes after the last one). server_name (extension 0) must hold exactly one
//   host_name (type 0), as OpenSSL requires; NormalizeServerName() checks it.
// - The answer is known once the ClientHello's last byte is in; bytes after it
//   (in its last record or later ones) are not looked at.
//
// Thread safety: none needed; pure functions.

// What l4lb buffers at most before giving up on a hello: real ones are 200 to
// 600 bytes (post-quantum key shares reach about 1,800), the record layer's own
// limit is 16 KiB per record.
inline constexpr size_t kMaxClientHelloBytes = 16 * 1024;

// The TLS record header (type, version, length): always read whole to tell TLS
// from not, whatever max_bytes is.
inline constexpr size_t kTlsRecordHeaderBytes = 5;

struct ClientHelloResult {
  enum class Kind : uint8_t {
    kNeedMore,      // a valid prefix: call again with more bytes
    kServerName,    // a complete, valid ClientHello with a host name: server_name
    kNoServerName,  // a complete, valid ClientHello without server_name
    kNotTls,        // not a TLS handshake at all (reason says which byte)
    kMalformed,     // TLS, but broken, or larger than max_bytes (reason says what)
  };
  Kind kind = Kind::kNeedMore;
  // kServerName only: lowercase, no trailing dot, as NormalizeServerName() leaves it.
  std::string server_name;
  // kNotTls and kMalformed: one line for a log, e.g. "cipher suites of 3 bytes
  // (must be even)"; bytes from the peer in it are hex-escaped.
  std::string reason;
};

// Parses the ClientHello at the start of `bytes` (everything the client has sent
// so far). kNeedMore only while the hello can still end within `max_bytes`: a
// hello that needs more (known from its lengths, as early as they arrive) is
// kMalformed "ClientHello larger than N bytes". Once the result is not kNeedMore,
// longer buffers (the same bytes and more) give the same result.
ClientHelloResult ParseClientHello(absl::Span<const uint8_t> bytes,
                                   size_t max_bytes = kMaxClientHelloBytes);

// After a kNeedMore over `bytes`: how many bytes the stream must hold before a
// new parse can tell more, the end of the record being received (its header's
// 5 bytes if that is what is missing). A caller that waits for that many (its
// socket's SIOCINQ) parses once per record, not once per TCP segment: a hello
// dribbled a byte per segment costs one parse per record.
size_t ClientHelloBytesWanted(absl::Span<const uint8_t> bytes);

// A host name as SNI carries it (RFC 6066 3) and routes name it: 1 to 255 bytes
// of letters, digits, '-', '_' (seen in real internal names) and '.', with no
// empty label. Lowercases it in place and strips one trailing '.', so equal names
// compare equal; InvalidArgument naming the (escaped) name otherwise.
absl::Status NormalizeServerName(std::string* name);

}  // namespace l4lb::tls
