#include "l4lb/net/source.h"

#include <sys/socket.h>

#include "gtest/gtest.h"

#include "l4lb/net/socket.h"

namespace l4lb::net {
namespace {

TEST(SourceTest, ParsesAddressesWithoutPorts) {
  absl::StatusOr<std::vector<SocketAddress>> list =
      ParseSourceList("127.0.0.5, 127.0.0.6,2001:db8::5,[::1]");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].ToString(), "127.0.0.5:0");
  EXPECT_EQ((*list)[2].ToString(), "[2001:db8::5]:0");
  EXPECT_EQ((*list)[3].ToString(), "[::1]:0");
  for (const auto& [text, why] : std::vector<std::pair<const char*, const char*>>{
           {"127.0.0.5:80", "without a port"},
           {"[::1]:80", "without a port"},
           {"127.0.0.5,", "an empty entry"},
           {"host.example", "not an IP address"},
           {"0.0.0.0", "a wildcard is no source"},
       }) {
    const absl::StatusOr<std::vector<SocketAddress>> bad = ParseSourceList(text);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.status().message().find(why), std::string::npos) << bad.status();
  }
}

TEST(SourceTest, BindsALocalAddressAndNamesOneThatIsNot) {
  EXPECT_TRUE(CheckSource(ParseSourceList("127.0.0.5")->front()).ok());
  const absl::Status foreign = CheckSource(ParseSourceList("192.0.2.77")->front());
  EXPECT_FALSE(foreign.ok());
  EXPECT_NE(foreign.message().find("source 192.0.2.77: bind"), std::string::npos) << foreign;
  absl::StatusOr<Fd> fd = OpenTcpClientSocket(AF_INET);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(BindSource(fd->get(), ParseSourceList("127.0.0.6")->front()).ok());
  absl::StatusOr<SocketAddress> local = LocalAddress(fd->get());
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->ToString(), "127.0.0.6:0") << "the port waits for the connect";
}

}  // namespace
}  // namespace l4lb::net
