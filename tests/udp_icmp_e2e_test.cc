// Forged ICMP port unreachables against the built l4lb's UDP sessions (issue 12,
// item 1, UDP): anyone who can guess a session socket's ports can send one, and
// each used to end the session and count against the backend (one failure from
// an UP-on-the-edge backend takes it DOWN). Only an ICMP that quotes the
// session's last datagram, unanswered, may count; a backend that really closed
// its port must still be found by the datagrams sent to it. Runs in a network
// namespace of its own: the raw socket reaches nothing but that loopback.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/netns.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"
#include "tests/harness/udp_l4lb.h"

namespace l4lb::testing {
namespace {

constexpr uint16_t kEchoPort = 5300;

uint16_t InternetChecksum(const std::vector<uint8_t>& bytes) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) sum += bytes[i] << 8 | bytes[i + 1];
  if (bytes.size() % 2) sum += bytes.back() << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// From 127.0.0.2, as the backend's host would: an ICMP destination unreachable
// (`code`: ICMP_PORT_UNREACH, ICMP_HOST_UNREACH, ...) for a datagram
// 127.0.0.1:session_port -> 127.0.0.2:backend_port carrying `payload`. The
// kernel delivers it to the socket connected on those ports, as a real one.
bool ForgeUnreachable(uint8_t code, uint16_t session_port, uint16_t backend_port,
                      const std::string& payload) {
  ip inner{};
  inner.ip_v = 4;
  inner.ip_hl = 5;
  inner.ip_len = htons(sizeof(ip) + sizeof(udphdr) + payload.size());
  inner.ip_ttl = 64;
  inner.ip_p = IPPROTO_UDP;
  inet_pton(AF_INET, "127.0.0.1", &inner.ip_src);
  inet_pton(AF_INET, "127.0.0.2", &inner.ip_dst);
  udphdr udp{};
  udp.source = htons(session_port);
  udp.dest = htons(backend_port);
  udp.len = htons(sizeof(udphdr) + payload.size());

  std::vector<uint8_t> message(8);  // type, code, checksum, 4 unused bytes
  message[0] = ICMP_DEST_UNREACH;
  message[1] = code;
  const auto append = [&](const void* p, size_t n) {
    message.insert(message.end(), static_cast<const uint8_t*>(p),
                   static_cast<const uint8_t*>(p) + n);
  };
  std::vector<uint8_t> header(reinterpret_cast<uint8_t*>(&inner),
                              reinterpret_cast<uint8_t*>(&inner) + sizeof(inner));
  inner.ip_sum = htons(InternetChecksum(header));
  append(&inner, sizeof(inner));
  append(&udp, sizeof(udp));
  append(payload.data(), payload.size());
  const uint16_t sum = InternetChecksum(message);
  message[2] = sum >> 8;
  message[3] = sum & 0xFF;

  const int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return false;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  const bool sent = bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) == 0 &&
                    sendto(fd, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&to),
                           sizeof(to)) == static_cast<ssize_t>(message.size());
  close(fd);
  return sent;
}

TEST(UdpRefusalTest, ForgedPortUnreachablesNeitherEndTheSessionNorCountButARealOneDoes) {
  absl::StatusOr<std::unique_ptr<NetNamespace>> ns = NetNamespace::Enter("l4lb-udpicmp");
  ASSERT_TRUE(ns.ok()) << ns.status();
  UdpEcho echo("127.0.0.2", kEchoPort);
  ASSERT_TRUE(echo.ok());
  // Probes every 30 s: within the test only client traffic can tell l4lb that
  // the backend is gone. fall=1: one failure counted takes it DOWN.
  auto l4lb = StartUdpL4lb({Backends(kEchoPort, 1), "--threads=1", "--health_check=udp",
                            "--health_send=ping", "--health_expect=ping", "--health_interval=30s",
                            "--health_timeout=1s", "--health_fall=1"});
  ASSERT_NE(l4lb, nullptr);
  const std::string backend = absl::StrCat("backend 127.0.0.2:", kEchoPort);
  const int fd = Client("127.0.0.1");
  ASSERT_GE(fd, 0);
  ASSERT_EQ(RoundTrip(fd, *l4lb, "hello"), "hello");
  const uint16_t session_port = echo.last_peer_port();
  ASSERT_NE(session_port, 0);

  // A port unreachable quoting a datagram the backend has answered already, and
  // one quoting bytes l4lb never sent: neither is the backend refusing what l4lb
  // sent.
  ASSERT_TRUE(ForgeUnreachable(ICMP_PORT_UNREACH, session_port, kEchoPort, "hello"))
      << strerror(errno);
  ASSERT_TRUE(ForgeUnreachable(ICMP_PORT_UNREACH, session_port, kEchoPort, "forged bytes"))
      << strerror(errno);
  EXPECT_TRUE(
      WaitFor(absl::Seconds(2),
              [&] { return l4lb->HasLine("answers no datagram l4lb sent", "not counted"); }))
      << "l4lb did not see the forged refusals as such\n"
      << l4lb->Log();
  EXPECT_EQ(RoundTrip(fd, *l4lb, "still there"), "still there");
  EXPECT_EQ(echo.last_peer_port(), session_port) << "the session was replaced";
  // A host unreachable on its own (sent together, its EHOSTUNREACH would take the
  // place of the refusals' ECONNREFUSED as the socket's pending error).
  ASSERT_TRUE(ForgeUnreachable(ICMP_HOST_UNREACH, session_port, kEchoPort, "still there"))
      << strerror(errno);
  EXPECT_EQ(RoundTrip(fd, *l4lb, "and now"), "and now");
  EXPECT_EQ(echo.last_peer_port(), session_port) << "the session was replaced";
  EXPECT_TRUE(SessionLines(*l4lb, {"backend_refused"}).empty()) << l4lb->Log();
  EXPECT_TRUE(SessionLines(*l4lb, {"error"}).empty()) << l4lb->Log();
  // The checker takes passive reports every 100 ms: give a wrong one time to show.
  EXPECT_FALSE(WaitFor(absl::Milliseconds(500), [&] { return l4lb->HasLine(backend, "is DOWN"); }))
      << l4lb->Log();

  // The backend's port really closes: the kernel refuses the next datagram, and
  // its ICMP quotes it.
  echo.Stop();
  ASSERT_TRUE(SendTo(fd, "127.0.0.1", l4lb->port(), "anyone there?"));
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return SessionLines(*l4lb, {"backend_refused"}).size() == 1;
  })) << l4lb->Log();
  const std::optional<absl::Duration> down = WaitForDown(*l4lb, backend);
  ASSERT_TRUE(down.has_value()) << "a really closed port was not counted\n" << l4lb->Log();
  printf("backend DOWN %s after the datagram its closed port refused\n",
         absl::FormatDuration(*down).c_str());
  close(fd);

  ASSERT_EQ(l4lb->process().Stop(SIGTERM, absl::Seconds(5)), 0);
  const int64_t ignored = ExitTotal(*l4lb, "udp_refusals_ignored");
  printf("udp_refusals_ignored=%lld\n", static_cast<long long>(ignored));
  EXPECT_GE(ignored, 1);
}

}  // namespace
}  // namespace l4lb::testing
