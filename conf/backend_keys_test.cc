#include "conf/backend_keys.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "conf/config.h"

namespace l4lb::conf {
namespace {

std::vector<Server::Service> Load(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  EXPECT_TRUE(services.ok()) << services.status();
  return services.ok() ? *std::move(services) : std::vector<Server::Service>{};
}

std::string Error(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  if (services.ok()) return "loaded fine";
  EXPECT_EQ(services.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(services.status().message());
}

// Host names load as named, unresolved backends (no DNS at load), with their
// weight, backup flag and where they were written; dns_refresh and dns_servers
// come from the service or [defaults].
TEST(BackendKeysTest, NamedBackendsAndTheDnsKeys) {
  const std::vector<Server::Service> services = Load(R"(
[defaults]
dns_refresh = "10s"
dns_servers = ["127.0.0.1:5353", "10.0.0.53"]

[[service]]
listen = ["0.0.0.0:21"]
backends = ["10.0.0.1:21", "FTP1.farm.internal:21=2", { address = "ftp2.farm.internal:21", backup = true }]

[[service]]
listen = ["0.0.0.0:80"]
backends = ["web.farm.internal:80"]
dns_refresh = "1m"
dns_servers = "127.0.0.1:53"

[[service]]
listen = ["0.0.0.0:30000-30009"]
backends = ["pasv.farm.internal", "10.0.0.1"]
)");
  ASSERT_EQ(services.size(), 3u);
  const std::vector<backend::BackendSpec>& ftp = services[0].backends;
  ASSERT_EQ(ftp.size(), 3u);
  EXPECT_TRUE(ftp[0].resolved());
  EXPECT_FALSE(ftp[1].resolved());
  EXPECT_EQ(ftp[1].host, "ftp1.farm.internal");
  EXPECT_EQ(ftp[1].port, 21);
  EXPECT_EQ(ftp[1].weight, 2u);
  EXPECT_EQ(ftp[1].origin, "t.toml:8:28: backends");
  EXPECT_EQ(ftp[2].host, "ftp2.farm.internal");
  EXPECT_TRUE(ftp[2].backup);
  EXPECT_EQ(services[0].dns_refresh, absl::Seconds(10));
  ASSERT_EQ(services[0].dns_servers.size(), 2u);
  EXPECT_EQ(services[0].dns_servers[0].ToString(), "127.0.0.1:5353");
  EXPECT_EQ(services[0].dns_servers[1].ToString(), "10.0.0.53:53");
  EXPECT_EQ(services[1].dns_refresh, absl::Minutes(1));
  ASSERT_EQ(services[1].dns_servers.size(), 1u);
  EXPECT_EQ(services[2].backends[0].host, "pasv.farm.internal");
  EXPECT_EQ(services[2].backends[0].target_port(), 0) << "the client's port";

  const std::vector<Server::Service> plain =
      Load("[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n");
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].dns_refresh, absl::Seconds(30)) << "the default";
  EXPECT_TRUE(plain[0].dns_servers.empty()) << "default: /etc/resolv.conf";
}

TEST(BackendKeysTest, MistakesPointAtTheKey) {
  const std::string head = "[[service]]\nlisten = [\"0.0.0.0:80\"]\n";
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {head + "backends = [\"ftp.test:80\", \"ftp.test\"]\n",
            "t.toml:3:28: backends: \"ftp.test\": give every backend a port (ftp.test:80 has one) "
            "or none (then clients keep the port they connected to)"},
           {head + "backends = [\"10.0.0.300:80\"]\n",
            "t.toml:3:13: backends: \"10.0.0.300:80\": neither an IPv4 address nor a host name"},
           {head + "backends = [\"ftp.test:80\", \"FTP.test:80\"]\n",
            "t.toml:3:28: backends: \"FTP.test:80\": listed twice"},
           {head + "backends = [\"ftp.test:80\"]\ndns_refresh = \"0\"\n",
            "t.toml:4:15: dns_refresh: "},
           {head + "backends = [\"ftp.test:80\"]\ndns_servers = [\"ns1.test\"]\n",
            "t.toml:4:15: dns_servers: \"ns1.test\": want a DNS server address"},
           {head + "backends = [\"ftp.test:80\"]\ndns_servers = [53]\n",
            "t.toml:4:16: dns_servers: want addresses as strings"},
           {head + "backends = [\"ftp.test:80\"]\ndns_servers = 53\n",
            "t.toml:4:15: dns_servers: want [\"IP[:PORT]\", ...]"},
       }) {
    const std::string got = Error(text);
    EXPECT_EQ(got.substr(0, message.size()), message) << text;
  }
}

}  // namespace
}  // namespace l4lb::conf
