#include "l4lb/admission/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

// Section numbers below are those of HAProxy's doc/proxy-protocol.txt; "HAProxy"
// means conn_recv_proxy() and make_proxy_line_v1/v2() in its src/connection.c,
// whose strictness this parser matches or exceeds where the spec says "must".

namespace l4lb::admission {
namespace {

// Section 2.2: the 12-byte v2 signature (a NUL at the 5th byte: never a C string).
constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr absl::string_view kV1Prefix = "PROXY ";
constexpr uint8_t kTlvCrc32c = 0x03;   // section 2.2.2: PP2_TYPE_CRC32C
constexpr size_t kTlvHeaderBytes = 3;  // type, length_hi, length_lo

absl::Status Bad(absl::string_view why) { return absl::InvalidArgumentError(why); }

// A field of an untrusted line, quoted for an error message: printable as is,
// anything else escaped, so a log line stays one line.
std::string Quote(absl::string_view field) {
  return absl::StrCat("\"", absl::CHexEscape(field), "\"");
}

ProxyParse NeedMore(size_t max_total) {
  ProxyParse out;
  out.max_total = max_total;
  return out;
}

net::SocketAddress V4(const uint8_t* ip, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  memcpy(&sin.sin_addr, ip, 4);
  sin.sin_port = htons(port);
  return net::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
}

net::SocketAddress V6(const uint8_t* ip, uint16_t port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  memcpy(&sin6.sin6_addr, ip, 16);
  sin6.sin6_port = htons(port);
  return net::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
}

// --- Version 1 (section 2.1) ---

// "exactly 4 integers in the range [0..255] ... separated by exactly one dot ...
// Heading zeroes are not permitted". inet_pton() is not used: its leniency differs
// between libcs, and the spec's rule is short enough to state here.
bool ParseV1Ipv4(absl::string_view text, uint8_t out[4]) {
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
    const size_t start = i;
    unsigned value = 0;
    while (i < text.size() && i - start < 3 && absl::ascii_isdigit(text[i])) {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    if (i == start || value > 255 || (i - start > 1 && text[start] == '0')) return false;
    out[part] = static_cast<uint8_t>(value);
  }
  return i == text.size();
}

// Hex groups and colons (and a trailing dotted quad, which inet_pton takes and
// HAProxy accepts too). The character check comes first: inet_pton stops at a
// NUL, so "::1\0junk" would otherwise pass as "::1".
bool ParseV1Ipv6(absl::string_view text, uint8_t out[16]) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(c) && c != ':' && c != '.') return false;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  memcpy(buf, text.data(), text.size());
  return inet_pton(AF_INET6, buf, out) == 1;
}

// "a decimal integer in the range [0..65535] ... Heading zeroes are not permitted".
absl::Status ParseV1Port(absl::string_view text, uint16_t* out) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return Bad(absl::StrCat("v1: port ", Quote(text), " is not a number"));
  }
  if (text.size() > 1 && text[0] == '0') {
    return Bad(absl::StrCat("v1: port ", Quote(text), " has a leading zero"));
  }
  uint32_t value = 0;
  for (char c : text) value = value * 10 + static_cast<uint32_t>(c - '0');
  if (value > 65535) return Bad(absl::StrCat("v1: port ", Quote(text), " out of range"));
  *out = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

