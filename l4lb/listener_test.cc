#include "l4lb/listener.h"

#include <sys/socket.h>

#include "gtest/gtest.h"

namespace l4lb {
namespace {

TEST(ListenerTest, PortZeroGivesEveryWorkerTheSamePort) {
  const absl::StatusOr<ListenerSockets> l =
      OpenListener(*net::SocketAddress::Parse("127.0.0.1:0"), 3, 4, 128);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_NE(l->address.port(), 0);
  EXPECT_EQ(l->service, 3);
  ASSERT_EQ(l->per_worker.size(), 4u);
  for (const net::Fd& fd : l->per_worker) {
    EXPECT_EQ(net::LocalAddress(fd.get())->port(), l->address.port());
  }
}

TEST(ListenerTest, AddressInUseByAnotherProgramIsAClearError) {
  // A plain socket without SO_REUSEPORT, like another server holding the port.
  const absl::StatusOr<net::Fd> other =
      net::OpenTcpListener(*net::SocketAddress::Parse("127.0.0.1:0"), /*reuse_port=*/false, 16);
  ASSERT_TRUE(other.ok());
  const net::SocketAddress taken = *net::LocalAddress(other->get());
  const absl::StatusOr<ListenerSockets> l = OpenListener(taken, 0, 2, 128);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().message(), "bind " + taken.ToString() + ": Address already in use");
}

}  // namespace
}  // namespace l4lb
