#include "l4lb/sni_services.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace l4lb {
namespace {

Server::Service Service(const std::string& name, bool listens, int backends) {
  Server::Service s;
  s.name = name;
  if (listens) s.listen.push_back(*net::SocketAddress::Parse("127.0.0.1:0"));
  for (int i = 0; i < backends; ++i) {
    backend::BackendSpec b;
    b.address = *net::SocketAddress::Parse("10.0.0." + std::to_string(i + 1) + ":443");
    b.name = b.address.ToString();
    s.backends.push_back(b);
  }
  return s;
}

TEST(SniServicesTest, RoutesNameServiceIndicesAndTheDefaultIsTheFrontsOwn) {
  std::vector<Server::Service> services = {Service("https", true, 1), Service("a", false, 1),
                                           Service("b", false, 2)};
  services[0].sni_routes = {{{"a.example.com"}, "a"}, {{"*.example.com"}, "b"}};
  absl::StatusOr<std::vector<std::shared_ptr<const tls::SniRoutes>>> routes =
      BuildSniRoutes(services);
  ASSERT_TRUE(routes.ok()) << routes.status();
  ASSERT_NE((*routes)[0], nullptr);
  EXPECT_EQ((*routes)[1], nullptr);
  EXPECT_EQ((*routes)[0]->Match("a.example.com"), 1);
  EXPECT_EQ((*routes)[0]->Match("x.example.com"), 2);
  EXPECT_EQ((*routes)[0]->Match("other.org"), 0);
  EXPECT_EQ((*routes)[0]->Match(""), 0);
  // Without backends of its own, a front has no default route.
  services[0].backends.clear();
  routes = BuildSniRoutes(services);
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_EQ((*routes)[0]->Match("other.org"), std::nullopt);
}

TEST(SniServicesTest, EachBrokenRuleNamesTheService) {
  const auto error = [](std::vector<Server::Service> services) {
    absl::StatusOr<std::vector<std::shared_ptr<const tls::SniRoutes>>> routes =
        BuildSniRoutes(services);
    return routes.ok() ? std::string("ok") : std::string(routes.status().message());
  };
  std::vector<Server::Service> base = {Service("https", true, 0), Service("a", false, 1)};
  base[0].sni_routes = {{{"a.example.com"}, "a"}};
  EXPECT_EQ(error(base), "ok");
  std::vector<Server::Service> s = base;
  s[0].sni_routes[0].service = "nope";
  EXPECT_EQ(error(s), "service \"https\": sni_routes: service \"nope\": no such service");
  s = base;
  s[1].protocol = Server::Protocol::kUdp;
  EXPECT_EQ(error(s), "service \"https\": sni_routes: service \"a\": is not a tcp service");
  s = base;
  s.push_back(Service("lonely", false, 1));
  EXPECT_EQ(error(s), "service \"lonely\": no listener, and no sni_routes entry sends clients to it");
  s = base;
  s[0].sni_routes.clear();
  EXPECT_EQ(error(s), "service \"https\": no backends");
  s = base;
  s[0].sni_routes.push_back({{"A.example.com"}, "a"});
  EXPECT_TRUE(absl::StrContains(error(s), "given twice")) << error(s);
}

}  // namespace
}  // namespace l4lb
