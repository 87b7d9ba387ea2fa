#include "l4lb/admin/auth.h"

#include <fstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace l4lb::admin {
namespace {

net::SocketAddress Addr(const char* text) { return *net::SocketAddress::Parse(text); }

TEST(AuthTest, BearerTokenMustMatchExactly) {
  EXPECT_TRUE(Authorized("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(Authorized("bearer s3cret", "s3cret"));  // the scheme's case is free
  EXPECT_FALSE(Authorized("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(Authorized("Bearer s3cretX", "s3cret"));
  EXPECT_FALSE(Authorized("Bearer S3cret", "s3cret"));
  EXPECT_FALSE(Authorized("Basic s3cret", "s3cret"));
  EXPECT_FALSE(Authorized("", "s3cret"));
  EXPECT_FALSE(Authorized("s3cret", "s3cret"));
}

TEST(AuthTest, TokenMatchesExactly) {
  EXPECT_TRUE(TokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("s3cre", "s3cret"));
  EXPECT_FALSE(TokenMatches("s3cretX", "s3cret"));
  EXPECT_FALSE(TokenMatches("S3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(TokenMatches("anything", ""));  // no token configured
}

TEST(AuthTest, NoTokenLetsEveryoneIn) { EXPECT_TRUE(Authorized("", "")); }

TEST(AuthTest, ReadTokenTrimsTheNewlineAndRefusesEmptyFiles) {
  const std::string dir = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  const std::string path = dir + "/token";
  std::ofstream(path) << "  abc123\n";
  absl::StatusOr<std::string> token = ReadToken(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc123");
  std::ofstream(path) << "\n";
  EXPECT_TRUE(absl::StrContains(ReadToken(path).status().message(), "empty"));
  EXPECT_TRUE(absl::StrContains(ReadToken(dir + "/missing").status().message(), "No such file"));
}

TEST(AuthTest, LoopbackNeedsNoTokenAnythingElseDoes) {
  EXPECT_TRUE(IsLoopback(Addr("127.0.0.1:9100")));
  EXPECT_TRUE(IsLoopback(Addr("127.3.4.5:9100")));
  EXPECT_TRUE(IsLoopback(Addr("[::1]:9100")));
  EXPECT_FALSE(IsLoopback(Addr("0.0.0.0:9100")));
  EXPECT_FALSE(IsLoopback(Addr("[::]:9100")));
  EXPECT_FALSE(IsLoopback(Addr("10.0.0.1:9100")));
  EXPECT_TRUE(CheckExposure(Addr("127.0.0.1:9100"), false, false).ok());
  EXPECT_TRUE(CheckExposure(Addr("0.0.0.0:9100"), true, false).ok());
  EXPECT_TRUE(CheckExposure(Addr("0.0.0.0:9100"), false, true).ok());
  const absl::Status refused = CheckExposure(Addr("0.0.0.0:9100"), false, false);
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.message(), "--admin_token_file")) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "--admin_allow_no_token")) << refused;
}

}  // namespace
}  // namespace l4lb::admin
