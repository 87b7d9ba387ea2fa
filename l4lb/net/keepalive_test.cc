#include "l4lb/net/keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace l4lb::net {
namespace {

TEST(KeepaliveTest, ParsesIdleIntervalCountAndOff) {
  absl::StatusOr<Keepalive> k = ParseKeepalive("10m,1m,5");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->idle, absl::Minutes(10));
  EXPECT_EQ(k->interval, absl::Minutes(1));
  EXPECT_EQ(k->count, 5);
  EXPECT_TRUE(k->enabled());
  EXPECT_EQ(k->ToString(), "10m,1m,5");
  EXPECT_EQ(ParseKeepalive(" 30s , 5s , 3 ")->count, 3);
  EXPECT_FALSE(ParseKeepalive("off")->enabled());
  EXPECT_FALSE(ParseKeepalive("")->enabled());
  EXPECT_EQ(ParseKeepalive("off")->ToString(), "off");
}

TEST(KeepaliveTest, BadTextSaysWhichPart) {
  for (const auto& [text, why] : std::vector<std::pair<const char*, const char*>>{
           {"10m,1m", "three parts"},
           {"10m,1m,5,1", "three parts"},
           {"ten,1m,5", "IDLE is not a duration"},
           {"10m,x,5", "INTERVAL is not a duration"},
           {"500ms,1m,5", "IDLE must be whole seconds"},
           {"1.5s,1m,5", "IDLE must be whole seconds"},
           {"10h,1m,5", "IDLE must be whole seconds, 1s..32767s"},
           {"10m,0s,5", "INTERVAL must be whole seconds"},
           {"10m,1m,0", "COUNT must be 1..127"},
           {"10m,1m,128", "COUNT must be 1..127"},
           {"10m,1m,-1", "COUNT"},
           {"on", "three parts"},
       }) {
    const absl::StatusOr<Keepalive> k = ParseKeepalive(text);
    ASSERT_FALSE(k.ok()) << text;
    EXPECT_NE(k.status().message().find(why), std::string::npos) << k.status();
    EXPECT_NE(k.status().message().find(text), std::string::npos) << k.status();
  }
}

int Get(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &len), 0);
  return value;
}

TEST(KeepaliveTest, SetsTheSocketsTimersAndAcceptedSocketsInheritThem) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  ASSERT_TRUE(SetKeepalive(listener, *ParseKeepalive("120s,7s,4")).ok());
  EXPECT_EQ(Get(listener, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(Get(listener, IPPROTO_TCP, TCP_KEEPIDLE), 120);
  EXPECT_EQ(Get(listener, IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(Get(listener, IPPROTO_TCP, TCP_KEEPCNT), 4);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), len), 0);
  const int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  // What client_keepalive relies on: set once on the listener, held by each client.
  EXPECT_EQ(Get(accepted, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(Get(accepted, IPPROTO_TCP, TCP_KEEPIDLE), 120);
  EXPECT_EQ(Get(accepted, IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(Get(accepted, IPPROTO_TCP, TCP_KEEPCNT), 4);
  EXPECT_EQ(Get(client, SOL_SOCKET, SO_KEEPALIVE), 0);
  close(accepted);
  close(client);
  close(listener);
  EXPECT_FALSE(SetKeepalive(-1, *ParseKeepalive("1s,1s,1")).ok());
}

}  // namespace
}  // namespace l4lb::net
