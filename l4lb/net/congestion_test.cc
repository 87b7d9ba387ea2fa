#include "l4lb/net/congestion.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

#include "l4lb/net/socket.h"

namespace l4lb::net {
namespace {

TEST(CongestionTest, NewSocketRunsTheKernelDefault) {
  const absl::StatusOr<std::string> system = DefaultCongestion();
  ASSERT_TRUE(system.ok()) << system.status();
  Fd fd(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(GetCongestion(fd.get()).value_or(""), *system);
}

// reno is built into every kernel, so it can always be set.
TEST(CongestionTest, SetIsWhatTheSocketRuns) {
  Fd fd(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(SetCongestion(fd.get(), "reno").ok());
  EXPECT_EQ(GetCongestion(fd.get()).value_or(""), "reno");
}

TEST(CongestionTest, UnknownNameListsWhatIsAvailable) {
  Fd fd(socket(AF_INET, SOCK_STREAM, 0));
  const absl::Status status = SetCongestion(fd.get(), "nosuch");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(),
                               "no TCP congestion control \"nosuch\" here "
                               "(available: "))
      << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "reno")) << status;
}

TEST(CongestionTest, AcceptedSocketsInheritTheListeners) {
  absl::StatusOr<Fd> listener =
      OpenTcpListener(*SocketAddress::Parse("127.0.0.1:0"), /*reuse_port=*/false, 4);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE(SetCongestion(listener->get(), "reno").ok());
  const absl::StatusOr<SocketAddress> bound = LocalAddress(listener->get());
  ASSERT_TRUE(bound.ok());
  Fd client(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(connect(client.get(), bound->sockaddr_ptr(), bound->sockaddr_len()), 0);
  // On loopback the handshake is done when connect returns: the child is queued.
  Fd accepted(accept(listener->get(), nullptr, nullptr));
  ASSERT_TRUE(accepted.valid());
  EXPECT_EQ(GetCongestion(accepted.get()).value_or(""), "reno");
}

}  // namespace
}  // namespace l4lb::net
