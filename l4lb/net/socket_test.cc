#include "l4lb/net/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "gtest/gtest.h"

namespace l4lb::net {
namespace {

TEST(SocketTest, PortZeroResolvesAndReusePortSharesIt) {
  absl::StatusOr<Fd> first =
      OpenTcpListener(*SocketAddress::Parse("127.0.0.1:0"), /*reuse_port=*/true, 16);
  ASSERT_TRUE(first.ok()) << first.status();
  const absl::StatusOr<SocketAddress> bound = LocalAddress(first->get());
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_NE(bound->port(), 0);

  absl::StatusOr<Fd> second = OpenTcpListener(*bound, /*reuse_port=*/true, 16);
  EXPECT_TRUE(second.ok()) << second.status();
}

TEST(SocketTest, AcceptedSocketsInheritNoDelayAndUrgentDataInline) {
  absl::StatusOr<Fd> listener =
      OpenTcpListener(*SocketAddress::Parse("127.0.0.1:0"), /*reuse_port=*/false, 16);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const SocketAddress bound = *LocalAddress(listener->get());
  Fd client(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(connect(client.get(), bound.sockaddr_ptr(), bound.sockaddr_len()), 0);
  pollfd p{.fd = listener->get(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  Fd accepted(accept(listener->get(), nullptr, nullptr));
  ASSERT_TRUE(accepted.valid());
  int nodelay = 0;
  socklen_t len = sizeof(nodelay);
  ASSERT_EQ(getsockopt(accepted.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_EQ(nodelay, 1) << "the worker no longer sets it per client";
  int oob_inline = 0;
  len = sizeof(oob_inline);
  ASSERT_EQ(getsockopt(accepted.get(), SOL_SOCKET, SO_OOBINLINE, &oob_inline, &len), 0);
  EXPECT_EQ(oob_inline, 1) << "a client's urgent byte would be skipped, or stall a splice";
}

TEST(SocketTest, BackendSocketsReadUrgentDataInline) {
  absl::StatusOr<Fd> fd = OpenTcpClientSocket(AF_INET);
  ASSERT_TRUE(fd.ok()) << fd.status();
  int oob_inline = 0;
  socklen_t len = sizeof(oob_inline);
  ASSERT_EQ(getsockopt(fd->get(), SOL_SOCKET, SO_OOBINLINE, &oob_inline, &len), 0);
  EXPECT_EQ(oob_inline, 1);
}

TEST(SocketTest, AddressInUseNamesTheAddress) {
  absl::StatusOr<Fd> first =
      OpenTcpListener(*SocketAddress::Parse("127.0.0.1:0"), /*reuse_port=*/false, 16);
  ASSERT_TRUE(first.ok()) << first.status();
  const SocketAddress bound = *LocalAddress(first->get());

  const absl::StatusOr<Fd> second = OpenTcpListener(bound, /*reuse_port=*/true, 16);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "bind " + bound.ToString() + ": Address already in use");
}

TEST(SocketTest, FdClosesOnDestruction) {
  int raw = -1;
  {
    Fd fd(socket(AF_INET, SOCK_STREAM, 0));
    raw = fd.get();
    ASSERT_GE(raw, 0);
  }
  EXPECT_EQ(fcntl(raw, F_GETFD), -1);
}

// Eviction gives a session's port back at once, while io_uring still holds the
// socket: another socket can bind that port, without SO_REUSEADDR.
TEST(SocketTest, ReleaseUdpPortFreesThePortOfAStillOpenSocket) {
  absl::StatusOr<Fd> echo = OpenUdpListener(*SocketAddress::Parse("127.0.0.1:0"), false);
  ASSERT_TRUE(echo.ok()) << echo.status();
  absl::StatusOr<Fd> session = OpenUdpClientSocket(*LocalAddress(echo->get()));
  ASSERT_TRUE(session.ok()) << session.status();
  const SocketAddress local = *LocalAddress(session->get());
  ASSERT_NE(local.port(), 0);

  Fd taker(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_NE(bind(taker.get(), local.sockaddr_ptr(), local.sockaddr_len()), 0) << "port is held";
  ReleaseUdpPort(session->get());
  EXPECT_EQ(bind(taker.get(), local.sockaddr_ptr(), local.sockaddr_len()), 0) << strerror(errno);
}

TEST(SocketTest, ParsePortRange) {
  const absl::StatusOr<PortRange> range = ParsePortRange("32768\t60999\n");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->first, 32768);
  EXPECT_EQ(range->size(), 28232u);
  EXPECT_EQ(ParsePortRange("40000 40999")->size(), 1000u);
  for (const char* bad : {"", "40000", "40999 40000", "0 10", "1 70000", "a b"}) {
    EXPECT_FALSE(ParsePortRange(bad).ok()) << bad;
  }
  EXPECT_TRUE(LocalPortRange().ok()) << LocalPortRange().status();
}

}  // namespace
}  // namespace l4lb::net