// The line between "PROXY " and CRLF.
absl::StatusOr<ProxyHeader> ParseV1Line(absl::string_view line) {
  ProxyHeader header;
  header.version = ProxyVersion::kV1;
  // "For UNKNOWN ... the receiver must ignore anything presented before the CRLF".
  // HAProxy takes only "UNKNOWN\r\n"; the spec's wording also allows the long form
  // HAProxy itself lists as the worst case (107 bytes), so both are accepted.
  if (absl::StartsWith(line, "UNKNOWN") && (line.size() == 7 || line[7] == ' ')) {
    header.command = ProxyCommand::kUnknown;
    return header;
  }
  const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
  // "exactly one space" between fields: an empty field is a doubled, leading or
  // trailing space.
  for (absl::string_view field : fields) {
    if (field.empty()) return Bad("v1: extra or missing space");
  }
  const bool v4 = fields[0] == "TCP4";
  if (!v4 && fields[0] != "TCP6") {
    return Bad(
        absl::StrCat("v1: bad protocol ", Quote(fields[0]), " (want TCP4, TCP6 or UNKNOWN)"));
  }
  if (fields.size() != 5) {
    return Bad(absl::StrCat("v1: ", fields.size() - 1,
                            " fields after the protocol (want SRC DST SPORT DPORT)"));
  }
  uint8_t src[16];
  uint8_t dst[16];
  for (auto [text, ip, what] :
       {std::tuple{fields[1], src, "source"}, {fields[2], dst, "destination"}}) {
    if (v4 ? !ParseV1Ipv4(text, ip) : !ParseV1Ipv6(text, ip)) {
      return Bad(absl::StrCat("v1: ", what, " ", Quote(text), " is not an ", v4 ? "IPv4" : "IPv6",
                              " address"));
    }
  }
  uint16_t sport = 0;
  uint16_t dport = 0;
  if (absl::Status s = ParseV1Port(fields[3], &sport); !s.ok()) return s;
  if (absl::Status s = ParseV1Port(fields[4], &dport); !s.ok()) return s;
  header.command = ProxyCommand::kProxy;
  header.transport = v4 ? ProxyTransport::kTcp4 : ProxyTransport::kTcp6;
  header.source = v4 ? V4(src, sport) : V6(src, sport);
  header.destination = v4 ? V4(dst, dport) : V6(dst, dport);
  return header;
}

absl::StatusOr<ProxyParse> ParseV1(absl::Span<const uint8_t> bytes) {
  // Nothing past the longest valid line is looked at.
  const absl::string_view text(reinterpret_cast<const char*>(bytes.data()),
                               std::min(bytes.size(), kProxyV1MaxBytes));
  const size_t prefix = std::min(text.size(), kV1Prefix.size());
  if (text.substr(0, prefix) != kV1Prefix.substr(0, prefix)) {
    return Bad("v1: bad signature (want \"PROXY \")");
  }
  // "The receiver must not tolerate a single CR or LF character to end the line":
  // either is an error as soon as it is seen.
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') return Bad("v1: LF without CR");
    if (text[i] != '\r') continue;
    if (i + 1 == text.size()) break;  // the LF may be in the next read
    if (text[i + 1] != '\n') return Bad("v1: CR without LF");
    absl::StatusOr<ProxyHeader> header = ParseV1Line(text.substr(6, i - 6));
    if (!header.ok()) return header.status();
    header->consumed = i + 2;
    ProxyParse out;
    out.header = *std::move(header);
    return out;
  }
  // "If the CRLF sequence is not found in the first 107 characters, the receiver
  // should declare the line invalid."
  if (text.size() == kProxyV1MaxBytes) return Bad("v1: no CRLF within 107 bytes");
  return NeedMore(kProxyV1MaxBytes);
}

// --- Version 2 (section 2.2) ---

// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: at most 536
// bytes, once per connection. `zero_at` is the offset of a 4-byte field counted
// as zeros (section 2.2.5: the checksum is computed with its own field zeroed).
uint32_t Crc32c(absl::Span<const uint8_t> bytes, size_t zero_at) {
  uint32_t crc = 0xFFFFFFFF;
  for (size_t i = 0; i < bytes.size(); ++i) {
    crc ^= (i >= zero_at && i < zero_at + 4) ? 0 : bytes[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78 & (0 - (crc & 1)));
  }
  return ~crc;
}

// TLVs (section 2.2.1) from `offset` to the end of `header`: each must fit
// entirely (HAProxy: "Verify that the TLV length does not exceed the total
// PROXYv2 length"), and a CRC32C TLV is 4 bytes and must match. Values are never
// interpreted: l4lb uses nothing a sender publishes there.
absl::Status CheckTlvs(absl::Span<const uint8_t> header, size_t offset) {
  while (offset < header.size()) {
    if (header.size() - offset < kTlvHeaderBytes) return Bad("v2: truncated TLV");
    const uint8_t type = header[offset];
    const size_t length = size_t{header[offset + 1]} << 8 | header[offset + 2];
    if (length > header.size() - offset - kTlvHeaderBytes) {
      return Bad(absl::StrFormat("v2: TLV 0x%02x of %d bytes overruns the header", type, length));
    }
    if (type == kTlvCrc32c) {
      if (length != 4) return Bad(absl::StrCat("v2: CRC32C TLV of ", length, " bytes (want 4)"));
      const size_t at = offset + kTlvHeaderBytes;
      const uint32_t sent = uint32_t{header[at]} << 24 | uint32_t{header[at + 1]} << 16 |
                            uint32_t{header[at + 2]} << 8 | header[at + 3];
      if (Crc32c(header, at) != sent) return Bad("v2: CRC32C mismatch");
    }
    offset += kTlvHeaderBytes + length;
  }
  return absl::OkStatus();
}

