#include "conf/config.h"

#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

#include "health/probe.h"

namespace l4lb::conf {
namespace {

using Kind = health::ProbeSpec::Kind;

std::vector<Server::Service> Load(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  EXPECT_TRUE(services.ok()) << services.status();
  return services.ok() ? *std::move(services) : std::vector<Server::Service>{};
}

// A valid service body, to which a test adds.
const std::string kOkService =
    "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n";

std::string Error(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  if (services.ok()) return "loaded fine";
  EXPECT_EQ(services.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(services.status().message());
}

std::vector<std::string> Names(const std::vector<net::SocketAddress>& addresses) {
  std::vector<std::string> out;
  for (const net::SocketAddress& a : addresses) out.push_back(a.ToString());
  return out;
}

TEST(ConfigTest, EveryServiceFieldIsSettable) {
  const std::vector<Server::Service> services = Load(R"(
[[service]]
name = "dns"
protocol = "udp"
listen = ["127.0.0.1:53", "[::1]:53"]
backends = ["10.0.0.1:53", {address = "10.0.0.2:5353", weight = 3}, "[2001:db8::1]:53=2"]
hash_key = "src_ip_port"
maglev_table_size = 251
connect_timeout = "750ms"
connect_retries = 5
idle_timeout = "0"
kill_on_down = true
affinity_group = "g"
affinity_ttl = "15m"
udp_idle_timeout = "5s"
udp_max_sessions = 1000
max_responses = 1
[service.health]
check = "send_expect"
send = "PING\r\n"
expect = "+PONG"
interval = "3s"
timeout = "250ms"
rise = 4
fall = 5
port = 8053
http_path = "/healthz"
http_host = "example.com"
http_status = "2xx"
passive = false
)");
  ASSERT_EQ(services.size(), 1u);
  const Server::Service& s = services[0];
  EXPECT_EQ(s.name, "dns");
  EXPECT_EQ(s.protocol, Server::Protocol::kUdp);
  EXPECT_EQ(Names(s.listen), (std::vector<std::string>{"127.0.0.1:53", "[::1]:53"}));
  ASSERT_EQ(s.backends.size(), 3u);
  EXPECT_EQ(s.backends[0].name, "10.0.0.1:53");
  EXPECT_EQ(s.backends[0].weight, 1u);
  EXPECT_EQ(s.backends[1].name, "10.0.0.2:5353");
  EXPECT_EQ(s.backends[1].weight, 3u);
  EXPECT_EQ(s.backends[2].name, "[2001:db8::1]:53");
  EXPECT_EQ(s.backends[2].weight, 2u);
  EXPECT_EQ(s.hash_key, backend::HashKey::kSrcIpPort);
  EXPECT_EQ(s.maglev_table_size, 251u);
  EXPECT_EQ(s.connect_timeout, absl::Milliseconds(750));
  EXPECT_EQ(s.connect_retries, 5);
  EXPECT_EQ(s.idle_timeout, absl::ZeroDuration());
  EXPECT_TRUE(s.kill_on_down);
  EXPECT_EQ(s.affinity_group, "g");
  EXPECT_EQ(s.affinity_ttl, absl::Minutes(15));
  EXPECT_EQ(s.udp_idle_timeout, absl::Seconds(5));
  EXPECT_EQ(s.udp_max_sessions, 1000u);
  EXPECT_EQ(s.max_responses, 1u);
  EXPECT_EQ(s.health.probe.kind, Kind::kSendExpect);
  EXPECT_EQ(s.health.probe.send, "PING\r\n");  // TOML's own escapes
  EXPECT_EQ(s.health.probe.expect, "+PONG");
  EXPECT_EQ(s.health.interval, absl::Seconds(3));
  EXPECT_EQ(s.health.timeout, absl::Milliseconds(250));
  EXPECT_EQ(s.health.rise, 4);
  EXPECT_EQ(s.health.fall, 5);
  EXPECT_EQ(s.health.probe.port, 8053);
  EXPECT_EQ(s.health.probe.http_path, "/healthz");
  EXPECT_EQ(s.health.probe.http_host, "example.com");
  EXPECT_EQ(s.health.probe.http_statuses, std::vector<char>{'2'});
  EXPECT_FALSE(s.health.passive);
}

TEST(ConfigTest, TcpConnectionOptionsAreReadAndRefusedOnUdp) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(
      "[defaults]\nclient_fin_timeout = \"45s\"\nbackend_timeout = \"1m\"\n"
      "[[service]]\nlisten = [\"0.0.0.0:21\"]\nbackends = [\"10.0.0.1:21\"]\n"
      "client_keepalive = \"10m,1m,5\"\nbackend_keepalive = \"30s,10s,3\"\n"
      "client_timeout = \"30s\"\n"
      "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
      "backends = [\"10.0.0.1:53\"]\n",
      "t.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  const Server::Service& tcp = (*services)[0];
  EXPECT_EQ(tcp.client_keepalive.ToString(), "10m,1m,5");
  EXPECT_EQ(tcp.backend_keepalive.count, 3);
  EXPECT_EQ(tcp.client_fin_timeout, absl::Seconds(45)) << "from [defaults]";
  EXPECT_EQ(tcp.client_timeout, absl::Seconds(30));
  EXPECT_EQ(tcp.backend_timeout, absl::Minutes(1)) << "from [defaults]";
  EXPECT_EQ((*services)[1].backend_timeout, absl::ZeroDuration()) << "[defaults] skip udp";
  EXPECT_FALSE((*services)[1].client_keepalive.enabled());
  EXPECT_EQ((*services)[1].client_fin_timeout, absl::ZeroDuration()) << "[defaults] skip udp";
  services = LoadConfigString(
      "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
      "backends = [\"10.0.0.1:53\"]\nbackend_keepalive = \"30s,10s,3\"\n",
      "t.toml");
  ASSERT_FALSE(services.ok());
  EXPECT_EQ(services.status().message(), "t.toml:5:21: backend_keepalive: only for tcp services");
}

TEST(ConfigTest, ShortConnectionOptionsAreOptInAndTcpOnly) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(
      "[defaults]\nbackend_tfo = true\n"
      "[[service]]\nlisten = [\"0.0.0.0:443\"]\nbackends = [\"10.0.0.1:443\"]\n"
      "defer_accept = true\n"
      "[[service]]\nlisten = [\"0.0.0.0:21\"]\nbackends = [\"10.0.0.1:21\"]\n"
      "backend_tfo = false\n"
      "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
      "backends = [\"10.0.0.1:53\"]\n",
      "t.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_TRUE((*services)[0].defer_accept);
  EXPECT_TRUE((*services)[0].backend_tfo) << "from [defaults]";
  EXPECT_FALSE((*services)[1].defer_accept) << "off unless asked";
  EXPECT_FALSE((*services)[1].backend_tfo);
  EXPECT_FALSE((*services)[2].backend_tfo) << "[defaults] skip udp";
  services = LoadConfigString(
      "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
      "backends = [\"10.0.0.1:53\"]\ndefer_accept = true\n",
      "t.toml");
  ASSERT_FALSE(services.ok());
  EXPECT_EQ(services.status().message(), "t.toml:5:16: defer_accept: only for tcp services");
  services = LoadConfigString(
      "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n"
      "backend_tfo = \"yes\"\n",
      "t.toml");
  ASSERT_FALSE(services.ok());
  EXPECT_EQ(services.status().message(), "t.toml:4:15: backend_tfo: want true or false, got a string");
}

TEST(ConfigTest, BalanceKeysAndTheirDefaults) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(
      "[defaults]\nbalance = \"least_conn\"\n"
      "[[service]]\nlisten = [\"0.0.0.0:22\"]\nbackends = [\"10.0.0.1:22\"]\n"
      "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n"
      "balance = \"maglev_bounded\"\nbalance_factor = 2\n"
      "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
      "backends = [\"10.0.0.1:53\"]\n",
      "t.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ((*services)[0].balance, balancer::Balance::kLeastConn) << "from [defaults]";
  EXPECT_EQ((*services)[1].balance, balancer::Balance::kMaglevBounded);
  EXPECT_EQ((*services)[1].balance_factor, 2.0);
  EXPECT_EQ((*services)[2].balance, balancer::Balance::kMaglev) << "[defaults] skip udp";
  services = LoadConfigString(
      "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\n"
      "backends = [\"10.0.0.1:53\"]\nbalance = \"round_robin\"\n",
      "t.toml");
  ASSERT_FALSE(services.ok());
  EXPECT_EQ(services.status().message(), "t.toml:5:11: balance: only maglev for udp services");
}

TEST(ConfigTest, BackupsAndSlowStart) {
  const std::vector<Server::Service> services = Load(R"(
[defaults]
slow_start = "30s"

[[service]]
listen = ["0.0.0.0:22"]
backends = ["10.0.0.1:22", {address = "10.0.0.9:22", backup = true},
            {address = "10.0.0.8:22", weight = 2, backup = false}, "10.0.0.7:22=3@backup"]

[[service]]
listen = ["0.0.0.0:21"]
backends = ["10.0.0.1", "10.0.0.9@backup"]
slow_start = "0"
)");
  ASSERT_EQ(services.size(), 2u);
  const std::vector<backend::BackendSpec>& b = services[0].backends;
  ASSERT_EQ(b.size(), 4u);
  EXPECT_FALSE(b[0].backup);
  EXPECT_TRUE(b[1].backup);
  EXPECT_EQ(b[1].name, "10.0.0.9:22");
  EXPECT_FALSE(b[2].backup);
  EXPECT_EQ(b[2].weight, 2u);
  EXPECT_TRUE(b[3].backup);
  EXPECT_EQ(b[3].weight, 3u);
  EXPECT_EQ(services[0].slow_start, absl::Seconds(30)) << "from [defaults]";
  EXPECT_TRUE(services[1].backends[1].backup);
  EXPECT_EQ(services[1].backends[1].address.port(), 0);
  EXPECT_EQ(services[1].slow_start, absl::ZeroDuration()) << "0: off, overriding [defaults]";
}

TEST(ConfigTest, LiteralStringsCarryTheFlagEscapes) {
  const std::vector<Server::Service> services = Load(kOkService + R"([service.health]
check = "send_expect"
send = 'PING\r\n'
expect = '\x00\x01ok'
)");
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].health.probe.send, "PING\r\n");
  EXPECT_EQ(services[0].health.probe.expect, std::string("\0\1ok", 4));
}

TEST(ConfigTest, UnsetKeysKeepTheFlagDefaults) {
  const std::vector<Server::Service> services = Load(R"(
[[service]]
listen = ["0.0.0.0:80"]
backends = ["10.0.0.1:80"]
)");
  ASSERT_EQ(services.size(), 1u);
  const Server::Service& s = services[0];
  const Server::Service want;
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(s.protocol, Server::Protocol::kTcp);
  EXPECT_EQ(s.hash_key, want.hash_key);
  EXPECT_EQ(s.maglev_table_size, want.maglev_table_size);
  EXPECT_EQ(s.connect_timeout, want.connect_timeout);
  EXPECT_EQ(s.connect_retries, want.connect_retries);
  EXPECT_EQ(s.idle_timeout, want.idle_timeout);
  EXPECT_EQ(s.affinity_group, "");
  EXPECT_EQ(s.health.probe.kind, Kind::kTcp);
  EXPECT_EQ(s.health.interval, absl::Seconds(2));
  EXPECT_EQ(s.health.rise, 2);
  EXPECT_EQ(s.health.fall, 3);
  EXPECT_TRUE(s.health.passive);
}

TEST(ConfigTest, DefaultsAreInheritedKeyByKeyAndOverridden) {
  const std::vector<Server::Service> services = Load(R"(
[defaults]
connect_timeout = "5s"
backends = ["10.0.0.1", "10.0.0.2"]
[defaults.health]
check = "ssh"
interval = "7s"

[[service]]
name = "a"
listen = ["0.0.0.0:22"]

[[service]]
name = "b"
listen = ["0.0.0.0:2222"]
connect_timeout = "1s"
backends = ["10.0.0.9:22"]
[service.health]
interval = "1s"
)");
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].connect_timeout, absl::Seconds(5));
  ASSERT_EQ(services[0].backends.size(), 2u);
  EXPECT_EQ(services[0].backends[1].address.port(), 0);  // the client's port
  EXPECT_EQ(services[0].health.probe.kind, Kind::kSsh);
  EXPECT_EQ(services[0].health.interval, absl::Seconds(7));
  EXPECT_EQ(services[1].connect_timeout, absl::Seconds(1));
  ASSERT_EQ(services[1].backends.size(), 1u);
  EXPECT_EQ(services[1].backends[0].name, "10.0.0.9:22");
  EXPECT_EQ(services[1].health.probe.kind, Kind::kSsh);  // from [defaults.health]
  EXPECT_EQ(services[1].health.interval, absl::Seconds(1));
}

