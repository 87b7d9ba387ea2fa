#include "l4lb/listener.h"

#include <sys/socket.h>
#include <unistd.h>

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

TEST(ListenerTest, APortAnotherProcessSharesWithSoReusePortIsRefused) {
  // Another l4lb's listener: SO_REUSEPORT set, so a plain bind would succeed and
  // the kernel would split clients between the two.
  const absl::StatusOr<ListenerSockets> running =
      OpenListener(*net::SocketAddress::Parse("127.0.0.1:0"), 0, 2, 128);
  ASSERT_TRUE(running.ok()) << running.status();
  const absl::Status st = CheckNotShared(running->address, /*udp=*/false);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("bind " + running->address.ToString() +
                              ": Address already in use (another process listens there"),
            absl::string_view::npos)
      << st;
  const absl::StatusOr<ListenerSockets> udp =
      OpenListener(*net::SocketAddress::Parse("127.0.0.1:0"), 0, 2, 128, /*udp=*/true);
  ASSERT_TRUE(udp.ok()) << udp.status();
  EXPECT_FALSE(CheckNotShared(udp->address, /*udp=*/true).ok());
}

TEST(ListenerTest, AFreePortAndTimeWaitLeftoversPass) {
  absl::StatusOr<ListenerSockets> l =
      OpenListener(*net::SocketAddress::Parse("127.0.0.1:0"), 0, 1, 16);
  ASSERT_TRUE(l.ok());
  const net::SocketAddress address = l->address;
  // A connection closed by the listener's side first leaves TIME_WAIT on it.
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, address.sockaddr_ptr(), address.sockaddr_len()), 0);
  int accepted = -1;
  for (int i = 0; i < 100 && accepted < 0; ++i) {
    accepted = accept(l->per_worker[0].get(), nullptr, nullptr);
    if (accepted < 0) usleep(10000);
  }
  ASSERT_GE(accepted, 0);
  close(accepted);
  usleep(20000);
  close(client);
  usleep(20000);
  l->per_worker.clear();  // the listener is gone, TIME_WAIT stays
  EXPECT_TRUE(CheckNotShared(address, /*udp=*/false).ok());
  EXPECT_TRUE(CheckNotShared(*net::SocketAddress::Parse("127.0.0.1:0"), false).ok());
}

}  // namespace
}  // namespace l4lb
