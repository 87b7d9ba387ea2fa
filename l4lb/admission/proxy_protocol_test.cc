#include "l4lb/admission/proxy_protocol.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace l4lb::admission {
namespace {

using net::SocketAddress;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

SocketAddress Addr(const char* text) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse(text);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.value_or(SocketAddress());
}

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header from its parts: signature, version/command, family, length, block.
std::string V2(uint8_t ver_cmd, uint8_t fam, const std::string& block) {
  std::string out = kSig;
  out.push_back(static_cast<char>(ver_cmd));
  out.push_back(static_cast<char>(fam));
  out.push_back(static_cast<char>(block.size() >> 8));
  out.push_back(static_cast<char>(block.size() & 0xFF));
  return out + block;
}

// TCP over IPv4, 192.168.0.1:56324 -> 192.168.0.11:443 (the spec's v1 example).
const std::string kBlock4("\xC0\xA8\x00\x01\xC0\xA8\x00\x0B\xDC\x04\x01\xBB", 12);

std::string Tlv(uint8_t type, const std::string& value) {
  std::string out(1, static_cast<char>(type));
  out.push_back(static_cast<char>(value.size() >> 8));
  out.push_back(static_cast<char>(value.size() & 0xFF));
  return out + value;
}

// RFC 4960 Appendix B's CRC32c, written out again here so the parser's copy is
// checked against an independent one (itself checked against the standard
// check value below).
uint32_t Crc32c(const std::string& s) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char c : s) {
    crc ^= c;
    for (int i = 0; i < 8; ++i) crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
  }
  return ~crc;
}

// A v2 TCP4 header whose last TLV is a CRC32C over the whole header.
std::string V2WithCrc() {
  std::string header = V2(0x21, 0x11, kBlock4 + Tlv(0x04, "pad") + Tlv(0x03, std::string(4, '\0')));
  const uint32_t crc = Crc32c(header);
  for (int i = 0; i < 4; ++i)
    header[header.size() - 4 + i] = static_cast<char>(crc >> (24 - 8 * i));
  return header;
}

ProxyHeader ParseComplete(const std::string& bytes) {
  absl::StatusOr<ProxyParse> r = ParseProxyHeader(Bytes(bytes));
  EXPECT_TRUE(r.ok()) << absl::CHexEscape(bytes) << ": " << r.status();
  if (!r.ok()) return {};
  EXPECT_TRUE(r->header.has_value()) << absl::CHexEscape(bytes);
  return r->header.value_or(ProxyHeader{});
}