TEST(ConfigTest, PortRangesAndPortlessBackends) {
  const std::vector<Server::Service> services = Load(R"(
[[service]]
listen = ["0.0.0.0:21", "0.0.0.0:30000-30009"]
backends = ["10.0.0.1", "10.0.0.2=2"]
)");
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].listen.size(), 11u);
  EXPECT_EQ(services[0].listen.back().ToString(), "0.0.0.0:30009");
  EXPECT_EQ(services[0].backends[1].name, "10.0.0.2:0");
  EXPECT_EQ(services[0].backends[1].weight, 2u);
}

TEST(ConfigTest, UdpServicesAreProbedOnlyWhenTold) {
  const std::vector<Server::Service> services = Load(R"(
[[service]]
protocol = "udp"
listen = ["127.0.0.1:53"]
backends = ["10.0.0.1:53"]

[[service]]
protocol = "udp"
listen = ["127.0.0.1:54"]
backends = ["10.0.0.1:53"]
[service.health]
check = "dns"

[[service]]
listen = ["127.0.0.1:53"]
backends = ["10.0.0.1:53"]
)");
  ASSERT_EQ(services.size(), 3u);
  EXPECT_EQ(services[0].health.probe.kind, Kind::kNone) << "a TCP connect proves nothing for UDP";
  EXPECT_EQ(services[1].health.probe.kind, Kind::kDns);
  EXPECT_EQ(services[2].health.probe.kind, Kind::kTcp);
}

