#include "l4lb/tls/sni_routes.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace l4lb::tls {
namespace {

using Routes = std::vector<std::pair<std::vector<std::string>, int>>;

SniRoutes MustBuild(const Routes& routes, std::optional<int> default_route) {
  absl::StatusOr<SniRoutes> r = SniRoutes::Build(routes, default_route);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : *SniRoutes::Build({}, std::nullopt);
}

TEST(SniRoutesTest, NginxSemantics) {
  const SniRoutes routes = MustBuild(
      {
          {{"example.com", "www.example.com"}, 0},
          {{"*.example.com"}, 1},
          {{"*.b.example.com"}, 2},
          {{"exact.b.example.com"}, 3},
          {{"*.org"}, 4},
      },
      std::nullopt);
  const std::pair<const char*, std::optional<int>> cases[] = {
      {"example.com", 0},          // exact
      {"www.example.com", 0},      // exact beats *.example.com
      {"a.example.com", 1},        // one more label
      {"a.c.example.com", 1},      // or more (nginx, unlike RFC 6125's one label)
      {"b.example.com", 1},        // *.b.example.com needs a label below b
      {"x.b.example.com", 2},      // the longer suffix wins
      {"y.x.b.example.com", 2},    //
      {"exact.b.example.com", 3},  // exact beats both wildcards
      {"a.org", 4},                //
      {"org", std::nullopt},       // a wildcard never matches its own suffix
      {"example.net", std::nullopt},
      {"xexample.com", std::nullopt},  // suffix by label, not by character
      {"", std::nullopt},              // no SNI, no default: reject
      {"A.EXAMPLE.COM", 1},            // any case
      {"Www.Example.Com.", 0},         // and a root dot
      {".", std::nullopt},
  };
  for (const auto& [name, want] : cases) EXPECT_EQ(routes.Match(name), want) << name;
}

TEST(SniRoutesTest, DefaultRoute) {
  const SniRoutes routes = MustBuild({{{"a.example.com"}, 0}}, 7);
  EXPECT_EQ(routes.Match("a.example.com"), 0);
  EXPECT_EQ(routes.Match("b.example.com"), 7);
  EXPECT_EQ(routes.Match(""), 7);  // no SNI or not TLS
  EXPECT_EQ(routes.Match(std::string(300, 'a')), 7);
  EXPECT_EQ(MustBuild({}, 3).Match("anything"), 3);
  EXPECT_EQ(MustBuild({}, std::nullopt).Match("anything"), std::nullopt);
}

TEST(SniRoutesTest, PatternsNormalizeLikeServerNames) {
  const SniRoutes routes = MustBuild({{{"MiXeD.Example.COM."}, 0}, {{"*.Upper.ORG"}, 1}}, {});
  EXPECT_EQ(routes.Match("mixed.example.com"), 0);
  EXPECT_EQ(routes.Match("a.upper.org"), 1);
}

TEST(SniRoutesTest, BadPatternsAreNamed) {
  const std::pair<Routes, std::string> cases[] = {
      {{{{"*foo.com"}, 0}}, "\"*foo.com\": '*' only as a whole first label"},
      {{{{"a.*.com"}, 0}}, "\"a.*.com\": '*' only as a whole first label"},
      {{{{"*"}, 0}}, "\"*\": '*' only"},
      {{{{"*.*.com"}, 0}}, "\"*.*.com\": '*' only"},
      {{{{""}, 0}}, "pattern \"\": server name \"\": must be 1 to 255 bytes"},
      {{{{"*."}, 0}}, "pattern \"*.\""},
      {{{{"a..com"}, 0}}, "\"a..com\": server name \"a..com\": empty label"},
      {{{{"a b.com"}, 0}}, "only letters"},
      {{{{"a.com"}, 0}, {{"b.com", "A.COM"}, 1}}, "\"A.COM\": given twice"},
      {{{{"*.a.com", "*.a.com."}, 2}}, "\"*.a.com.\": given twice"},
      {{{{}, 0}}, "route 0 has no server names"},
      {{{{"a.com"}, -1}}, "route index -1 < 0"},
  };
  for (const auto& [routes, want] : cases) {
    const absl::StatusOr<SniRoutes> r = SniRoutes::Build(routes, std::nullopt);
    ASSERT_FALSE(r.ok()) << want;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(want), std::string::npos)
        << r.status().message() << " (want " << want << ")";
  }
  EXPECT_FALSE(SniRoutes::Build({}, -2).ok());
  // An exact name and the wildcard over it are two different patterns.
  EXPECT_TRUE(SniRoutes::Build({{{"a.com"}, 0}, {{"*.a.com"}, 1}}, std::nullopt).ok());
}

// A big table (the lookup is hash probes per label, never a scan: see Find()).
TEST(SniRoutesTest, HundredThousandRoutes) {
  Routes routes;
  for (int i = 0; i < 100'000; ++i) {
    routes.push_back(
        {{absl::StrCat("host", i, ".example.com"), absl::StrCat("*.w", i, ".net")}, i});
  }
  const SniRoutes big = MustBuild(routes, std::nullopt);
  EXPECT_EQ(big.Match("host99999.example.com"), 99'999);
  EXPECT_EQ(big.Match("a.b.c.w77777.net"), 77'777);
  EXPECT_EQ(big.Match("host100000.example.com"), std::nullopt);
  EXPECT_EQ(big.Match("w5.net"), std::nullopt);
}

}  // namespace
}  // namespace l4lb::tls