TEST(ProxyProtocolTest, KnownBytesFromTheSpec) {
  const SocketAddress src = Addr("192.168.0.1:56324");
  const SocketAddress dst = Addr("192.168.0.11:443");
  EXPECT_EQ(BuildProxyV1(src, dst), "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  EXPECT_EQ(BuildProxyV2(src, dst), V2(0x21, 0x11, kBlock4));
  EXPECT_EQ(BuildProxyV2Local(), kSig + std::string("\x20\x00\x00\x00", 4));
  EXPECT_EQ(BuildProxyV1(SocketAddress(), dst), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(BuildProxyV2(src, SocketAddress()), BuildProxyV2Local());

  // Section 2.1's example: the HTTP request after the line is not consumed.
  const std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  const ProxyHeader h = ParseComplete(line + "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n");
  EXPECT_EQ(h.version, ProxyVersion::kV1);
  EXPECT_EQ(h.command, ProxyCommand::kProxy);
  EXPECT_EQ(h.transport, ProxyTransport::kTcp4);
  EXPECT_EQ(h.source, src);
  EXPECT_EQ(h.destination, dst);
  EXPECT_EQ(h.consumed, line.size());
}

TEST(ProxyProtocolTest, RoundTripsBothVersionsBothFamilies) {
  struct Case {
    const char* src;
    const char* dst;
    ProxyTransport transport;
    const char* src_out;  // what the receiver sees: mixed families arrive IPv4-mapped
  } cases[] = {
      {"203.0.113.9:40000", "10.0.0.1:21", ProxyTransport::kTcp4, "203.0.113.9:40000"},
      {"[2001:db8::9]:65535", "[2001:db8::1]:0", ProxyTransport::kTcp6, "[2001:db8::9]:65535"},
      {"203.0.113.9:1", "[2001:db8::1]:22", ProxyTransport::kTcp6, "[::ffff:203.0.113.9]:1"},
  };
  for (const Case& c : cases) {
    for (bool v2 : {false, true}) {
      const std::string header =
          v2 ? BuildProxyV2(Addr(c.src), Addr(c.dst)) : BuildProxyV1(Addr(c.src), Addr(c.dst));
      SCOPED_TRACE(absl::StrCat(c.src, " v2=", v2, " ", absl::CHexEscape(header)));
      const ProxyHeader h = ParseComplete(header + "SSH-2.0-client\r\n");
      EXPECT_EQ(h.version, v2 ? ProxyVersion::kV2 : ProxyVersion::kV1);
      EXPECT_EQ(h.command, ProxyCommand::kProxy);
      EXPECT_EQ(h.transport, c.transport);
      EXPECT_EQ(h.source.ToString(), c.src_out);
      EXPECT_EQ(h.destination.port(), Addr(c.dst).port());
      EXPECT_EQ(h.consumed, header.size());
    }
  }
}

// Valid headers of every kind the parser accepts.
std::vector<std::string> ValidHeaders() {
  return {
      "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
      "PROXY TCP4 0.0.0.0 10.0.0.1 0 80\r\n",
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::1 65535 443\r\n", "PROXY UNKNOWN\r\n",
      // Section 2.1's worst case, exactly 107 bytes.
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
      V2(0x21, 0x11, kBlock4), V2(0x21, 0x12, kBlock4),
      V2(0x21, 0x21, std::string(32, '\x20') + "\x01\x02\x03\x04"),
      V2(0x21, 0x22, std::string(36, '\x01')),
      V2(0x21, 0x11, kBlock4 + Tlv(0x01, "h2") + Tlv(0x04, "") + Tlv(0xE0, std::string(300, 'x'))),
      V2WithCrc(), V2(0x20, 0x00, ""), V2(0x20, 0x11, kBlock4),  // LOCAL with addresses: ignored
      V2(0x20, 0xFF, "garbage, ignored with LOCAL"),             // LOCAL: family ignored too
      V2(0x21, 0x00, "unspec, ignored"),
      V2(0x21, 0x31, std::string(216, '/') + Tlv(0x04, "")),  // AF_UNIX: treated as UNSPEC
      V2(0x21, 0x11, kBlock4 + Tlv(0x04, std::string(520 - 12 - 3, 'n'))),  // 536 bytes
  };
}

TEST(ProxyProtocolTest, EveryPrefixNeedsMoreAndNeverFailsOrSucceedsEarly) {
  for (const std::string& header : ValidHeaders()) {
    SCOPED_TRACE(absl::CHexEscape(header));
    ASSERT_LE(header.size(), kProxyMaxHeaderBytes);
    for (size_t n = 0; n < header.size(); ++n) {
      absl::StatusOr<ProxyParse> r = ParseProxyHeader(Bytes(header).first(n));
      ASSERT_TRUE(r.ok()) << "prefix of " << n << ": " << r.status();
      ASSERT_FALSE(r->header.has_value()) << "complete after " << n << " bytes";
      // The bound lets the caller read the whole header and never forces more.
      EXPECT_GE(r->max_total, header.size()) << n;
      EXPECT_LE(r->max_total, kProxyMaxHeaderBytes) << n;
      if (n > 0 && header[0] == 'P') {
        EXPECT_EQ(r->max_total, kProxyV1MaxBytes);
      }
      if (header[0] == '\r' && n >= kProxyV2HeaderBytes) {
        EXPECT_EQ(r->max_total, header.size());
      }
    }
    // Complete, and whatever follows is left for the relay.
    EXPECT_EQ(ParseComplete(header).consumed, header.size());
    EXPECT_EQ(ParseComplete(header + "\r\nPROXY \x0D\x0A").consumed, header.size());
  }
}

TEST(ProxyProtocolTest, SignatureIsDecidedAtTheFirstByteThatDiffers) {
  // Every valid header, and every prefix of it, is (the start of) a signature.
  for (const std::string& header : ValidHeaders()) {
    SCOPED_TRACE(absl::CHexEscape(header));
    for (size_t n = 0; n <= header.size(); ++n) {
      const size_t signature = header[0] == 'P' ? 6 : kProxySignatureMaxBytes;
      EXPECT_EQ(MatchProxySignature(Bytes(header).first(n)),
                n < signature ? ProxySignature::kPrefix : ProxySignature::kPresent)
          << n;
    }
  }
  // A malformed header after the signature is still a header (the peer meant one).
  EXPECT_EQ(MatchProxySignature(Bytes("PROXY garbage")), ProxySignature::kPresent);
  EXPECT_EQ(MatchProxySignature(Bytes(kSig)), ProxySignature::kPresent);
  // Ordinary first bytes: decided at once, however short.
  for (const std::string& data :
       {std::string("PASS x\r\n"), std::string("PA"), std::string("GET / HTTP/1.0\r\n"),
        std::string("proxy "), std::string("PROXY"), std::string("PROXYTCP4"),
        std::string("\x16\x03"), std::string("\r\n\r\n\0\r\nQUIT\r", 12), std::string("\r\n\r\nx"),
        std::string("\r\r")}) {
    SCOPED_TRACE(absl::CHexEscape(data));
    const ProxySignature want = data == "PROXY" ? ProxySignature::kPrefix : ProxySignature::kAbsent;
    EXPECT_EQ(MatchProxySignature(Bytes(data)), want);
  }
}

TEST(ProxyProtocolTest, LocalAndUnspecUseThePeerAddress) {
  for (const std::string& header : {V2(0x20, 0x00, ""), V2(0x20, 0x11, kBlock4),
                                    V2(0x21, 0x00, "x"), V2(0x21, 0x32, std::string(216, 'u'))}) {
    const ProxyHeader h = ParseComplete(header);
    EXPECT_EQ(h.command, header[12] == 0x20 ? ProxyCommand::kLocal : ProxyCommand::kProxy);
    EXPECT_EQ(h.transport, ProxyTransport::kUnspec);
    EXPECT_EQ(h.source.family(), AF_UNSPEC);
    EXPECT_EQ(h.destination.family(), AF_UNSPEC);
  }
  const ProxyHeader unknown = ParseComplete("PROXY UNKNOWN 1.2.3.4 whatever\r\n");
  EXPECT_EQ(unknown.command, ProxyCommand::kUnknown);
  EXPECT_EQ(unknown.source.family(), AF_UNSPEC);
}

TEST(ProxyProtocolTest, TlvsAreSkippedAndFramed) {
  const std::string with_tlvs = V2(0x21, 0x11, kBlock4 + Tlv(0x02, "example.com") + Tlv(0x20, ""));
  const ProxyHeader h = ParseComplete(with_tlvs + "payload");
  EXPECT_EQ(h.consumed, with_tlvs.size());
  EXPECT_EQ(h.source.ToString(), "192.168.0.1:56324");
}

TEST(ProxyProtocolTest, Crc32cIsChecked) {
  ASSERT_EQ(Crc32c("123456789"), 0xE3069283u);  // the standard CRC-32C check value
  std::string header = V2WithCrc();
  EXPECT_TRUE(ParseComplete(header).source == Addr("192.168.0.1:56324"));
  header[16] ^= 1;  // one address bit: the sum no longer matches
  absl::StatusOr<ProxyParse> r = ParseProxyHeader(Bytes(header));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "v2: CRC32C mismatch");
}

TEST(ProxyProtocolTest, MalformedHeadersAreRejectedWithTheirReason) {
  const std::string tcp4 = "PROXY TCP4 1.2.3.4 5.6.7.8 ";
  struct Case {
    std::string bytes;
    const char* reason;
  } cases[] = {
      {"GET / HTTP/1.1\r\n", "not a PROXY protocol header (bad signature)"},
      {"\x16\x03\x01", "not a PROXY protocol header (bad signature)"},
      {"PROXY\r\n", "v1: bad signature (want \"PROXY \")"},
      {"PROXZ TCP4", "v1: bad signature"},
      {"PROXY TCP5 1.2.3.4 5.6.7.8 80 443\r\n", "v1: bad protocol \"TCP5\""},
      {"PROXY tcp4 1.2.3.4 5.6.7.8 80 443\r\n", "v1: bad protocol \"tcp4\""},
      {"PROXY UNKNOWNX\r\n", "v1: bad protocol \"UNKNOWNX\""},
      {tcp4 + "80 443\n", "v1: LF without CR"},
      {"PROXY TCP4\n", "v1: LF without CR"},
      {tcp4 + "80\r443\r\n", "v1: CR without LF"},
      {"PROXY UNKNOWN " + std::string(93, 'a'), "v1: no CRLF within 107 bytes"},
      {"PROXY UNKNOWN " + std::string(92, 'a') + "\r\n", "v1: no CRLF within 107 bytes"},
      {"PROXY TCP4  1.2.3.4 5.6.7.8 80 443\r\n", "v1: extra or missing space"},
      {tcp4 + "80 443 \r\n", "v1: extra or missing space"},
      {tcp4 + "80  443\r\n", "v1: extra or missing space"},
      {"PROXY  UNKNOWN\r\n", "v1: extra or missing space"},
      {"PROXY \r\n", "v1: extra or missing space"},
      {tcp4 + "80\r\n", "v1: 3 fields after the protocol (want SRC DST SPORT DPORT)"},
      {tcp4 + "80 443 9\r\n", "v1: 5 fields after the protocol"},
      {"PROXY TCP4 1.2.3.04 5.6.7.8 80 443\r\n", "v1: source \"1.2.3.04\" is not an IPv4"},
      {"PROXY TCP4 1.2.3.256 5.6.7.8 80 443\r\n", "v1: source \"1.2.3.256\" is not an IPv4"},
      {"PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n", "v1: source \"1.2.3\" is not an IPv4"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8. 80 443\r\n", "destination \"5.6.7.8.\" is not an IPv4"},
      {"PROXY TCP4 1.2.3.4 ::1 80 443\r\n", "v1: destination \"::1\" is not an IPv4 address"},
      {"PROXY TCP6 1.2.3.4 ::1 80 443\r\n", "v1: source \"1.2.3.4\" is not an IPv6 address"},
      {"PROXY TCP6 ::1 ::g 80 443\r\n", "v1: destination \"::g\" is not an IPv6 address"},
      {std::string("PROXY TCP6 ::1\0x ::1 80 443\r\n", 29), "v1: source \"::1\\x00x\" is not an"},
      {"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 80 443\r\n", "is not an IPv6 address"},
      {tcp4 + "65536 443\r\n", "v1: port \"65536\" out of range"},
      {tcp4 + "80 99999\r\n", "v1: port \"99999\" out of range"},
      {tcp4 + "080 443\r\n", "v1: port \"080\" has a leading zero"},
      {tcp4 + "-1 443\r\n", "v1: port \"-1\" is not a number"},
      {tcp4 + "+80 443\r\n", "v1: port \"+80\" is not a number"},
      {tcp4 + "100000 443\r\n", "v1: port \"100000\" is not a number"},
      {tcp4 + "80 http\r\n", "v1: port \"http\" is not a number"},
      {kSig.substr(0, 5) + "x", "v2: bad signature"},
      {kSig.substr(0, 11) + "\r", "v2: bad signature"},
      {kSig + "\x11", "v2: bad version 1"},
      {kSig + "\x31", "v2: bad version 3"},
      {kSig + "\x22", "v2: bad command 2"},
      {kSig + "\x2F", "v2: bad command 15"},
      {kSig + "\x21\x13", "v2: bad family/transport 0x13"},
      {kSig + "\x21\x10", "v2: bad family/transport 0x10"},
      {kSig + "\x21\x41", "v2: bad family/transport 0x41"},
      {kSig + "\x21\x01", "v2: bad family/transport 0x01"},
      {V2(0x21, 0x11, kBlock4.substr(0, 11)),
       "v2: length 11 too small for family 0x11 (want at least 12)"},
      {V2(0x21, 0x21, kBlock4), "v2: length 12 too small for family 0x21 (want at least 36)"},
      {V2(0x21, 0x31, std::string(215, 'u')), "v2: length 215 too small for family 0x31"},
      {kSig + std::string("\x21\x11\x02\x09", 4), "v2: length 521 over the 536-byte header limit"},
      {kSig + std::string("\x20\x00\xFF\xFF", 4),
       "v2: length 65535 over the 536-byte header limit"},
      {V2(0x21, 0x11, kBlock4 + "\x04\x00"), "v2: truncated TLV"},
      {V2(0x21, 0x11, kBlock4 + Tlv(0x04, "abc").substr(0, 5)), "v2: TLV 0x04 of 3 bytes overruns"},
      {V2(0x21, 0x11, kBlock4 + Tlv(0x03, "abc")), "v2: CRC32C TLV of 3 bytes (want 4)"},
      {V2(0x21, 0x11, kBlock4 + Tlv(0x03, "abcd")), "v2: CRC32C mismatch"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ProxyParse> r = ParseProxyHeader(Bytes(c.bytes));
    ASSERT_FALSE(r.ok()) << absl::CHexEscape(c.bytes) << " parsed; want " << c.reason;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.reason), absl::string_view::npos)
        << absl::CHexEscape(c.bytes) << ": got \"" << r.status().message() << "\", want \""
        << c.reason << "\"";
  }
}

}  // namespace
}  // namespace l4lb::admission