struct Family {
  ProxyTransport transport;
  size_t address_bytes;  // the address block's size; TLVs follow it
  bool addresses;        // false: the block is skipped (UNSPEC, AF_UNIX)
};

// The 14th byte; section 2.2 lists the only valid values and says others "must be
// rejected as invalid by receivers". AF_UNIX cannot be an l4lb client address: the
// spec lets a receiver fall back to UNSPEC for valid combinations it does not
// support, so it is treated like UNSPEC (the peer address is used).
absl::StatusOr<Family> V2Family(uint8_t fam) {
  switch (fam) {
    case 0x00:
      return Family{ProxyTransport::kUnspec, 0, false};
    case 0x11:
      return Family{ProxyTransport::kTcp4, 12, true};
    case 0x12:
      return Family{ProxyTransport::kUdp4, 12, true};
    case 0x21:
      return Family{ProxyTransport::kTcp6, 36, true};
    case 0x22:
      return Family{ProxyTransport::kUdp6, 36, true};
    case 0x31:
    case 0x32:
      return Family{ProxyTransport::kUnspec, 216, false};
  }
  return Bad(absl::StrFormat("v2: bad family/transport 0x%02x", fam));
}

absl::StatusOr<ProxyParse> ParseV2(absl::Span<const uint8_t> bytes) {
  if (memcmp(bytes.data(), kV2Signature, std::min(bytes.size(), sizeof(kV2Signature))) != 0) {
    return Bad("v2: bad signature");
  }
  // Each check runs as soon as its byte is in, so garbage is refused early.
  bool local = false;
  if (bytes.size() > 12) {
    // "it must always be sent as \x2 and the receiver must only accept this value";
    // commands other than LOCAL (0) and PROXY (1): "Receivers must drop connections".
    if (bytes[12] >> 4 != 2) return Bad(absl::StrCat("v2: bad version ", bytes[12] >> 4));
    if ((bytes[12] & 0xF) > 1) return Bad(absl::StrCat("v2: bad command ", bytes[12] & 0xF));
    local = (bytes[12] & 0xF) == 0;
  }
  // LOCAL: "discard the protocol block including the family which is ignored", so
  // neither the family nor the block is checked.
  Family family{ProxyTransport::kUnspec, 0, false};
  if (bytes.size() > 13 && !local) {
    absl::StatusOr<Family> f = V2Family(bytes[13]);
    if (!f.ok()) return f.status();
    family = *f;
  }
  if (bytes.size() < kProxyV2HeaderBytes) return NeedMore(kProxyMaxHeaderBytes);

  const size_t length = size_t{bytes[14]} << 8 | bytes[15];
  const size_t total = kProxyV2HeaderBytes + length;
  if (total > kProxyMaxHeaderBytes) {
    return Bad(absl::StrCat("v2: length ", length, " over the ", kProxyMaxHeaderBytes,
                            "-byte header limit"));
  }
  if (length < family.address_bytes) {
    return Bad(absl::StrFormat("v2: length %d too small for family 0x%02x (want at least %d)",
                               length, bytes[13], family.address_bytes));
  }
  // "The receiver must not start to parse an address before the whole address
  // block is received."
  if (bytes.size() < total) return NeedMore(total);

  const absl::Span<const uint8_t> header_bytes = bytes.first(total);
  ProxyHeader header;
  header.version = ProxyVersion::kV2;
  header.command = local ? ProxyCommand::kLocal : ProxyCommand::kProxy;
  header.transport = family.transport;
  header.consumed = total;
  // A family with an address block (TCP, UDP, AF_UNIX) locates the TLVs after it.
  // LOCAL and UNSPEC blocks are discarded whole, as the spec says to ignore them.
  if (family.address_bytes > 0) {
    if (absl::Status s = CheckTlvs(header_bytes, kProxyV2HeaderBytes + family.address_bytes);
        !s.ok()) {
      return s;
    }
  }
  if (family.addresses) {
    const uint8_t* block = header_bytes.data() + kProxyV2HeaderBytes;
    const size_t ip = family.address_bytes == 12 ? 4 : 16;
    const uint16_t sport = static_cast<uint16_t>(block[2 * ip] << 8 | block[2 * ip + 1]);
    const uint16_t dport = static_cast<uint16_t>(block[2 * ip + 2] << 8 | block[2 * ip + 3]);
    header.source = ip == 4 ? V4(block, sport) : V6(block, sport);
    header.destination = ip == 4 ? V4(block + ip, dport) : V6(block + ip, dport);
  }
  ProxyParse out;
  out.header = std::move(header);
  return out;
}