TEST(ConfigTest, ListenersThatDoNotOverlap) {
  // TCP and UDP are separate port spaces, 0.0.0.0 does not cover [::], port 0
  // binds a fresh port each time, and distinct addresses may share a port.
  const std::vector<Server::Service> services = Load(R"(
[[service]]
listen = ["0.0.0.0:53", "[::]:53", "127.0.0.1:0"]
backends = ["10.0.0.1:53"]
[[service]]
protocol = "udp"
listen = ["0.0.0.0:53", "127.0.0.1:0"]
backends = ["10.0.0.1:53"]
[[service]]
listen = ["127.0.0.2:80", "127.0.0.3:80", "127.0.0.1:0"]
backends = ["10.0.0.1:80"]
)");
  EXPECT_EQ(services.size(), 3u);
}

TEST(ConfigTest, MissingFileIsNamed) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfig("/nonexistent/l4lb.toml");
  ASSERT_FALSE(services.ok());
  EXPECT_EQ(services.status().message(), "/nonexistent/l4lb.toml: No such file or directory");
}

TEST(ConfigTest, ErrorsInAFileNameTheFile) {
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/bad.toml");
  std::ofstream(path) << "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = []\n";
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfig(path);
  ASSERT_FALSE(services.ok());
  EXPECT_EQ(services.status().message(),
            absl::StrCat(path, ":3:12: backends: empty; want at least one backend"));
}

