// The sni_routes and sni_timeout keys (conf/sni_keys.h) through the whole
// loader: what they fill in, and one error at the right place for each mistake.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

#include "conf/config.h"

namespace l4lb::conf {
namespace {

const std::string kPools =
    "[[service]]\nname = \"site-a\"\nbackends = [\"10.0.0.1:443\"]\n"
    "[[service]]\nname = \"site-b\"\nbackends = [\"10.0.0.2:443\", \"10.0.0.3:443\"]\n";

std::string Error(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  if (services.ok()) return "loaded fine";
  return std::string(services.status().message());
}

TEST(SniKeysTest, RoutesPoolsAndTimeout) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(
      "[defaults]\nsni_timeout = \"3s\"\n"
      "[[service]]\nname = \"https\"\nlisten = [\"0.0.0.0:443\"]\n"
      "sni_routes = [\n"
      "  { names = [\"a.example.com\"], service = \"site-a\" },\n"
      "  { names = [\"*.example.com\", \"example.com\"], service = \"site-b\" },\n]\n" +
          kPools,
      "t.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 3u);
  const Server::Service& front = (*services)[0];
  EXPECT_TRUE(front.backends.empty());  // no default route: unmatched clients are refused
  EXPECT_EQ(front.sni_timeout, absl::Seconds(3));
  ASSERT_EQ(front.sni_routes.size(), 2u);
  EXPECT_EQ(front.sni_routes[0].service, "site-a");
  EXPECT_EQ(front.sni_routes[1].names, (std::vector<std::string>{"*.example.com", "example.com"}));
  EXPECT_TRUE((*services)[1].listen.empty());
  EXPECT_EQ((*services)[2].backends.size(), 2u);
}

TEST(SniKeysTest, ArrayOfTablesAndADefaultRoute) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(
      "[[service]]\nname = \"https\"\nlisten = [\"0.0.0.0:443\"]\n"
      "backends = [\"10.0.0.9:443\"]\n"
      "[[service.sni_routes]]\nnames = [\"a.example.com\"]\nservice = \"site-a\"\n"
      "[[service.sni_routes]]\nnames = [\"b.example.com\"]\nservice = \"site-b\"\n" +
          kPools,
      "t.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ((*services)[0].backends.size(), 1u);
  EXPECT_EQ((*services)[0].sni_routes.size(), 2u);
  EXPECT_EQ((*services)[0].sni_timeout, absl::Seconds(5));
}

struct Bad {
  const char* what;
  std::string text;
  std::string want;
};
class SniKeysBadTest : public ::testing::TestWithParam<Bad> {};

TEST_P(SniKeysBadTest, OneErrorAtTheRightPlace) { EXPECT_EQ(Error(GetParam().text), GetParam().want); }

const std::string kFront = "[[service]]\nname = \"https\"\nlisten = [\"0.0.0.0:443\"]\n";

INSTANTIATE_TEST_SUITE_P(
    Errors, SniKeysBadTest,
    ::testing::Values(
        Bad{"no_such_service",
            kFront + "sni_routes = [{ names = [\"a.example.com\"], service = \"site-c\" }]\n" + kPools,
            "t.toml:4:54: sni_routes: service \"site-c\": no [[service]] has that name"},
        Bad{"itself",
            kFront + "backends = [\"10.0.0.9:443\"]\n"
                     "sni_routes = [{ names = [\"a.example.com\"], service = \"https\" }]\n",
            "t.toml:5:54: sni_routes: service \"https\": is this service (its own backends are "
            "the default route already)"},
        Bad{"chained",
            kFront + "sni_routes = [{ names = [\"a.example.com\"], service = \"inner\" }]\n"
                     "[[service]]\nname = \"inner\"\nlisten = [\"0.0.0.0:8443\"]\n"
                     "sni_routes = [{ names = [\"b.example.com\"], service = \"site-a\" }]\n" +
                kPools,
            "t.toml:4:54: sni_routes: service \"inner\": has sni_routes of its own (a route "
            "leads to backends, not to another lookup)"},
        Bad{"udp_target",
            kFront + "sni_routes = [{ names = [\"a.example.com\"], service = \"dns\" }]\n"
                     "[[service]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
                     "backends = [\"10.0.0.1:53\"]\n",
            "t.toml:4:54: sni_routes: service \"dns\": is not a tcp service"},
        Bad{"udp_front",
            "[[service]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
            "sni_routes = [{ names = [\"a.example.com\"], service = \"site-a\" }]\n" + kPools,
            "t.toml:5:14: sni_routes: only for tcp services"},
        Bad{"pool_without_route", kFront + "backends = [\"10.0.0.9:443\"]\n" + kPools,
            "t.toml:5:1: listen: required (or name this service in another service's "
            "sni_routes), e.g. listen = [\"0.0.0.0:80\"]"},
        Bad{"in_defaults",
            "[defaults]\nsni_routes = [{ names = [\"a.example.com\"], service = \"site-a\" }]\n" +
                kFront + "backends = [\"10.0.0.9:443\"]\n",
            "t.toml:2:14: sni_routes: not allowed in [defaults]; each front service sets its own"},
        Bad{"bad_name",
            kFront + "sni_routes = [{ names = [\"a.*.com\"], service = \"site-a\" }]\n" + kPools,
            "t.toml:4:26: sni_routes: server name pattern \"a.*.com\": '*' only as a whole first "
            "label (\"*.example.com\")"},
        Bad{"twice",
            kFront + "sni_routes = [\n  { names = [\"a.example.com\"], service = \"site-a\" },\n"
                     "  { names = [\"A.example.com\"], service = \"site-b\" },\n]\n" + kPools,
            "t.toml:6:14: sni_routes: server name pattern \"A.example.com\": given twice"},
        Bad{"no_names", kFront + "sni_routes = [{ service = \"site-a\" }]\n" + kPools,
            "t.toml:4:15: sni_routes: names: want names like [\"a.example.com\", "
            "\"*.example.com\"]"},
        Bad{"no_service", kFront + "sni_routes = [{ names = [\"a.example.com\"] }]\n" + kPools,
            "t.toml:4:15: sni_routes: service: required"},
        Bad{"unknown_route_key",
            kFront + "sni_routes = [{ names = [\"a.example.com\"], service = \"site-a\", to = 1 }]\n" +
                kPools,
            "t.toml:4:64: unknown key \"to\" in an sni route (want names, service)"},
        Bad{"timeout_without_routes", kFront + "backends = [\"10.0.0.9:443\"]\nsni_timeout = \"1s\"\n",
            "t.toml:5:15: sni_timeout: needs sni_routes in the same service"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return info.param.what; });

}  // namespace
}  // namespace l4lb::conf
