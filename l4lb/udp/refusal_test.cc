#include "l4lb/udp/refusal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace l4lb::udp {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

LastSent Sent(absl::string_view data, int64_t at_ns) {
  LastSent sent;
  sent.OnSent(data.data(), data.size(), at_ns);
  return sent;
}

IcmpError PortUnreachable(absl::string_view quoted) {
  return {.port_unreachable = true, .quoted = quoted};
}

TEST(RefusalMatchesTest, AQuoteOfTheLastUnansweredDatagramMatches) {
  const LastSent sent = Sent("\x12\x34query for example.org", kSecond);
  EXPECT_TRUE(RefusalMatches(PortUnreachable("\x12\x34query for example.org"), sent, kSecond + 1000,
                             kSecond));
  // A host or router that quotes fewer bytes still matches on what it quoted.
  EXPECT_TRUE(RefusalMatches(PortUnreachable("\x12\x34qu"), sent, kSecond + 1000, kSecond));
}

TEST(RefusalMatchesTest, ForgedOrStaleRefusalsDoNotMatch) {
  LastSent sent = Sent("\x12\x34query", kSecond);
  EXPECT_FALSE(RefusalMatches(PortUnreachable("\x99\x34query"), sent, kSecond + 1, kSecond))
      << "other bytes: not what l4lb sent";
  EXPECT_FALSE(RefusalMatches(PortUnreachable(""), sent, kSecond + 1, kSecond))
      << "no payload quoted: nothing proves it";
  EXPECT_FALSE(RefusalMatches(PortUnreachable("\x12\x34query"), sent, 3 * kSecond, kSecond))
      << "outside the window";
  EXPECT_FALSE(RefusalMatches({.port_unreachable = false, .quoted = "\x12\x34query"}, sent,
                              kSecond + 1, kSecond))
      << "another ICMP type";
  sent.OnReply();
  EXPECT_FALSE(RefusalMatches(PortUnreachable("\x12\x34query"), sent, kSecond + 1, kSecond))
      << "the backend answered since: it is serving";
  EXPECT_FALSE(RefusalMatches(PortUnreachable("x"), LastSent{}, kSecond, kSecond))
      << "nothing sent";
}

TEST(RefusalMatchesTest, AnEmptyDatagramMatchesAnEmptyQuoteOnly) {
  const LastSent sent = Sent("", kSecond);
  EXPECT_TRUE(RefusalMatches(PortUnreachable(""), sent, kSecond + 1, kSecond));
  EXPECT_FALSE(RefusalMatches(PortUnreachable("x"), sent, kSecond + 1, kSecond));
}

// A real port unreachable from the loopback kernel, read from the error queue.
TEST(ClassifySocketErrorTest, ReadsTheKernelsPortUnreachableAndEmptiesTheQueue) {
  // A port nobody listens on: bind one, note it, close it.
  const int probe = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in closed{};
  closed.sin_family = AF_INET;
  closed.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&closed), sizeof(closed)), 0);
  socklen_t len = sizeof(closed);
  getsockname(probe, reinterpret_cast<sockaddr*>(&closed), &len);
  close(probe);

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  ASSERT_EQ(setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one)), 0);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&closed), sizeof(closed)), 0);
  const std::string datagram = "a datagram nobody reads";
  ASSERT_EQ(send(fd, datagram.data(), datagram.size(), 0), static_cast<ssize_t>(datagram.size()));
  LastSent sent = Sent(datagram, kSecond);
  // Loopback delivers the ICMP within the send; poll so a slow host still passes.
  pollfd p{.fd = fd, .events = 0, .revents = 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "no ICMP error within 2 s";

  LastSent answered = sent;
  answered.OnReply();
  EXPECT_EQ(ClassifySocketError(fd, ECONNREFUSED, answered, kSecond + 1, kSecond),
            SocketError::kIcmp)
      << "answered since";
  // The queue and the pending error are read: the next send goes out (it would
  // fail with ECONNREFUSED otherwise), and its refusal, unanswered, matches.
  ASSERT_EQ(send(fd, datagram.data(), datagram.size(), 0), static_cast<ssize_t>(datagram.size()))
      << strerror(errno);
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  // Reported as another error (a forged host unreachable arriving just after
  // replaces the pending one): the queued refusal still counts.
  EXPECT_EQ(ClassifySocketError(fd, EHOSTUNREACH, sent, kSecond + 1, kSecond),
            SocketError::kRefused);
  // Nothing queued now: an error without an ICMP behind it is the socket's own.
  EXPECT_EQ(ClassifySocketError(fd, EPERM, sent, kSecond + 1, kSecond), SocketError::kLocal);
  close(fd);
}

}  // namespace
}  // namespace l4lb::udp
