#include "l4lb/net/address.h"

#include "gtest/gtest.h"

namespace l4lb::net {
namespace {

TEST(SocketAddressTest, ParsesV4AndPrintsItBack) {
  const absl::StatusOr<SocketAddress> a = SocketAddress::Parse("10.0.0.1:80");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->port(), 80);
  EXPECT_EQ(a->ToString(), "10.0.0.1:80");
  EXPECT_EQ(a->IpString(), "10.0.0.1");
  EXPECT_EQ(SocketAddress::Parse("[2001:db8::1]:21")->IpString(), "2001:db8::1");
  EXPECT_EQ(SocketAddress::Parse("[::ffff:10.0.0.1]:21")->IpString(), "10.0.0.1");
}

TEST(SocketAddressTest, ParsesBracketedV6) {
  const absl::StatusOr<SocketAddress> a = SocketAddress::Parse("[::1]:8443");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 8443);
  EXPECT_EQ(a->ToString(), "[::1]:8443");
}

TEST(SocketAddressTest, PortZeroIsAllowed) {
  const absl::StatusOr<SocketAddress> a = SocketAddress::Parse("127.0.0.1:0");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->port(), 0);
}

TEST(SocketAddressTest, ErrorsNameTheTextAndTheProblem) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"10.0.0.1:99999", "\"10.0.0.1:99999\": port out of range"},
           Case{"300.1.1.1:80", "\"300.1.1.1:80\": not an IPv4 address"},
           Case{"10.0.0.1", "\"10.0.0.1\": expected ADDRESS:PORT"},
           Case{"10.0.0.1:", "\"10.0.0.1:\": missing port"},
           Case{":80", "\":80\": missing address"},
           Case{"10.0.0.1:http", "\"10.0.0.1:http\": port is not a number"},
           Case{"10.0.0.1:-1", "\"10.0.0.1:-1\": port is not a number"},
           Case{"::1:80", "\"::1:80\": IPv6 addresses need brackets"},
           Case{"[::1:80", "\"[::1:80\": missing ']'"},
           Case{"[::1]80", "\"[::1]80\": expected ':PORT' after ']'"},
           Case{"[zz::1]:80", "\"[zz::1]:80\": not an IPv6 address"},
           Case{"example.com:80", "\"example.com:80\": not an IPv4 address"},
       }) {
    const absl::StatusOr<SocketAddress> a = SocketAddress::Parse(c.text);
    ASSERT_FALSE(a.ok()) << c.text;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find(c.message), std::string::npos)
        << "got: " << a.status().message() << "\nwant: " << c.message;
  }
}

TEST(SocketAddressTest, V4AndV4MappedV6HashTheSame) {
  const SocketAddress v4 = *SocketAddress::Parse("192.0.2.7:1");
  const SocketAddress v6 = *SocketAddress::Parse("[::ffff:192.0.2.7]:2");
  EXPECT_EQ(v4.IpBytes16(), v6.IpBytes16());
  EXPECT_NE(v4.IpBytes16(), SocketAddress::Parse("192.0.2.8:1")->IpBytes16());
}

TEST(SocketAddressTest, WildcardIsTheAnyAddressOfEitherFamily) {
  EXPECT_TRUE(SocketAddress::Parse("0.0.0.0:53")->is_wildcard());
  EXPECT_TRUE(SocketAddress::Parse("[::]:53")->is_wildcard());
  EXPECT_FALSE(SocketAddress::Parse("127.0.0.1:53")->is_wildcard());
  EXPECT_FALSE(SocketAddress::Parse("[::1]:53")->is_wildcard());
  EXPECT_FALSE(SocketAddress::Parse("[::ffff:0.0.0.0]:53")->is_wildcard()) << "v4-mapped any";
}

TEST(SocketAddressTest, SetPortAndEquality) {
  SocketAddress a = *SocketAddress::Parse("[2001:db8::1]:0");
  a.set_port(9000);
  EXPECT_EQ(a, *SocketAddress::Parse("[2001:db8::1]:9000"));
  EXPECT_FALSE(a == *SocketAddress::Parse("[2001:db8::2]:9000"));
}

TEST(ParseListenAddressTest, PortRangesExpandAndBadOnesAreNamed) {
  absl::StatusOr<std::vector<SocketAddress>> range = ParseListenAddress("0.0.0.0:30000-30002");
  ASSERT_TRUE(range.ok()) << range.status();
  ASSERT_EQ(range->size(), 3u);
  EXPECT_EQ((*range)[2].ToString(), "0.0.0.0:30002");
  EXPECT_EQ(ParseListenAddress("[::1]:21")->size(), 1u);
  EXPECT_EQ(ParseListenAddress("[::]:100-101")->at(1).ToString(), "[::]:101");
  EXPECT_EQ(ParseListenAddress("1.2.3.4:30-20").status().message(),
            "\"1.2.3.4:30-20\": want a port range FIRST-LAST with 0 < FIRST <= LAST");
  EXPECT_EQ(ParseListenAddress("1.2.3.4:1-70000").status().message(),
            "\"1.2.3.4:1-70000\": port range end is not a port");
  EXPECT_EQ(ParseListenAddress("1.2.3.4:1-5000").status().message(),
            "\"1.2.3.4:1-5000\": port range over 4096 ports");
}

}  // namespace
}  // namespace l4lb::net