bool IsInet(const net::SocketAddress& a) { return a.family() == AF_INET || a.family() == AF_INET6; }

std::string IpText(const std::array<uint8_t, 16>& ip16, bool v4) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, &ip16[12], buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip16.data(), buf, sizeof(buf));
  }
  return buf;
}

}  // namespace

absl::StatusOr<ProxyParse> ParseProxyHeader(absl::Span<const uint8_t> bytes) {
  // Section 2.2, "Identifying the protocol version": the first byte tells them
  // apart ('P' or CR), and anything else "must be dropped".
  if (bytes.empty()) return NeedMore(kProxyMaxHeaderBytes);
  if (bytes[0] == kV1Prefix[0]) return ParseV1(bytes);
  if (bytes[0] == kV2Signature[0]) return ParseV2(bytes);
  return Bad("not a PROXY protocol header (bad signature)");
}

ProxySignature MatchProxySignature(absl::Span<const uint8_t> bytes) {
  static_assert(kProxySignatureMaxBytes == sizeof(kV2Signature) &&
                kProxySignatureMaxBytes >= kV1Prefix.size());
  const absl::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const absl::string_view v2(reinterpret_cast<const char*>(kV2Signature), sizeof(kV2Signature));
  for (const absl::string_view signature : {kV1Prefix, v2}) {
    const size_t n = std::min(text.size(), signature.size());
    if (text.substr(0, n) != signature.substr(0, n)) continue;
    return n == signature.size() ? ProxySignature::kPresent : ProxySignature::kPrefix;
  }
  return ProxySignature::kAbsent;
}

std::string BuildProxyV1(const net::SocketAddress& source, const net::SocketAddress& destination) {
  if (!IsInet(source) || !IsInet(destination)) return "PROXY UNKNOWN\r\n";
  // IpBytes16() maps IPv4 into IPv6, which is what mixed families need.
  const bool v4 = source.is_v4() && destination.is_v4();
  return absl::StrCat("PROXY ", v4 ? "TCP4 " : "TCP6 ", IpText(source.IpBytes16(), v4), " ",
                      IpText(destination.IpBytes16(), v4), " ", source.port(), " ",
                      destination.port(), "\r\n");
}

std::string BuildProxyV2(const net::SocketAddress& source, const net::SocketAddress& destination) {
  if (!IsInet(source) || !IsInet(destination)) return BuildProxyV2Local();
  const bool v4 = source.is_v4() && destination.is_v4();
  const size_t ip = v4 ? 4 : 16;
  const size_t length = 2 * ip + 4;
  std::string out(reinterpret_cast<const char*>(kV2Signature), sizeof(kV2Signature));
  out.push_back('\x21');  // version 2, PROXY
  out.push_back(v4 ? '\x11' : '\x21');
  out.push_back(static_cast<char>(length >> 8));
  out.push_back(static_cast<char>(length & 0xFF));
  for (const net::SocketAddress* a : {&source, &destination}) {
    const std::array<uint8_t, 16> ip16 = a->IpBytes16();
    out.append(reinterpret_cast<const char*>(ip16.data()) + 16 - ip, ip);
  }
  for (const net::SocketAddress* a : {&source, &destination}) {
    out.push_back(static_cast<char>(a->port() >> 8));
    out.push_back(static_cast<char>(a->port() & 0xFF));
  }
  return out;
}

std::string BuildProxyV2Local() {
  std::string out(reinterpret_cast<const char*>(kV2Signature), sizeof(kV2Signature));
  out.append({'\x20', '\x00', '\x00', '\x00'});  // version 2 LOCAL, UNSPEC, length 0
  return out;
}

}  // namespace l4lb::admission
