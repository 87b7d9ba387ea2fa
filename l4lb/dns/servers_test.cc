#include "l4lb/dns/servers.h"

#include "gtest/gtest.h"

namespace l4lb::dns {
namespace {

TEST(ParseServerListTest, PortDefaultsTo53) {
  const absl::StatusOr<std::vector<net::SocketAddress>> list =
      ParseServerList("10.0.0.53, 127.0.0.1:5353,[2001:db8::53]:5300,2001:db8::54,[::1]");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 5u);
  EXPECT_EQ((*list)[4].ToString(), "[::1]:53");
  EXPECT_EQ((*list)[0].ToString(), "10.0.0.53:53");
  EXPECT_EQ((*list)[1].ToString(), "127.0.0.1:5353");
  EXPECT_EQ((*list)[2].ToString(), "[2001:db8::53]:5300");
  EXPECT_EQ((*list)[3].ToString(), "[2001:db8::54]:53");
  const absl::StatusOr<std::vector<net::SocketAddress>> none = ParseServerList("  ");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "none: /etc/resolv.conf's";
}

TEST(ParseServerListTest, ErrorsNameTheEntry) {
  for (const auto& [text, message] : std::vector<std::pair<const char*, const char*>>{
           {"ns1.example", "\"ns1.example\": want a DNS server address"},
           {"10.0.0.53:99999", "\"10.0.0.53:99999\": want a DNS server address"},
           {"10.0.0.53:0", "\"10.0.0.53:0\": port 0"},
           {"10.0.0.53,,10.0.0.54", "empty entry"},
       }) {
    const absl::StatusOr<std::vector<net::SocketAddress>> list = ParseServerList(text);
    ASSERT_FALSE(list.ok()) << text;
    EXPECT_NE(list.status().message().find(message), std::string::npos)
        << "got: " << list.status().message() << "\nwant: " << message;
  }
}

}  // namespace
}  // namespace l4lb::dns
