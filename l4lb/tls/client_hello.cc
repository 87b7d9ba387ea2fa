#include "l4lb/tls/client_hello.h"

#include <algorithm>
#include <bitset>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

// RFC numbers below: 8446 (TLS 1.3: records 5.1, ClientHello 4.1.2, extensions
// 4.2), 6066 (server_name, section 3). Where an RFC leaves room, this parser does
// what OpenSSL's server does (ssl/record/, ssl/statem/extensions_srvr.c), so a
// hello l4lb rejects is one the backend would have rejected too.

namespace l4lb::tls {
namespace {

using Kind = ClientHelloResult::Kind;

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kMaxRecordPayload = 16384;  // 2^14, RFC 8446 5.1
constexpr size_t kHandshakeHeaderBytes = 4;  // type, 24-bit length
constexpr size_t kRandomBytes = 32;
constexpr size_t kMaxSessionId = 32;
constexpr uint16_t kExtServerName = 0;
constexpr uint8_t kNameTypeHostName = 0;
constexpr size_t kMaxHostName = 255;

// Record versions 3.1 (TLS 1.0, what most clients put on their first record for
// old middleboxes) to 3.4; SSL 3.0 and SSLv2-compatible hellos carry no SNI.
bool TlsVersion(uint8_t major, uint8_t minor) { return major == 3 && minor >= 1 && minor <= 4; }

// The handshake message as a byte stream over the records that carry it: reads
// cross record boundaries, check each new record header, and stop (returning
// false, the outcome set) when the buffered bytes run out or something is wrong.
// `left()` counts the message's unread bytes, so a block's end is the value
// left() will have there: blocks nest without a stack.
class HandshakeStream {
 public:
  HandshakeStream(absl::Span<const uint8_t> bytes, size_t max_bytes)
      : bytes_(bytes), max_bytes_(max_bytes) {}

  // The first record's header: kNotTls unless it is TLS-like.
  bool OpenFirstRecord() {
    const size_t have = std::min(bytes_.size(), kTlsRecordHeaderBytes);
    // Byte by byte, so plain text is told from TLS at its first byte.
    if (have >= 1 && bytes_[0] != kContentHandshake) {
      return NotTls(
          absl::StrFormat("first byte 0x%02x is not a TLS handshake record (22)", bytes_[0]));
    }
    if (have >= 2 && bytes_[1] != 3) {
      return NotTls(absl::StrFormat("record version major %d, not 3", bytes_[1]));
    }
    if (have >= 3 && !TlsVersion(3, bytes_[2])) {
      return NotTls(absl::StrFormat("record version 3.%d, not 3.1 to 3.4", bytes_[2]));
    }
    if (have < kTlsRecordHeaderBytes) return NeedMore();
    return ReadRecordHeader();
  }

  // The handshake header (type and length, itself possibly split over records)
  // has been read: the message body is `length` bytes.
  bool StartBody(size_t length) {
    left_ = length;
    return Fits();
  }

  size_t left() const { return left_; }

  // The next `n` (at most 4) bytes, big-endian. The caller has checked n <= left().
  bool Number(size_t n, uint32_t* out) {
    *out = 0;
    for (size_t i = 0; i < n; ++i) {
      uint8_t byte = 0;
      if (!Take(1, [&](const uint8_t* p, size_t) { byte = *p; })) return false;
      *out = *out << 8 | byte;
    }
    return true;
  }

  bool Skip(size_t n) {
    return Take(n, [](const uint8_t*, size_t) {});
  }

  bool Append(size_t n, std::string* out) {
    return Take(
        n, [&](const uint8_t* p, size_t k) { out->append(reinterpret_cast<const char*>(p), k); });
  }

  bool Malformed(std::string reason) { return Stop(Kind::kMalformed, std::move(reason)); }

  ClientHelloResult& result() { return result_; }

 private:
  // Hands the next n bytes of the message to `sink`, in pieces (one per record).
  template <typename Sink>
  bool Take(size_t n, Sink sink) {
    while (n > 0) {
      if (record_left_ == 0 && !NextRecord()) return false;
      const size_t have = bytes_.size() - pos_;
      if (have == 0) return NeedMore();
      const size_t k = std::min({n, record_left_, have});
      sink(&bytes_[pos_], k);
      pos_ += k;
      record_left_ -= k;
      left_ -= k;
      n -= k;
    }
    return true;
  }

  // A record after the first: the message continues in it, so it must be one.
  bool NextRecord() {
    // Decided before the header arrives: the rest of the message, behind at
    // least one more header, would not fit.
    if (!Fits()) return false;
    if (bytes_.size() - pos_ < kTlsRecordHeaderBytes) return NeedMore();
    const uint8_t* h = &bytes_[pos_];
    if (h[0] != kContentHandshake) {
      // RFC 8446 5.1: other record types must not interleave a handshake message.
      return Malformed(
          absl::StrFormat("record %d has content type %d, not handshake (22)", records_ + 1, h[0]));
    }
    if (!TlsVersion(h[1], h[2])) {
      return Malformed(
          absl::StrFormat("record %d has version %d.%d, not 3.1 to 3.4", records_ + 1, h[1], h[2]));
    }
    return ReadRecordHeader();
  }

