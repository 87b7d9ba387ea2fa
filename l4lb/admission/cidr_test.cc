#include "l4lb/admission/cidr.h"

#include "gtest/gtest.h"

namespace l4lb::admission {
namespace {

TEST(CidrTest, ParsesV4V6AndBareAddresses) {
  for (const char* text :
       {"10.0.0.0/8", "192.0.2.1/32", "0.0.0.0/0", "2001:db8::/32", "::/0", "::1/128"}) {
    absl::StatusOr<Cidr> c = ParseCidr(text);
    ASSERT_TRUE(c.ok()) << text << ": " << c.status();
    EXPECT_EQ(c->ToString(), text);
  }
  EXPECT_EQ(ParseCidr("192.0.2.7")->ToString(), "192.0.2.7/32");
  EXPECT_EQ(ParseCidr("[2001:db8::1]")->ToString(), "2001:db8::1/128");
  EXPECT_EQ(ParseCidr("[2001:db8::]/48")->ToString(), "2001:db8::/48");
  EXPECT_EQ(ParseCidr(" 10.1.0.0/16 ")->length, 96 + 16);
}

TEST(CidrTest, ErrorsQuoteTheText) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"10.0.0.1/8", "\"10.0.0.1/8\": host bits set past /8"},
      {"10.0.0.0/33", "\"10.0.0.0/33\": prefix length must be 0..32"},
      {"2001:db8::/129", "prefix length must be 0..128"},
      {"10.0.0.0/", "prefix length must be 0..32"},
      {"10.0.0.0/+8", "prefix length must be 0..32"},
      {"10.0.0.0/x", "prefix length must be 0..32"},
      {"10.0.0", "not an IPv4 or IPv6 address"},
      {"example.com", "not an IPv4 or IPv6 address"},
      {"[::1", "unbalanced ["},
      {"", "empty address"},
      {"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20", "not an IPv4 or IPv6 address"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Cidr> got = ParseCidr(c.text);
    ASSERT_FALSE(got.ok()) << c.text;
    EXPECT_NE(got.status().message().find(c.error), absl::string_view::npos)
        << c.text << ": " << got.status();
  }
}

TEST(CidrTest, ListAndFile) {
  absl::StatusOr<std::vector<Cidr>> list = ParseCidrList("10.0.0.0/8, 2001:db8::/32");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), 2u);
  EXPECT_TRUE(ParseCidrList("")->empty());
  EXPECT_FALSE(ParseCidrList("10.0.0.0/8,,").ok());

  absl::StatusOr<std::vector<Cidr>> file = ParseCidrFile(
      "# bad hosts\n10.0.0.0/8\n\n   # indented comment\n192.0.2.1  # one host\n", "deny.txt");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->size(), 2u);
  EXPECT_EQ((*file)[1].ToString(), "192.0.2.1/32");
  absl::StatusOr<std::vector<Cidr>> bad = ParseCidrFile("10.0.0.0/8\n10.0.0.0/99\n", "deny.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "deny.txt:2: \"10.0.0.0/99\": prefix length must be 0..32");
  absl::StatusOr<std::vector<Cidr>> missing = LoadCidrFile("/nonexistent/deny.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/deny.txt: No such file"),
            absl::string_view::npos)
      << missing.status();
  // A directory is not an empty list (that would deny nobody).
  absl::StatusOr<std::vector<Cidr>> dir = LoadCidrFile("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("/tmp: Is a directory"), absl::string_view::npos)
      << dir.status();
}

}  // namespace
}  // namespace l4lb::admission
