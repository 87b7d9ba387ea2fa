#include "l4lb/tls/client_hello.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace l4lb::tls {
namespace {

using Kind = ClientHelloResult::Kind;

// --- Building hellos byte by byte (RFC 8446 4.1.2, RFC 6066 3) ---

std::string U8(size_t v) { return std::string(1, static_cast<char>(v)); }
std::string U16(size_t v) { return U8(v >> 8) + U8(v & 0xFF); }
std::string U24(size_t v) { return U8(v >> 16) + U16(v & 0xFFFF); }
std::string Vec8(const std::string& s) { return U8(s.size()) + s; }
std::string Vec16(const std::string& s) { return U16(s.size()) + s; }
std::string Ext(uint16_t type, const std::string& data) { return U16(type) + Vec16(data); }
std::string Sni(const std::string& name) { return Ext(0, Vec16(U8(0) + Vec16(name))); }

struct Hello {
  std::string version = U16(0x0303);
  std::string random = std::string(32, '\x5A');
  std::string session_id = std::string(32, '\x11');
  std::string cipher_suites = U16(0x1301) + U16(0x1302) + U16(0xC02F);
  std::string compression = U8(0);
  std::optional<std::string> extensions = Sni("a.example.com");

  std::string Body() const {
    std::string body =
        version + random + Vec8(session_id) + Vec16(cipher_suites) + Vec8(compression);
    return extensions ? body + Vec16(*extensions) : body;
  }
};

std::string Handshake(const std::string& body) { return U8(1) + U24(body.size()) + body; }

// The handshake message cut into records of at most `fragment` bytes.
std::string Records(const std::string& handshake, size_t fragment = 16384) {
  std::string out;
  for (size_t at = 0; at < handshake.size(); at += fragment) {
    const std::string piece = handshake.substr(at, fragment);
    out += U8(22) + U16(0x0301) + Vec16(piece);
  }
  return out;
}

std::string Wire(const Hello& hello, size_t fragment = 16384) {
  return Records(Handshake(hello.Body()), fragment);
}

// A TLS 1.3 hello the way browsers send them: GREASE, many extensions, the name
// in the middle, padded to 512 bytes of handshake.
Hello ManyExtensions(const std::string& sni) {
  std::string e = Ext(0x0A0A, "") + sni + Ext(0x0017, "") + Ext(0xFF01, U8(0)) +
                  Ext(0x000A, Vec16(U16(0x001D) + U16(0x0017) + U16(0x0018))) +
                  Ext(0x000B, Vec8(U8(0))) + Ext(0x0023, "") +
                  Ext(0x0010, Vec16(Vec8("h2") + Vec8("http/1.1"))) +
                  Ext(0x0005, U8(1) + U16(0) + U16(0)) +
                  Ext(0x000D, Vec16(U16(0x0403) + U16(0x0804) + U16(0x0401))) + Ext(0x0012, "") +
                  Ext(0x0033, Vec16(U16(0x001D) + Vec16(std::string(32, 'k')))) +
                  Ext(0x002D, Vec8(U8(1))) + Ext(0x002B, Vec8(U16(0x0304) + U16(0x0303))) +
                  Ext(0x001B, Vec8(U16(2))) + Ext(0x4469, Vec16(Vec8("h2"))) + Ext(0xBABA, U8(0));
  Hello h;
  h.extensions = e;
  const size_t unpadded = Handshake(h.Body()).size() + 4;
  h.extensions = e + Ext(0x0015, std::string(512 - unpadded, '\0'));
  return h;
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

struct Decision {
  ClientHelloResult result;
  size_t at = 0;  // the shortest prefix with that result (0: never decided)
};

// Feeds every prefix of `wire`, as a client sending a byte at a time would, and
// checks the contract: kNeedMore, then one answer that more bytes never change.
Decision Feed(const std::string& wire, size_t max_bytes = kMaxClientHelloBytes) {
  Decision d;
  for (size_t n = 0; n <= wire.size(); ++n) {
    ClientHelloResult r = ParseClientHello(Bytes(wire).first(n), max_bytes);
    if (d.at == 0) {
      if (r.kind != Kind::kNeedMore) d = {r, n};
      continue;
    }
    EXPECT_EQ(r.kind, d.result.kind) << "prefix " << n << " of " << absl::CHexEscape(wire);
    EXPECT_EQ(r.reason, d.result.reason) << "prefix " << n;
    EXPECT_EQ(r.server_name, d.result.server_name) << "prefix " << n;
    if (r.kind != d.result.kind) break;
  }
  if (d.at == 0) d.result = ParseClientHello(Bytes(wire), max_bytes);
  return d;
}

// A complete, valid hello: every strict prefix needs more, the whole gives `name`.
void ExpectName(const std::string& wire, const std::string& name) {
  const Decision d = Feed(wire);
  EXPECT_EQ(d.result.kind, name.empty() ? Kind::kNoServerName : Kind::kServerName)
      << d.result.reason;
  EXPECT_EQ(d.result.server_name, name);
  EXPECT_EQ(d.at, wire.size()) << "decided before the hello's last byte";
}

// Broken: kMalformed naming what, every longer buffer the same.
void ExpectMalformed(const std::string& wire, const std::string& reason) {
  const Decision d = Feed(wire);
  EXPECT_EQ(d.result.kind, Kind::kMalformed) << absl::CHexEscape(wire);
  EXPECT_NE(d.result.reason.find(reason), std::string::npos)
      << "reason \"" << d.result.reason << "\", want \"" << reason << "\"";
  EXPECT_TRUE(d.result.server_name.empty());
}

// --- Real hellos ---

// Captured once with OpenSSL 3.0.19 (Debian 12): `openssl s_client -connect
// 127.0.0.1:PORT -servername a.example.com` against a socket that read and saved
// the first record: TLS 1.3 with x25519 key share, 9 extensions, 319 bytes.
TEST(ClientHelloTest, CapturedOpensslHello) {
  std::ifstream in("l4lb/tls/testdata/s_client_a.example.com.bin", std::ios::binary);
  const std::string wire((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(wire.size(), 319u);
  ExpectName(wire, "a.example.com");
  // What follows the hello (here, what a TLS 1.3 client sends next) is not read.
  const std::string ccs = U8(20) + U16(0x0303) + Vec16(U8(1));
  EXPECT_EQ(ParseClientHello(Bytes(wire + ccs)).server_name, "a.example.com");
  // Its own size is enough of a bound, one byte less is not.
  EXPECT_EQ(ParseClientHello(Bytes(wire), wire.size()).kind, Kind::kServerName);
  const ClientHelloResult small = ParseClientHello(Bytes(wire), wire.size() - 1);
  EXPECT_EQ(small.kind, Kind::kMalformed);
  EXPECT_EQ(small.reason, "ClientHello larger than 318 bytes");
}

// Runs `openssl s_client` against a socket listening on 127.0.0.1:0 and parses
// what it sends as it arrives; nullopt (and the test skipped) without openssl.
std::optional<ClientHelloResult> LiveHello(std::vector<std::string> args) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(listen(listener, 1), 0);
  EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  args.insert(args.begin(), {"openssl", "s_client", "-connect",
                             absl::StrCat("127.0.0.1:", ntohs(addr.sin_port))});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  for (int fd : {0, 1, 2}) posix_spawn_file_actions_addopen(&files, fd, "/dev/null", O_RDWR, 0);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "openssl", &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) {
    close(listener);
    return std::nullopt;
  }
  std::optional<ClientHelloResult> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, 10'000) == 1) {
    const int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    std::string wire;
    ClientHelloResult r;
    while (r.kind == Kind::kNeedMore && absl::Now() < deadline) {
      pollfd c{conn, POLLIN, 0};
      if (poll(&c, 1, 1000) != 1) continue;
      char buf[4096];
      const ssize_t n = read(conn, buf, sizeof(buf));
      if (n <= 0) break;
      wire.append(buf, n);
      r = ParseClientHello(Bytes(wire));
    }
    out = r;
    close(conn);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  close(listener);
  if (!out) ADD_FAILURE() << "openssl did not connect within 10 s";
  return out;
}

TEST(ClientHelloTest, LiveOpensslHellos) {
  struct Case {
    std::vector<std::string> args;
    Kind kind;
    std::string name;
  };
  const Case cases[] = {
      {{"-servername", "Live.Example.COM"}, Kind::kServerName, "live.example.com"},
      {{"-servername", "b.example.com", "-tls1_2"}, Kind::kServerName, "b.example.com"},
      {{"-servername", "c.example.com", "-tls1_3", "-groups", "P-256:P-384:X25519"},
       Kind::kServerName,
       "c.example.com"},
      {{"-noservername"}, Kind::kNoServerName, ""},
  };
  for (const Case& c : cases) {
    const std::optional<ClientHelloResult> r = LiveHello(c.args);
    if (!r) GTEST_SKIP() << "no openssl binary";
    EXPECT_EQ(r->kind, c.kind) << c.args[0] << ": " << r->reason;
    EXPECT_EQ(r->server_name, c.name);
  }
}

// --- Constructed hellos ---

TEST(ClientHelloTest, ConstructedHellos) {
  ExpectName(Wire(Hello{}), "a.example.com");
  ExpectName(Wire(ManyExtensions(Sni("www.example.org"))), "www.example.org");
  Hello h;
  h.session_id = "";
  h.extensions = Sni("A.Example.COM.");  // normalized: lowercase, no root dot
  ExpectName(Wire(h), "a.example.com");
  h.extensions = Sni("under_score-1.internal");
  ExpectName(Wire(h), "under_score-1.internal");
  h.extensions = Sni(std::string(63, 'x') + "." + std::string(63, 'y') + "." +
                     std::string(63, 'z') + "." + std::string(63, 'w'));  // 255 bytes
  ExpectName(Wire(h), h.extensions->substr(9));
  h.version = U16(0x0301);  // a TLS 1.0 client
  h.compression = U8(1) + U8(0);
  h.extensions = Sni("old.example.com");
  ExpectName(Wire(h), "old.example.com");
}

TEST(ClientHelloTest, WithoutServerName) {
  ExpectName(Wire(ManyExtensions("")), "");
  Hello h;
  h.extensions = std::nullopt;  // no extensions block at all
  ExpectName(Wire(h), "");
  h.extensions = "";  // an empty one
  ExpectName(Wire(h), "");
}

// The handshake message fragmented over records (RFC 8446 5.1), down to one byte
// per record, so even the handshake header and the name are split.
TEST(ClientHelloTest, FragmentedOverRecords) {
  for (size_t fragment : {1, 2, 3, 5, 7, 64, 100}) {
    SCOPED_TRACE(fragment);
    ExpectName(Records(Handshake(Hello{}.Body()), fragment), "a.example.com");
    ExpectName(Wire(ManyExtensions(Sni("frag.example.com")), fragment), "frag.example.com");
  }
  // A mix of sizes, with the real capture's handshake.
  std::ifstream in("l4lb/tls/testdata/s_client_a.example.com.bin", std::ios::binary);
  const std::string wire((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string handshake = wire.substr(5);
  std::string mixed;
  for (size_t at = 0, size = 1; at < handshake.size(); at += size, size = size * 3 % 17 + 1) {
    mixed += U8(22) + U16(0x0303) + Vec16(handshake.substr(at, size));
  }
  ExpectName(mixed, "a.example.com");
}

// What a caller waits for before parsing again: the end of the record in
// progress, or the next header; every prefix of a fragmented hello asks for
// more than it has, and never past the record that completes it.
TEST(ClientHelloTest, BytesWantedIsTheEndOfTheRecordInProgress) {
  const auto wanted = [](const std::string& s) {
    return ClientHelloBytesWanted(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(wanted(""), 5u);
  EXPECT_EQ(wanted(std::string("\x16\x03\x01", 3)), 5u);
  EXPECT_EQ(wanted(std::string("\x16\x03\x01\x01\x00", 5)), 5u + 256);
  EXPECT_EQ(wanted(std::string("\x16\x03\x01\x00\x02xy", 7)), 7u + 5);
  EXPECT_EQ(wanted(std::string("\x16\x03\x01\x00\x02xy\x16\x03", 9)), 7u + 5);
  EXPECT_EQ(wanted(std::string("\x16\x03\x01\x00\x02xy\x16\x03\x01\x00\x09" "ab", 14)),
            7u + 5 + 9);
  const std::string wire = Records(Handshake(Hello{}.Body()), 7);
  for (size_t n = 0; n < wire.size(); ++n) {
    const std::string prefix = wire.substr(0, n);
    const absl::Span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(prefix.data()), n);
    if (ParseClientHello(bytes).kind != Kind::kNeedMore) continue;
    EXPECT_GT(wanted(prefix), n);
    EXPECT_LE(wanted(prefix), std::min(wire.size(), n + 5 + 7)) << n;
  }
}

TEST(ClientHelloTest, NotTlsWithinThreeBytes) {
  for (const std::string& wire : {std::string("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"),
                                  std::string("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
                                  std::string("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"),
                                  std::string("\r\n\r\n\0\r\nQUIT\n", 12),  // PROXY v2 signature
                                  std::string("\x80\x2e\x01\x03\x01", 5),  // SSLv2-compatible hello
                                  std::string("\x16\x02\x00\x00\x10", 5),  // major version 2
                                  std::string("\x16\x03\x00\x00\x10", 5),  // SSL 3.0
                                  std::string("\x16\x03\x05\x00\x10", 5)}) {  // 3.5: no such TLS
    const Decision d = Feed(wire);
    EXPECT_EQ(d.result.kind, Kind::kNotTls) << absl::CHexEscape(wire);
    EXPECT_LE(d.at, 3u) << absl::CHexEscape(wire);
    EXPECT_FALSE(d.result.reason.empty());
  }
  EXPECT_EQ(ParseClientHello(Bytes("GET / HTTP/1.1")).reason,
            "first byte 0x47 is not a TLS handshake record (22)");
  EXPECT_EQ(ParseClientHello({}).kind, Kind::kNeedMore);
}

TEST(ClientHelloTest, MalformedRecords) {
  const std::string handshake = Handshake(Hello{}.Body());
  const std::string first = Records(handshake.substr(0, 10));
  ExpectMalformed(U8(22) + U16(0x0301) + U16(0), "record 1 is empty");
  ExpectMalformed(U8(22) + U16(0x0301) + U16(16385) + handshake, "record 1 of 16385 bytes");
  ExpectMalformed(first + U8(21) + U16(0x0301) + Vec16(U16(0x0228)),  // an alert in between
                  "record 2 has content type 21");
  ExpectMalformed(first + U8(22) + U16(0x0201) + Vec16(handshake.substr(10)),
                  "record 2 has version 2.1");
  ExpectMalformed(first + U8(22) + U16(0x0303) + U16(0), "record 2 is empty");
  ExpectMalformed(Records(U8(2) + handshake.substr(1)), "handshake type 2, not ClientHello");
}

TEST(ClientHelloTest, MalformedFields) {
  const auto with = [](auto change) {
    Hello h;
    change(h);
    return Wire(h);
  };
  ExpectMalformed(with([](Hello& h) { h.version = U16(0x0200); }), "client version 0x0200");
  ExpectMalformed(with([](Hello& h) { h.version = U16(0x0305); }), "client version 0x0305");
  ExpectMalformed(Records(Handshake(U16(0x0303) + std::string(20, 'r'))), "inside random");
  ExpectMalformed(with([](Hello& h) { h.session_id = std::string(33, 's'); }),
                  "session id of 33 bytes (over 32)");
  ExpectMalformed(with([](Hello& h) { h.cipher_suites = "abc"; }), "cipher suites of 3 bytes");
  ExpectMalformed(with([](Hello& h) { h.cipher_suites = ""; }), "cipher suites of 0 bytes");
  ExpectMalformed(with([](Hello& h) { h.compression = ""; }), "no compression methods");
  ExpectMalformed(Records(Handshake(U16(0x0303) + std::string(32, 'r') + U8(0) + U16(200))),
                  "cipher suites of 200 bytes overrun the hello (0 left)");
  // The extensions block must end exactly where the hello does.
  const std::string body = Hello{}.Body();
  ExpectMalformed(Records(Handshake(body + "xy")), "2 bytes after the extensions");
  ExpectMalformed(Records(Handshake(body.substr(0, body.size() - 1))),
                  "extensions of 22 bytes overrun the hello (21 left)");
  ExpectMalformed(with([](Hello& h) { *h.extensions += "\x01"; }),
                  "hello ends inside an extension header");
  ExpectMalformed(with([](Hello& h) { *h.extensions += U16(0x10) + U16(1); }),
                  "extension 0x0010 of 1 bytes overruns the hello (0 left)");
  ExpectMalformed(with([](Hello& h) { *h.extensions += Ext(0x002B, "") + Ext(0x002B, ""); }),
                  "extension 0x002b repeated");
  ExpectMalformed(with([](Hello& h) { *h.extensions += Sni("b.example.com"); }),
                  "extension 0x0000 repeated");
}

TEST(ClientHelloTest, MalformedServerName) {
  const auto with = [](const std::string& sni_data) {
    Hello h;
    h.extensions = Ext(0x0017, "") + Ext(0, sni_data) + Ext(0x002B, Vec8(U16(0x0304)));
    return Wire(h);
  };
  ExpectMalformed(with(""), "hello ends inside the server_name list length");
  ExpectMalformed(with(U16(0)), "hello ends inside the server_name entry");
  ExpectMalformed(with(U16(9) + U8(0) + Vec16("a.b")),
                  "server_name list of 9 bytes in an "
                  "extension of 6");
  ExpectMalformed(with(Vec16(U8(1) + Vec16("a.b"))), "server_name type 1 (only host_name, 0)");
  ExpectMalformed(with(Vec16(U8(0) + Vec16("a.b") + U8(0) + Vec16("c.d"))),
                  "host name of 3 bytes, 9 left in the server_name list (one name only)");
  ExpectMalformed(with(Vec16(U8(0) + U16(0))), "host name of 0 bytes (must be 1 to 255)");
  ExpectMalformed(with(Vec16(U8(0) + Vec16(std::string(256, 'a')))), "host name of 256 bytes");
  ExpectMalformed(with(Vec16(U8(0) + Vec16(std::string("a\0b.com", 7)))),
                  "server name \"a\\x00\\x62.com\": only letters");
  for (const char* name : {"a b.com", "*.example.com", "a/b", "caf\xC3\xA9.fr"}) {
    ExpectMalformed(with(Vec16(U8(0) + Vec16(name))), "only letters, digits");
  }
  for (const char* name : {".", "..", ".a.com", "a..com", "a.com.."}) {
    ExpectMalformed(with(Vec16(U8(0) + Vec16(name))), "empty label");
  }
}

// More than max_bytes is refused as soon as the lengths say so, not after
// buffering it: here from the handshake header, 9 bytes in.
TEST(ClientHelloTest, LargerThanTheBound) {
  Hello h;
  h.extensions = Sni("big.example.com") + Ext(0x0015, std::string(20000, '\0'));
  const std::string wire = Wire(h);
  Decision d = Feed(wire);
  EXPECT_EQ(d.result.kind, Kind::kMalformed);
  EXPECT_EQ(d.result.reason, "ClientHello larger than 16384 bytes");
  EXPECT_EQ(d.at, 9u);
  // Within a bound that holds it, the same hello is fine.
  EXPECT_EQ(ParseClientHello(Bytes(wire), wire.size()).kind, Kind::kServerName);
  // One record header per byte counts against the bound too: decided at the
  // header of the next-to-last record, which shows that the 2 bytes left need
  // another header, one byte past the bound.
  const std::string tiny = Records(Handshake(Hello{}.Body()), 1);
  EXPECT_EQ(Feed(tiny, tiny.size()).result.kind, Kind::kServerName);
  d = Feed(tiny, tiny.size() - 1);
  EXPECT_EQ(d.result.reason, absl::StrCat("ClientHello larger than ", tiny.size() - 1, " bytes"));
  EXPECT_EQ(d.at, tiny.size() - 7);
  // Below the smallest record header plus handshake header, nothing fits.
  EXPECT_EQ(Feed(Wire(Hello{}), 8).result.reason, "ClientHello larger than 8 bytes");
}

TEST(ClientHelloTest, NormalizeServerName) {
  std::string name = "WWW.Example.COM.";
  ASSERT_TRUE(NormalizeServerName(&name).ok());
  EXPECT_EQ(name, "www.example.com");
  for (std::string bad : {std::string(), std::string("a..b"), std::string("a b"),
                          std::string(256, 'a'), std::string("a\0", 2)}) {
    EXPECT_FALSE(NormalizeServerName(&bad).ok()) << absl::CHexEscape(bad);
  }
  name = std::string(254, 'a') + ".";  // 255 with the root dot
  EXPECT_TRUE(NormalizeServerName(&name).ok());
  EXPECT_EQ(name.size(), 254u);
}

}  // namespace
}  // namespace l4lb::tls