  // Type and version are checked; the length decides the rest.
  bool ReadRecordHeader() {
    const size_t length = size_t{bytes_[pos_ + 3]} << 8 | bytes_[pos_ + 4];
    ++records_;
    // RFC 8446 5.1: no empty handshake fragments; at most 2^14 bytes per record.
    if (length == 0) return Malformed(absl::StrCat("record ", records_, " is empty"));
    if (length > kMaxRecordPayload) {
      return Malformed(absl::StrCat("record ", records_, " of ", length, " bytes (over 16384)"));
    }
    pos_ += kTlsRecordHeaderBytes;
    record_left_ = length;
    return Fits();
  }

  // Whether the rest of the message can still end within max_bytes: each unread
  // byte needs a byte of stream, and more than the current record holds needs at
  // least one more record header. A lower bound, so a hello that fits is never
  // refused, and once it fails, more bytes cannot change the answer.
  bool Fits() {
    const size_t more_headers = left_ > record_left_ ? kTlsRecordHeaderBytes : 0;
    if (pos_ + left_ + more_headers <= max_bytes_) return true;
    return Malformed(absl::StrCat("ClientHello larger than ", max_bytes_, " bytes"));
  }

  bool NeedMore() { return Stop(Kind::kNeedMore, ""); }
  bool NotTls(std::string reason) { return Stop(Kind::kNotTls, std::move(reason)); }
  bool Stop(Kind kind, std::string reason) {
    result_.kind = kind;
    result_.reason = std::move(reason);
    return false;
  }

  const absl::Span<const uint8_t> bytes_;
  const size_t max_bytes_;
  size_t pos_ = 0;                       // next unread byte of `bytes_`
  size_t record_left_ = 0;               // unread payload bytes of the current record
  size_t left_ = kHandshakeHeaderBytes;  // unread bytes of the message (header, then body)
  int records_ = 0;
  ClientHelloResult result_;
};

// Walks the ClientHello body (RFC 8446 4.1.2) over a stream. Each method returns
// false once the outcome is decided (in the stream's result).
class ClientHelloWalker {
 public:
  explicit ClientHelloWalker(HandshakeStream* s) : s_(*s) {}

  bool Walk() {
    uint32_t version = 0;
    if (!Fixed(2, "version", 0) || !s_.Number(2, &version)) return false;
    if (!TlsVersion(version >> 8, version & 0xFF)) {
      return s_.Malformed(absl::StrFormat("client version 0x%04x, not 0x0301 to 0x0304", version));
    }
    if (!Fixed(kRandomBytes, "random", 0) || !s_.Skip(kRandomBytes)) return false;
    uint32_t n = 0;
    if (!Vector(1, "session id", &n)) return false;
    if (n > kMaxSessionId) {
      return s_.Malformed(absl::StrCat("session id of ", n, " bytes (over 32)"));
    }
    if (!s_.Skip(n) || !Vector(2, "cipher suites", &n)) return false;
    if (n < 2 || n % 2 != 0) {
      return s_.Malformed(absl::StrCat("cipher suites of ", n, " bytes (must be even, >= 2)"));
    }
    if (!s_.Skip(n) || !Vector(1, "compression methods", &n)) return false;
    if (n < 1) return s_.Malformed("no compression methods");
    if (!s_.Skip(n)) return false;
    // Extensions are optional (a TLS 1.2 hello without them ends here).
    if (s_.left() == 0) return Done();
    if (!Vector(2, "extensions", &n)) return false;
    if (n < s_.left()) {
      return s_.Malformed(absl::StrCat(s_.left() - n, " bytes after the extensions"));
    }
    return Extensions() && Done();
  }

 private:
  bool Extensions() {
    // RFC 8446 4.2: each type at most once. One bit per type (8 KiB on the
    // stack, no allocation): a hello can hold thousands of extensions.
    std::bitset<65536> seen;
    while (s_.left() > 0) {
      uint32_t type = 0;
      uint32_t length = 0;
      if (!Fixed(4, "an extension header", 0) || !s_.Number(2, &type) || !s_.Number(2, &length)) {
        return false;
      }
      if (seen[type]) return s_.Malformed(absl::StrFormat("extension 0x%04x repeated", type));
      seen[type] = true;
      if (length > s_.left()) {
        return s_.Malformed(absl::StrFormat(
            "extension 0x%04x of %d bytes overruns the hello (%d left)", type, length, s_.left()));
      }
      if (type == kExtServerName) {
        if (!ServerName(length)) return false;
      } else if (!s_.Skip(length)) {
        return false;
      }
    }
    return true;
  }

