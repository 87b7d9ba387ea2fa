#include "l4lb/admission/acl.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "l4lb/net/address.h"

namespace l4lb::admission {
namespace {

std::array<uint8_t, 16> Ip(const std::string& ip) {
  const std::string text = ip.find(':') == std::string::npos ? ip + ":1" : "[" + ip + "]:1";
  return net::SocketAddress::Parse(text)->IpBytes16();
}

std::vector<Cidr> List(const std::string& text) { return *ParseCidrList(text); }

TEST(PrefixSetTest, ContainsExactlyItsPrefixes) {
  const PrefixSet set(List("10.0.0.0/8,192.0.2.128/25,2001:db8::/32,198.51.100.7"));
  EXPECT_TRUE(set.Contains(Ip("10.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("11.0.0.0")));
  EXPECT_FALSE(set.Contains(Ip("9.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("192.0.2.127")));
  EXPECT_TRUE(set.Contains(Ip("192.0.2.128")));
  EXPECT_TRUE(set.Contains(Ip("192.0.2.255")));
  EXPECT_FALSE(set.Contains(Ip("192.0.3.0")));
  EXPECT_TRUE(set.Contains(Ip("198.51.100.7")));
  EXPECT_FALSE(set.Contains(Ip("198.51.100.8")));
  EXPECT_TRUE(set.Contains(Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(set.Contains(Ip("2001:db9::")));
  // An IPv4 client seen on a dual-stack listener (::ffff:10.1.2.3) is IPv4.
  EXPECT_TRUE(set.Contains(Ip("::ffff:10.1.2.3")));
}

TEST(PrefixSetTest, OverlappingAndAdjacentPrefixesMerge) {
  const PrefixSet set(List("10.0.0.0/9,10.128.0.0/9,10.1.0.0/16,0.0.0.0/0"));
  EXPECT_EQ(set.ranges(), 1u);
  EXPECT_TRUE(set.Contains(Ip("203.0.113.9")));
  EXPECT_FALSE(set.Contains(Ip("2001:db8::1"))) << "0.0.0.0/0 is IPv4 only";
  const PrefixSet all(List("::/0"));
  EXPECT_TRUE(all.Contains(Ip("2001:db8::1")));
  EXPECT_TRUE(all.Contains(Ip("127.0.0.1")));
}

TEST(PrefixSetTest, AgreesWithALinearScanOnRandomPrefixes) {
  std::mt19937_64 rng(13);
  std::vector<Cidr> prefixes;
  for (int i = 0; i < 2000; ++i) {
    const uint32_t addr = static_cast<uint32_t>(rng());
    const int len = 8 + static_cast<int>(rng() % 25);
    const uint32_t masked = len == 0 ? 0 : addr & ~((uint64_t{1} << (32 - len)) - 1);
    prefixes.push_back(*ParseCidr(absl::StrCat(masked >> 24, ".", (masked >> 16) & 255, ".",
                                               (masked >> 8) & 255, ".", masked & 255, "/", len)));
  }
  const PrefixSet set(prefixes);
  for (int i = 0; i < 4000; ++i) {
    const uint32_t a = static_cast<uint32_t>(rng());
    const std::array<uint8_t, 16> ip =
        Ip(absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255, ".", a & 255));
    bool linear = false;
    for (const Cidr& c : prefixes) {
      bool match = true;
      for (int bit = 0; bit < c.length && match; ++bit) {
        const uint8_t m = 0x80 >> (bit % 8);
        match = (ip[bit / 8] & m) == (c.address[bit / 8] & m);
      }
      linear |= match;
    }
    ASSERT_EQ(set.Contains(ip), linear) << i;
  }
}

TEST(AclTest, DenyWinsAndAnEmptyAllowListAllowsEveryone) {
  const Acl open;
  EXPECT_TRUE(open.allows_all());
  EXPECT_EQ(open.Decide(Ip("203.0.113.1")), Acl::Decision::kAllow);

  const Acl deny_only({}, List("203.0.113.0/24"));
  EXPECT_EQ(deny_only.Decide(Ip("203.0.113.1")), Acl::Decision::kDeny);
  EXPECT_EQ(deny_only.Decide(Ip("203.0.114.1")), Acl::Decision::kAllow);

  const Acl both(List("10.0.0.0/8,2001:db8::/32"), List("10.6.6.0/24"));
  EXPECT_EQ(both.Decide(Ip("10.1.2.3")), Acl::Decision::kAllow);
  EXPECT_EQ(both.Decide(Ip("10.6.6.6")), Acl::Decision::kDeny) << "deny wins over allow";
  EXPECT_EQ(both.Decide(Ip("192.0.2.1")), Acl::Decision::kDeny) << "not in the allow list";
  EXPECT_EQ(both.Decide(Ip("2001:db8::5")), Acl::Decision::kAllow);
  EXPECT_EQ(both.Decide(Ip("::ffff:10.1.2.3")), Acl::Decision::kAllow);
}

}  // namespace
}  // namespace l4lb::admission