struct BadConfig {
  const char* what;
  std::string text;
  std::string want;  // the whole message: FILE:LINE:COL: what is wrong
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, OneErrorAtTheRightPlace) {
  EXPECT_EQ(Error(GetParam().text), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadConfigTest,
    ::testing::Values(
        BadConfig{"syntax", "[[service]]\nlisten = [\"0.0.0.0:80\"\n",
                  "t.toml:2:24: Error while parsing array: encountered end-of-file"},
        // Found by fuzz/config_fuzzer: toml++ 3.3.0 asserts (abort) on a table header
        // whose key starts with a character that cannot start a key.
        BadConfig{"table_header_not_a_key", "[([service]]\n",
                  "t.toml:1:2: Error while parsing key: expected bare key starting "
                  "character or string delimiter, saw '('"},
        BadConfig{"syntax_duplicate_key", kOkService + "listen = [\"0.0.0.0:81\"]\n",
                  "t.toml:4:10: Error while parsing key-value pair: cannot redefine existing array "
                  "'listen'"},
        BadConfig{"no_service", "[defaults]\nconnect_timeout = \"1s\"\n",
                  "t.toml:1:1: no [[service]] table: nothing to listen on"},
        BadConfig{"single_brackets", "[service]\nlisten = [\"0.0.0.0:80\"]\n",
                  "t.toml:1:1: service: want [[service]] tables (double brackets, one per "
                  "service), got a table"},
        BadConfig{"unknown_root_key", "listen = 1\n" + kOkService,
                  "t.toml:1:1: unknown key \"listen\" in the file (want [defaults], "
                  "[[service]] or [admin])"},
        BadConfig{"unknown_service_key", kOkService + "conect_timeout = \"1s\"\n",
                  "t.toml:4:1: unknown key \"conect_timeout\" in [[service]]"},
        BadConfig{"unknown_health_key",
                  kOkService + "[service.health]\ncheck = \"tcp\"\n  rize = 2\n",
                  "t.toml:6:3: unknown key \"rize\" in [service.health]"},
        BadConfig{"unknown_defaults_key", "[defaults]\ntimeout = \"1s\"\n" + kOkService,
                  "t.toml:2:1: unknown key \"timeout\" in [defaults]"},
        BadConfig{"unknown_defaults_health_key", "[defaults.health]\nchek = \"tcp\"\n" + kOkService,
                  "t.toml:2:1: unknown key \"chek\" in [defaults.health]"},
        BadConfig{"unknown_backend_key",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [{address = \"10.0.0.1:80\", wieght = 2}]\n",
                  "t.toml:3:39: unknown key \"wieght\" in a backend (want address, weight, backup)"},
        BadConfig{"backup_as_string",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [{address = \"10.0.0.9:80\", backup = \"yes\"}]\n",
                  "t.toml:3:48: backends: backup: want true or false, got a string"},
        BadConfig{"backup_suffix_junk",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.9:80@spare\"]\n",
                  "t.toml:3:13: backends: \"10.0.0.9:80@spare\": want @backup after the address "
                  "or weight"},
        BadConfig{"backup_suffix_in_table",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [{address = \"10.0.0.9:80@backup\"}]\n",
                  "t.toml:3:13: backends: \"10.0.0.9:80@backup\": a backup is backup = true"},
        BadConfig{"slow_start_not_a_duration", kOkService + "slow_start = \"fast\"\n",
                  "t.toml:4:14: slow_start: \"fast\": want a duration like 500ms, 2s or 5m"},
        BadConfig{"slow_start_as_int", "[defaults]\nslow_start = 30\n" + kOkService,
                  "t.toml:2:14: slow_start: want a duration string like \"2s\", got an integer"},
        BadConfig{"listen_in_defaults", "[defaults]\nlisten = [\"0.0.0.0:80\"]\n" + kOkService,
                  "t.toml:2:10: listen: not allowed in [defaults]; every service sets its own"},
        BadConfig{"int_as_string", kOkService + "connect_retries = \"3\"\n",
                  "t.toml:4:19: connect_retries: want an integer, got a string"},
        BadConfig{"duration_as_int", kOkService + "connect_timeout = 2\n",
                  "t.toml:4:19: connect_timeout: want a duration string like \"2s\", got an "
                  "integer"},
        BadConfig{"bool_as_string", kOkService + "kill_on_down = \"yes\"\n",
                  "t.toml:4:16: kill_on_down: want true or false, got a string"},
        BadConfig{"health_not_table", kOkService + "health = \"ftp\"\n",
                  "t.toml:4:10: health: want a table, got a string"},
        BadConfig{"listen_not_array",
                  "[[service]]\nlisten = \"0.0.0.0:80\"\nbackends = [\"10.0.0.1:80\"]\n",
                  "t.toml:2:10: listen: want an array like [\"0.0.0.0:80\"], got a string"},
        BadConfig{"listen_entry_not_string",
                  "[[service]]\nlisten = [80]\nbackends = [\"10.0.0.1:80\"]\n",
                  "t.toml:2:11: listen: want strings like \"0.0.0.0:80\", got an integer"},
        BadConfig{"bad_duration", kOkService + "connect_timeout = \"soon\"\n",
                  "t.toml:4:19: connect_timeout: \"soon\": want a duration like 500ms, 2s or 5m"},
        BadConfig{"negative_duration", kOkService + "idle_timeout = \"-5s\"\n",
                  "t.toml:4:16: idle_timeout: \"-5s\": want a duration like 500ms, 2s or 5m"},
        BadConfig{"zero_duration", kOkService + "[service.health]\ninterval = \"0s\"\n",
                  "t.toml:5:12: health.interval: must be above 0"},
        BadConfig{"int_out_of_range", kOkService + "connect_retries = 99\n",
                  "t.toml:4:19: connect_retries: 99: want 0..8"},
        BadConfig{"rise_out_of_range", kOkService + "[service.health]\nrise = 0\n",
                  "t.toml:5:8: health.rise: 0: want 1..100"},
        BadConfig{"not_prime", kOkService + "maglev_table_size = 65536\n",
                  "t.toml:4:21: maglev_table_size: 65536 is not prime"},
        BadConfig{"bad_listen_address",
                  "[[service]]\nlisten = [\"0.0.0.0:80\", \"300.1.1.1:80\"]\n"
                  "backends = [\"10.0.0.1:80\"]\n",
                  "t.toml:2:25: listen: \"300.1.1.1:80\": not an IPv4 address (hostnames are not "
                  "resolved)"},
        BadConfig{"bad_listen_range",
                  "[[service]]\nlisten = [\"0.0.0.0:30099-30000\"]\nbackends = [\"10.0.0.1\"]\n",
                  "t.toml:2:11: listen: \"0.0.0.0:30099-30000\": want a port range FIRST-LAST "
                  "with 0 < FIRST <= LAST"},
        BadConfig{"bad_backend",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [\"10.0.0.1:80\", \"10.0.0.2:99999\"]\n",
                  "t.toml:3:28: backends: \"10.0.0.2:99999\": port out of range"},
        BadConfig{"bad_backend_weight",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80=0\"]\n",
                  "t.toml:3:13: backends: \"10.0.0.1:80=0\": weight must be 1..10000"},
        BadConfig{"bad_backend_table_weight",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [{address = \"10.0.0.1:80\", weight = 0}]\n",
                  "t.toml:3:48: backends: weight: 0: want 1..10000"},
        BadConfig{"backend_table_without_address",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [{weight = 2}]\n",
                  "t.toml:3:13: backends: address: required"},
        BadConfig{"backend_twice",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [\"10.0.0.1:80\", {address = \"10.0.0.1:80\"}]\n",
                  "t.toml:3:28: backends: \"10.0.0.1:80\": listed twice"},
        BadConfig{"backend_ports_mixed",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [\"10.0.0.1:80\", \"10.0.0.2\"]\n",
                  "t.toml:3:28: backends: \"10.0.0.2\": give every backend a port (10.0.0.1:80 "
                  "has one) or none (then clients keep the port they connected to)"},
        BadConfig{"backends_in_one_string",
                  "[[service]]\nlisten = [\"0.0.0.0:80\"]\n"
                  "backends = [\"10.0.0.1:80,10.0.0.2:80\"]\n",
                  "t.toml:3:13: backends: \"10.0.0.1:80,10.0.0.2:80\": one backend per string"},
        BadConfig{"empty_backends", "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = []\n",
                  "t.toml:3:12: backends: empty; want at least one backend"},
        BadConfig{"no_backends", "[[service]]\nname = \"web\"\nlisten = [\"0.0.0.0:80\"]\n",
                  "t.toml:1:1: backends: required, e.g. backends = [\"10.0.0.1:80\", "
                  "\"10.0.0.2:80=2\"]"},
        BadConfig{"no_listener", "[[service]]\nbackends = [\"10.0.0.1:80\"]\n",
                  "t.toml:1:1: listen: required (or name this service in another service's "
                  "sni_routes), e.g. listen = [\"0.0.0.0:80\"]"},
        BadConfig{"empty_listen", "[[service]]\nlisten = []\nbackends = [\"10.0.0.1:80\"]\n",
                  "t.toml:2:10: listen: empty; want at least one ADDRESS:PORT"},
        BadConfig{"bad_hash_key", kOkService + "hash_key = \"dst_ip\"\n",
                  "t.toml:4:12: hash_key: \"dst_ip\": want src_ip or src_ip_port"},
        BadConfig{"bad_protocol", kOkService + "protocol = \"sctp\"\n",
                  "t.toml:4:12: protocol: \"sctp\": want tcp or udp"},
        BadConfig{"udp_key_on_tcp", kOkService + "udp_max_sessions = 10\n",
                  "t.toml:4:20: udp_max_sessions: only for protocol = \"udp\""},
        BadConfig{"bad_balance", kOkService + "balance = \"leastconn\"\n",
                  "t.toml:4:11: balance: \"leastconn\": want maglev, maglev_bounded, least_conn "
                  "or round_robin"},
        BadConfig{"bad_balance_factor", kOkService + "balance_factor = 0.5\n",
                  "t.toml:4:18: balance_factor: want a number above 1 and at most 100, e.g. 1.25"},
        BadConfig{"bad_keepalive", kOkService + "client_keepalive = \"10m,1m\"\n",
                  "t.toml:4:20: client_keepalive: \"10m,1m\": three parts needed; want "
                  "IDLE,INTERVAL,COUNT like 10m,1m,5, or off"},
        BadConfig{"bad_fin_timeout", kOkService + "client_fin_timeout = \"soon\"\n",
                  "t.toml:4:22: client_fin_timeout: \"soon\": want a duration like 500ms, 2s or "
                  "5m"},
        BadConfig{"bad_probe_kind", kOkService + "[service.health]\ncheck = \"smtp\"\n",
                  // The probe kinds grow: the message is health::ParseProbeKind's.
                  absl::StrCat("t.toml:5:9: health.check: ",
                               health::ParseProbeKind("smtp").status().message())},
        BadConfig{"send_expect_without_expect",
                  kOkService + "[service.health]\ncheck = \"send_expect\"\nsend = \"PING\"\n",
                  "t.toml:5:9: health.expect: required by check = \"send_expect\" (what the "
                  "reply starts with)"},
        BadConfig{"bad_escape",
                  kOkService + "[service.health]\ncheck = \"send_expect\"\nexpect = 'ok\\'\n",
                  "t.toml:6:10: health.expect: \"ok\\\": String cannot end with \\"},
        BadConfig{"bad_http_path", kOkService + "[service.health]\nhttp_path = \"healthz\"\n",
                  "t.toml:5:13: health.http_path: \"healthz\": want a path like /healthz"},
        BadConfig{"bad_http_status", kOkService + "[service.health]\nhttp_status = \"200\"\n",
                  "t.toml:5:15: health.http_status: \"200\": want status classes like 2xx,3xx"},
        BadConfig{
            "duplicate_name",
            "[[service]]\nname = \"a\"\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n"
            "[[service]]\nname = \"a\"\nlisten = [\"0.0.0.0:81\"]\nbackends = [\"10.0.0.1:81\"]\n",
            "t.toml:6:8: name: \"a\" is taken by the service at 1:1"},
        BadConfig{
            "same_listener_twice",
            "[[service]]\nname = \"a\"\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n"
            "[[service]]\nname = \"b\"\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:81\"]\n",
            "t.toml:7:11: listen: \"0.0.0.0:80\" overlaps \"0.0.0.0:80\" of service \"a\" at "
            "3:11"},
        BadConfig{"range_contains_port",
                  "[[service]]\nlisten = [\"127.0.0.1:30050\"]\nbackends = [\"10.0.0.1\"]\n"
                  "[[service]]\nlisten = [\"0.0.0.0:21\", \"0.0.0.0:30000-30099\"]\n"
                  "backends = [\"10.0.0.2\"]\n",
                  "t.toml:5:25: listen: \"0.0.0.0:30000-30099\" overlaps \"127.0.0.1:30050\" of "
                  "service #1 at 2:11"},
        BadConfig{
            "wildcard_covers_address",
            kOkService + "[[service]]\nlisten = [\"127.0.0.1:80\"]\nbackends = [\"10.0.0.1:80\"]\n",
            "t.toml:5:11: listen: \"127.0.0.1:80\" overlaps \"0.0.0.0:80\" of service #1 at "
            "2:11"},
        BadConfig{"overlap_within_service",
                  "[[service]]\nlisten = [\"[::]:8000-8010\", \"[::1]:8005\"]\n"
                  "backends = [\"10.0.0.1:80\"]\n",
                  "t.toml:2:29: listen: \"[::1]:8005\" overlaps \"[::]:8000-8010\" of this "
                  "service at 2:11"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return info.param.what; });

TEST(ConfigTest, AdminTableTurnsTheEndpointOn) {
  const std::string dir = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  std::ofstream(dir + "/admin.token") << "tok3n\n";
  absl::StatusOr<Config> config = LoadConfigText(
      "[admin]\nlisten = \"0.0.0.0:9100\"\ntoken_file = \"" + dir + "/admin.token\"\n" +
          kOkService,
      "t.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->admin.has_value());
  EXPECT_EQ(config->admin->listen.ToString(), "0.0.0.0:9100");
  EXPECT_EQ(config->admin->token, "tok3n");
  EXPECT_EQ(config->services.size(), 1u);
  absl::StatusOr<Config> none = LoadConfigText(kOkService, "t.toml");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->admin.has_value());
}

TEST(ConfigTest, AdminMistakesPointAtTheirLine) {
  EXPECT_EQ(Error("[admin]\nallow_no_token = true\n" + kOkService),
            "t.toml:1:1: admin.listen: required, e.g. listen = \"127.0.0.1:9100\"");
  EXPECT_EQ(Error("[admin]\nlisten = \"127.0.0.1:9100\"\nlisten_on = 1\n" + kOkService),
            "t.toml:3:1: unknown key \"listen_on\" in [admin]");
  EXPECT_EQ(Error("[admin]\nlisten = \"127.0.0.1:9100\"\ntoken_file = \"/nonexistent/t\"\n" +
                  kOkService),
            "t.toml:3:14: admin.token_file: /nonexistent/t: No such file or directory");
  const std::string exposed = Error("[admin]\nlisten = \"0.0.0.0:9100\"\n" + kOkService);
  EXPECT_EQ(exposed.rfind("t.toml:2:10: admin.listen: 0.0.0.0:9100 is reachable from other hosts",
                          0),
            0u)
      << exposed;
  EXPECT_NE(exposed.find("allow_no_token = true"), std::string::npos) << exposed;
  EXPECT_EQ(Error("[admin]\nlisten = \"0.0.0.0:9100\"\nallow_no_token = true\n" + kOkService),
            "loaded fine");
}

}  // namespace
}  // namespace l4lb::conf