  // RFC 6066 3: a list of (name_type, name). OpenSSL takes exactly one entry, a
  // host_name: no other type was ever defined, and a second one has no meaning.
  bool ServerName(size_t length) {
    const size_t end = s_.left() - length;
    uint32_t list = 0;
    if (!Fixed(2, "the server_name list length", end) || !s_.Number(2, &list)) return false;
    if (list != s_.left() - end) {
      return s_.Malformed(
          absl::StrCat("server_name list of ", list, " bytes in an extension of ", length - 2));
    }
    uint32_t type = 0;
    uint32_t size = 0;
    if (!Fixed(3, "the server_name entry", end) || !s_.Number(1, &type)) return false;
    if (type != kNameTypeHostName) {
      return s_.Malformed(absl::StrCat("server_name type ", type, " (only host_name, 0)"));
    }
    if (!s_.Number(2, &size)) return false;
    if (size != s_.left() - end) {
      return s_.Malformed(absl::StrCat("host name of ", size, " bytes, ", s_.left() - end,
                                       " left in the server_name list (one name only)"));
    }
    // Checked before the copy: the name is the only allocation.
    if (size == 0 || size > kMaxHostName) {
      return s_.Malformed(absl::StrCat("host name of ", size, " bytes (must be 1 to 255)"));
    }
    std::string& name = s_.result().server_name;
    name.reserve(size);
    if (!s_.Append(size, &name)) return false;
    if (absl::Status valid = NormalizeServerName(&name); !valid.ok()) {
      return s_.Malformed(std::string(valid.message()));
    }
    has_name_ = true;
    return true;
  }

  // A field of `n` bytes ahead, which must end by `end` (a value of left()).
  bool Fixed(size_t n, absl::string_view what, size_t end) {
    if (s_.left() - end >= n) return true;
    return s_.Malformed(absl::StrCat("hello ends inside ", what));
  }

  // A length-prefixed vector: the `prefix`-byte length, which must fit in the body.
  bool Vector(size_t prefix, absl::string_view what, uint32_t* length) {
    if (!Fixed(prefix, absl::StrCat("the length of the ", what), 0) || !s_.Number(prefix, length)) {
      return false;
    }
    if (*length <= s_.left()) return true;
    return s_.Malformed(
        absl::StrCat(what, " of ", *length, " bytes overrun the hello (", s_.left(), " left)"));
  }

  bool Done() {
    s_.result().kind = has_name_ ? Kind::kServerName : Kind::kNoServerName;
    return true;
  }

  HandshakeStream& s_;
  bool has_name_ = false;
};

bool ValidHostNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

}  // namespace

ClientHelloResult ParseClientHello(absl::Span<const uint8_t> bytes, size_t max_bytes) {
  HandshakeStream stream(bytes, max_bytes);
  uint32_t type = 0;
  uint32_t length = 0;
  if (stream.OpenFirstRecord() && stream.Number(1, &type)) {
    if (type != kHandshakeClientHello) {
      stream.Malformed(absl::StrCat("handshake type ", type, ", not ClientHello (1)"));
    } else if (stream.Number(3, &length) && stream.StartBody(length)) {
      ClientHelloWalker(&stream).Walk();
    }
  }
  ClientHelloResult& result = stream.result();
  // A name read before the hello turned out incomplete or broken is no answer.
  if (result.kind != Kind::kServerName) result.server_name.clear();
  return std::move(result);
}

size_t ClientHelloBytesWanted(absl::Span<const uint8_t> bytes) {
  size_t at = 0;  // the start of a record
  while (at + kTlsRecordHeaderBytes <= bytes.size()) {
    const size_t length = (size_t{bytes[at + 3]} << 8) | bytes[at + 4];
    at += kTlsRecordHeaderBytes + length;
    if (at > bytes.size()) return at;  // inside this record
  }
  return at + kTlsRecordHeaderBytes;  // the next record's header
}

absl::Status NormalizeServerName(std::string* name) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("server name \"", absl::CHexEscape(*name), "\": ", why));
  };
  if (name->empty() || name->size() > kMaxHostName) return bad("must be 1 to 255 bytes");
  if (!std::all_of(name->begin(), name->end(), ValidHostNameChar)) {
    return bad("only letters, digits, '-', '_' and '.' allowed");
  }
  // One trailing dot is the root (an absolute name); what is left must have no
  // empty label: "a..b", ".a" and "." name nothing, and a wildcard must not match them.
  const absl::string_view labels =
      absl::string_view(*name).substr(0, name->size() - (name->back() == '.' ? 1 : 0));
  if (labels.empty() || labels.front() == '.' || labels.back() == '.' ||
      absl::StrContains(labels, "..")) {
    return bad("empty label");
  }
  name->resize(labels.size());
  absl::AsciiStrToLower(name);
  return absl::OkStatus();
}

}  // namespace l4lb::tls
