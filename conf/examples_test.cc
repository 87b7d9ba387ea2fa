// The config files l4lb ships (conf/examples/, the package's dist/l4lb.toml)
// load as an operator gets them, and hold what their comments say.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "conf/config.h"
#include "health/probe.h"

namespace l4lb::conf {
namespace {

using Kind = health::ProbeSpec::Kind;

// Every example an operator may copy must load.
TEST(ExamplesTest, ExamplesLoad) {
  for (const char* name : {"ftp_farm", "sftp_farm", "https_passthrough", "dns_udp"}) {
    const std::string path = absl::StrCat("conf/examples/", name, ".toml");
    absl::StatusOr<std::vector<Server::Service>> services = LoadConfig(path);
    ASSERT_TRUE(services.ok()) << services.status();
    EXPECT_FALSE(services->empty()) << path;
  }
  // The SFTP farm shows the balancing and connection keys an operator copies.
  const std::vector<Server::Service> sftp = *LoadConfig("conf/examples/sftp_farm.toml");
  EXPECT_EQ(sftp[0].balance, balancer::Balance::kLeastConn);
  EXPECT_TRUE(sftp[0].backends.back().backup);
  EXPECT_TRUE(sftp[0].client_keepalive.enabled());
  // The HTTPS front door routes by SNI to two listener-less farms.
  const std::vector<Server::Service> https = *LoadConfig("conf/examples/https_passthrough.toml");
  ASSERT_EQ(https.size(), 3u);
  EXPECT_EQ(https[0].sni_routes.size(), 2u);
  EXPECT_EQ(https[0].backends.size(), 3u);
  EXPECT_TRUE(https[1].listen.empty());
  EXPECT_EQ(https[1].balance, balancer::Balance::kLeastConn);
  EXPECT_EQ(https[2].health.probe.port, 8080);
}

// The same for every .toml in conf/examples/, so a new example cannot be
// forgotten in the list above (files beside them, like deny.txt, are their data).
TEST(ExamplesTest, EveryTomlInExamplesLoads) {
  int loaded = 0;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator("conf/examples")) {
    if (entry.path().extension() != ".toml") continue;
    absl::StatusOr<std::vector<Server::Service>> services = LoadConfig(entry.path().string());
    ASSERT_TRUE(services.ok()) << services.status();
    EXPECT_FALSE(services->empty()) << entry.path();
    ++loaded;
  }
  EXPECT_GE(loaded, 5);  // the four above and ftp_farm_access.toml
}

// The ECMP farm (README "Several instances behind ECMP"): the control service
// with ports and the passive range without, one affinity group, and the BIRD
// configs beside it parse as shipped (bird -p: parse only; tools/setup.sh
// installs bird2). tests/ecmp_e2e_test runs them, addresses substituted.
TEST(ExamplesTest, EcmpFarmAndItsBirdConfigs) {
  absl::StatusOr<std::vector<Server::Service>> services =
      LoadConfig("conf/examples/ftp_farm_ecmp.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 2u);
  EXPECT_EQ((*services)[0].backends[0].address.port(), 21);
  EXPECT_EQ((*services)[1].backends[0].address.port(), 0);
  EXPECT_EQ((*services)[0].affinity_group, (*services)[1].affinity_group);
  for (const char* file : {"bird-l4lb.conf", "bird-router.conf"}) {
    const std::string command = absl::StrCat("/usr/sbin/bird -p -c conf/examples/", file, " 2>&1");
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
  }
}

// The package's /etc/l4lb/l4lb.toml (dist/l4lb.toml): the unit starts l4lb with
// it, so it must load as installed, before anyone edits it.
TEST(ExamplesTest, PackagedDefaultConfigLoads) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfig("dist/l4lb.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ((*services)[0].name, "web");
  EXPECT_EQ((*services)[0].listen.size(), 1u);
  EXPECT_EQ((*services)[0].backends.size(), 3u);
}

TEST(ExamplesTest, FtpFarmExampleIsWhatItsCommentsSay) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfig("conf/examples/ftp_farm.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 1u);
  const Server::Service& ftp = (*services)[0];
  EXPECT_EQ(ftp.listen.size(), 101u);  // 21 and 30000-30099
  EXPECT_EQ(ftp.backends.size(), 3u);
  EXPECT_EQ(ftp.backends[0].address.port(), 0);
  EXPECT_EQ(ftp.health.probe.kind, Kind::kFtp);
  EXPECT_FALSE(ftp.affinity_group.empty());
}

}  // namespace
}  // namespace l4lb::conf
