#include "l4lb/takeover/wire.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace l4lb::takeover {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Connection AConnection() {
  Connection c;
  c.service = "sftp";
  c.front = "sftp";
  c.listener = "0.0.0.0:22";
  c.backend = "10.0.0.2:22";
  c.client = "198.51.100.7:40522";
  c.target = "10.0.0.2:22";
  c.age_ns = 3'600'000'000'000;
  c.worker = 1;
  c.half_closed = true;
  c.up = {.bytes = 1ull << 33, .pipe_bytes = 65536, .source_eof = false, .done = false, .last = true};
  c.down = {.bytes = 12345, .pipe_bytes = 0, .source_eof = true, .done = true};
  return c;
}

TEST(WireTest, EveryMessageRoundTrips) {
  const Connection c = AConnection();
  absl::StatusOr<Message> m = Decode(Bytes(Encode(c)));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->type, MessageType::kConnection);
  EXPECT_EQ(m->connection.service, "sftp");
  EXPECT_EQ(m->connection.client, "198.51.100.7:40522");
  EXPECT_EQ(m->connection.age_ns, c.age_ns);
  EXPECT_EQ(m->connection.up.bytes, 1ull << 33);
  EXPECT_EQ(m->connection.up.pipe_bytes, 65536u);
  EXPECT_TRUE(m->connection.down.done);
  EXPECT_TRUE(m->connection.up.last);
  EXPECT_FALSE(m->connection.down.last);
  EXPECT_EQ(m->connection.worker, 1u);
  EXPECT_TRUE(m->connection.half_closed);
  EXPECT_FALSE(m->connection.proxy_screen);
  EXPECT_EQ(ExpectedFds(*m), 4u);  // client, backend, the up pipe's two ends

  m = Decode(Bytes(Encode(Listener{.service = "ftp", .udp = false, .requested = "0.0.0.0:0",
                                   .bound = "0.0.0.0:40001", .workers = 2})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->listener.bound, "0.0.0.0:40001");
  EXPECT_EQ(ExpectedFds(*m), 2u);

  m = Decode(Bytes(Encode(Hello{.version = kWireVersion, .build = "l4lb 1.2 (abc)"})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->hello.build, "l4lb 1.2 (abc)");
  m = Decode(Bytes(Encode(HelloReply{.accepted = false, .error = "draining", .listeners = 7, .workers = 2})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->hello_reply.accepted);
  EXPECT_EQ(m->hello_reply.listeners, 7u);
  EXPECT_EQ(m->hello_reply.workers, 2u);
  EXPECT_EQ(m->hello_reply.error, "draining");
  m = Decode(Bytes(Encode(Ready{})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->type, MessageType::kReady);
  m = Decode(Bytes(Encode(Done{.listeners = 3, .connections = 1000, .udp_sessions = 7})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->done.connections, 1000u);
  EXPECT_EQ(m->done.udp_sessions, 7u);
  m = Decode(Bytes(Encode(UdpSession{.service = "dns", .listener = "127.0.0.1:53",
                                     .backend = "10.0.0.2:53", .client = "192.0.2.1:5353",
                                     .target = "10.0.0.2:53", .local = "", .age_ns = 5,
                                     .idle_ns = 3, .responses = 2, .worker = 1})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->udp_session.client, "192.0.2.1:5353");
  EXPECT_EQ(m->udp_session.idle_ns, 3);
  EXPECT_EQ(m->udp_session.responses, 2u);
  EXPECT_EQ(ExpectedFds(*m), 1u);
  m = Decode(Bytes(Encode(Ack{.adopted = 999})));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->ack.adopted, 999u);
  EXPECT_EQ(ExpectedFds(*m), 0u);
}

// A peer's bytes are never trusted: every prefix, every flipped byte and every
// extra byte of a valid message is an error (or, for a flip that lands in a
// string's contents, another valid message), never a crash or an overread.
TEST(WireTest, EveryPrefixAndCorruptionIsAnError) {
  const std::string whole = Encode(AConnection());
  for (size_t n = 0; n < whole.size(); ++n) {
    std::string prefix = whole.substr(0, n);
    EXPECT_FALSE(Decode(Bytes(prefix)).ok()) << n;
    if (n < kHeaderBytes) continue;
    // The same with the header's length made to match: the field reader must
    // find the cut itself.
    const size_t length = n - kHeaderBytes;
    for (int i = 0; i < 4; ++i) prefix[8 + i] = static_cast<char>((length >> (8 * i)) & 0xFF);
    EXPECT_FALSE(Decode(Bytes(prefix)).ok()) << n;
  }
  EXPECT_FALSE(Decode(Bytes(whole + "x")).ok());
  for (size_t i = 0; i < whole.size(); ++i) {
    for (const uint8_t flip : {0x01, 0x80, 0xff}) {
      std::string bad = whole;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      (void)Decode(Bytes(bad));  // ASan/UBSan watch the reads
    }
  }
}

TEST(WireTest, ErrorsSayWhatIsWrong) {
  const std::string whole = Encode(AConnection());
  EXPECT_EQ(Decode(Bytes("GET / HTTP/1.1\r\n\r\n")).status().message(),
            "not a takeover message (no L4TK header)");
  std::string v2 = whole;
  v2[4] = 2;
  EXPECT_EQ(Decode(Bytes(v2)).status().message(), "wire version 2, this binary reads 1");
  std::string type = whole;
  type[6] = 99;
  EXPECT_EQ(Decode(Bytes(type)).status().message(), "unknown message type 99");
  // The header's length covers the message: cut it, and fix the length, to
  // reach the field reader.
  std::string cut = whole.substr(0, kHeaderBytes + 6);
  cut[8] = 6, cut[9] = cut[10] = cut[11] = 0;
  EXPECT_EQ(Decode(Bytes(cut)).status().message(), "connection: truncated at service");
  std::string huge = Encode(Hello{});
  huge[kHeaderBytes + 2] = static_cast<char>(0xff);  // build's length: 255 + ...
  huge[kHeaderBytes + 3] = static_cast<char>(0xff);
  EXPECT_TRUE(absl::StrContains(Decode(Bytes(huge)).status().message(), "at most 4096"))
      << Decode(Bytes(huge)).status();
  std::string longer = Encode(Ack{.adopted = 1}) + "zz";
  longer[8] = 10;  // the header says 10 payload bytes: 8 + the 2 extra
  EXPECT_EQ(Decode(Bytes(longer)).status().message(), "ack: 2 bytes after the payload");
  std::string not_bool = Encode(HelloReply{});
  not_bool[kHeaderBytes] = 2;
  EXPECT_EQ(Decode(Bytes(not_bool)).status().message(), "hello reply: a bool of 2 at accepted");
}

}  // namespace
}  // namespace l4lb::takeover
