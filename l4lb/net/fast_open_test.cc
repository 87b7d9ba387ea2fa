#include "l4lb/net/fast_open.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "gtest/gtest.h"

#include "l4lb/net/socket.h"

namespace l4lb::net {
namespace {

int IntOption(int fd, int option) {
  int value = -1;
  socklen_t len = sizeof(value);
  EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, option, &value, &len), 0);
  return value;
}

TEST(FastOpenTest, DeferAcceptOnAndOffOnAListener) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("127.0.0.1:0");
  ASSERT_TRUE(address.ok());
  absl::StatusOr<Fd> listener = OpenTcpListener(*address, /*reuse_port=*/true, 16);
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_EQ(IntOption(listener->get(), TCP_DEFER_ACCEPT), 0);
  ASSERT_TRUE(SetDeferAccept(listener->get(), true).ok());
  // The kernel stores retransmissions and reports them back as seconds: at
  // least what was asked, never 0.
  EXPECT_GE(IntOption(listener->get(), TCP_DEFER_ACCEPT), kDeferAcceptSeconds);
  ASSERT_TRUE(SetDeferAccept(listener->get(), false).ok());
  EXPECT_EQ(IntOption(listener->get(), TCP_DEFER_ACCEPT), 0);
}

TEST(FastOpenTest, FastOpenConnectOnABackendSocket) {
  absl::StatusOr<Fd> fd = OpenTcpClientSocket(AF_INET);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(IntOption(fd->get(), TCP_FASTOPEN_CONNECT), 0);
  ASSERT_TRUE(SetFastOpenConnect(fd->get(), 2).ok());
  EXPECT_EQ(IntOption(fd->get(), TCP_FASTOPEN_CONNECT), 1);
  EXPECT_EQ(IntOption(fd->get(), TCP_SYNCNT), 2);
}

TEST(FastOpenTest, SynRetriesLastAtLeastTheConnectTimeout) {
  EXPECT_EQ(SynRetriesWithin(absl::Milliseconds(100)), 1);  // 3 s: the fewest the kernel takes
  EXPECT_EQ(SynRetriesWithin(absl::Seconds(2)), 1);         // the default connect_timeout
  EXPECT_EQ(SynRetriesWithin(absl::Seconds(3)), 1);
  EXPECT_EQ(SynRetriesWithin(absl::Seconds(4)), 2);         // 7 s
  EXPECT_EQ(SynRetriesWithin(absl::Seconds(30)), 4);        // 31 s
  EXPECT_EQ(SynRetriesWithin(absl::Minutes(10)), 10);  // 127 s by 6, then 120 s each
  EXPECT_EQ(SynRetriesWithin(absl::InfiniteDuration()), 127);
}

TEST(FastOpenTest, ErrorsNameTheOption) {
  // Not a socket: the kernel says so, and the message says which option.
  absl::Status st = SetFastOpenConnect(1000000, 1);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("TCP_FASTOPEN_CONNECT"), absl::string_view::npos) << st;
  st = SetDeferAccept(1000000, true);
  EXPECT_NE(st.message().find("TCP_DEFER_ACCEPT"), absl::string_view::npos) << st;
}

TEST(FastOpenTest, ReadsTheSysctlAndSaysWhatToSet) {
  absl::StatusOr<int> value = ReadFastOpenSysctl();
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_GE(*value, 0);
  const absl::Status st = CheckFastOpenClient();
  if (*value & kFastOpenClientBit) {
    EXPECT_TRUE(st.ok()) << st;
  } else {
    EXPECT_NE(st.message().find("sysctl -w net.ipv4.tcp_fastopen="), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace l4lb::net
