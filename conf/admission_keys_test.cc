#include "conf/admission_keys.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

#include "conf/config.h"
#include "l4lb/admission/admission.h"
#include "l4lb/admission/cidr.h"

namespace l4lb::conf {
namespace {

using SendProxy = admission::AdmissionOptions::SendProxy;

const std::string kOkService =
    "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n";
const std::string kUdpService =
    "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\nbackends = [\"10.0.0.1:53\"]\n";

std::vector<Server::Service> Load(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  EXPECT_TRUE(services.ok()) << services.status();
  return services.ok() ? *std::move(services) : std::vector<Server::Service>{};
}

std::string Error(const std::string& text, const std::string& name = "t.toml") {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, name);
  if (services.ok()) return "loaded fine";
  EXPECT_EQ(services.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(services.status().message());
}

std::vector<std::string> Names(const std::vector<admission::Cidr>& cidrs) {
  std::vector<std::string> out;
  for (const admission::Cidr& c : cidrs) out.push_back(c.ToString());
  return out;
}

// A fresh directory under TEST_TMPDIR for one test's files.
std::string TempDir(const std::string& name) {
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  mkdir(dir.c_str(), 0755);
  return dir;
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AdmissionKeysTest, EveryKeyIsRead) {
  const std::string dir = TempDir("every_key");
  Write(dir + "/allow.txt", "# office\n192.0.2.0/24\n");
  Write(dir + "/deny.txt", "198.51.100.7\n2001:db8:bad::/48  # scanner\n");
  const std::vector<Server::Service> services =
      Load(kOkService + absl::StrReplaceAll(R"(
allow = ["10.0.0.0/8", "2001:db8::/32"]
deny = ["10.9.9.9", "[2001:db8::1]/128"]
allow_file = "DIR/allow.txt"
deny_file = "DIR/deny.txt"
max_connections = 5000
client_max_connections = 8
client_rate = "600/m"
client_burst = 30
client_prefix_v4 = 24
client_prefix_v6 = 64
ban_after = 5
ban_window = "1m"
ban_time = "15m"
client_table_size = 5000
client_bandwidth = "10MiB/s"
send_proxy = "v2"
accept_proxy_from = ["127.0.0.1", "::1"]
proxy_timeout = "500ms"
)",
                                            {{"DIR", dir}}));
  ASSERT_EQ(services.size(), 1u);
  const admission::AdmissionOptions& a = services[0].admission;
  EXPECT_EQ(Names(a.allow),
            (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24"}));
  EXPECT_EQ(Names(a.deny), (std::vector<std::string>{"10.9.9.9/32", "2001:db8::1/128",
                                                     "198.51.100.7/32", "2001:db8:bad::/48"}));
  EXPECT_EQ(a.max_connections, 5000u);
  EXPECT_EQ(a.client.max_connections, 8u);
  EXPECT_DOUBLE_EQ(a.client.rate, 10.0);
  EXPECT_DOUBLE_EQ(a.client.burst, 30.0);
  EXPECT_EQ(a.client.prefix_v4, 24);
  EXPECT_EQ(a.client.prefix_v6, 64);
  EXPECT_EQ(a.client.ban_after, 5u);
  EXPECT_EQ(a.client.ban_window, absl::Minutes(1));
  EXPECT_EQ(a.client.ban_time, absl::Minutes(15));
  EXPECT_EQ(a.client.max_clients, 5000u);
  EXPECT_EQ(a.client.bandwidth, 10u << 20);
  EXPECT_EQ(a.send_proxy, SendProxy::kV2);
  EXPECT_EQ(Names(a.accept_proxy_from), (std::vector<std::string>{"127.0.0.1/32", "::1/128"}));
  EXPECT_EQ(a.proxy_timeout, absl::Milliseconds(500));
}

TEST(AdmissionKeysTest, UnsetKeysKeepTheDefaults) {
  const std::vector<Server::Service> services = Load(kOkService);
  ASSERT_EQ(services.size(), 1u);
  const admission::AdmissionOptions& a = services[0].admission;
  const admission::AdmissionOptions want;
  EXPECT_TRUE(a.allow.empty());
  EXPECT_TRUE(a.deny.empty());
  EXPECT_EQ(a.max_connections, 0u);
  EXPECT_EQ(a.client.max_connections, 0u);
  EXPECT_EQ(a.client.rate, 0);
  EXPECT_EQ(a.client.burst, 0);
  EXPECT_EQ(a.client.prefix_v4, 32);
  EXPECT_EQ(a.client.prefix_v6, 128);
  EXPECT_EQ(a.client.ban_after, 0u);
  EXPECT_EQ(a.client.ban_window, want.client.ban_window);
  EXPECT_EQ(a.client.ban_time, want.client.ban_time);
  EXPECT_EQ(a.client.max_clients, want.client.max_clients);
  EXPECT_EQ(a.send_proxy, SendProxy::kOff);
  EXPECT_TRUE(a.accept_proxy_from.empty());
  EXPECT_EQ(a.proxy_timeout, absl::Seconds(3));
  // "v1" and "off" too, the values EveryKeyIsRead does not show.
  for (auto [text, send] : {std::pair{"v1", SendProxy::kV1}, {"off", SendProxy::kOff}}) {
    const std::vector<Server::Service> one =
        Load(kOkService + absl::StrCat("send_proxy = \"", text, "\"\n"));
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].admission.send_proxy, send) << text;
  }
}

TEST(AdmissionKeysTest, DefaultsAreInheritedKeyByKey) {
  const std::string dir = TempDir("defaults");
  Write(dir + "/deny.txt", "198.51.100.0/24\n");
  const std::vector<Server::Service> services = Load(absl::StrReplaceAll(R"(
[defaults]
deny = ["10.0.0.0/8"]
deny_file = "DIR/deny.txt"
client_rate = "20/s"
ban_after = 3
send_proxy = "v1"

[[service]]
name = "a"
listen = ["0.0.0.0:21"]
backends = ["10.1.0.1"]

[[service]]
name = "b"
listen = ["0.0.0.0:22"]
backends = ["10.1.0.1"]
deny = ["192.0.2.1"]
client_rate = "1/s"
ban_time = "1h"
send_proxy = "off"

[[service]]
name = "dns"
protocol = "udp"
listen = ["0.0.0.0:53"]
backends = ["10.1.0.1:53"]
)",
                                                                         {{"DIR", dir}}));
  ASSERT_EQ(services.size(), 3u);
  const admission::AdmissionOptions& a = services[0].admission;
  EXPECT_EQ(Names(a.deny), (std::vector<std::string>{"10.0.0.0/8", "198.51.100.0/24"}));
  EXPECT_DOUBLE_EQ(a.client.rate, 20.0);
  EXPECT_EQ(a.client.ban_after, 3u);
  EXPECT_EQ(a.send_proxy, SendProxy::kV1);
  // b's own deny replaces [defaults]' deny; deny_file is another key, still inherited.
  const admission::AdmissionOptions& b = services[1].admission;
  EXPECT_EQ(Names(b.deny), (std::vector<std::string>{"192.0.2.1/32", "198.51.100.0/24"}));
  EXPECT_DOUBLE_EQ(b.client.rate, 1.0);
  EXPECT_EQ(b.client.ban_after, 3u);  // needs client_rate: b's own satisfies it
  EXPECT_EQ(b.client.ban_time, absl::Hours(1));
  EXPECT_EQ(b.send_proxy, SendProxy::kOff);
  // A UDP service takes the access list and limits, but not the TCP-only PROXY keys.
  const admission::AdmissionOptions& dns = services[2].admission;
  EXPECT_EQ(Names(dns.deny), Names(a.deny));
  EXPECT_DOUBLE_EQ(dns.client.rate, 20.0);
  EXPECT_EQ(dns.send_proxy, SendProxy::kOff);
}

TEST(AdmissionKeysTest, FilesAreRelativeToTheConfigFile) {
  const std::string dir = TempDir("relative");
  mkdir((dir + "/lists").c_str(), 0755);
  Write(dir + "/lists/deny.txt", "# two\n192.0.2.1\n\n192.0.2.2  # and a comment\n");
  Write(dir + "/allow.txt", "10.0.0.0/8\n");
  Write(dir + "/l4lb.toml",
        kOkService + "deny_file = \"lists/deny.txt\"\nallow_file = \"allow.txt\"\n");
  // Not from the working directory: a file of that name there must not be read.
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfig(dir + "/l4lb.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ(Names((*services)[0].admission.deny),
            (std::vector<std::string>{"192.0.2.1/32", "192.0.2.2/32"}));
  EXPECT_EQ(Names((*services)[0].admission.allow), std::vector<std::string>{"10.0.0.0/8"});
}

TEST(AdmissionKeysTest, FileErrorsNameTheFile) {
  const std::string dir = TempDir("file_errors");
  Write(dir + "/bad.txt", "192.0.2.1\n# fine so far\n10.0.0.1/8\n");
  Write(dir + "/empty.txt", "# nobody yet\n\n");
  const std::string conf = dir + "/l4lb.toml";
  EXPECT_EQ(
      Error(kOkService + "deny_file = \"missing.txt\"\n", conf),
      absl::StrCat(conf, ":4:13: deny_file: ", dir, "/missing.txt: No such file or directory"));
  EXPECT_EQ(Error(kOkService + "deny_file = \"bad.txt\"\n", conf),
            absl::StrCat(conf, ":4:13: deny_file: ", dir,
                         "/bad.txt:3: \"10.0.0.1/8\": host bits set past /8 (did you mean /32?)"));
  // A directory opens fine and reads nothing: it must not pass for an empty list.
  EXPECT_EQ(Error(kOkService + "deny_file = \".\"\n", conf),
            absl::StrCat(conf, ":4:13: deny_file: ", dir, "/.: Is a directory"));
  EXPECT_EQ(Error(kOkService + "allow_file = \"empty.txt\"\n", conf),
            absl::StrCat(conf,
                         ":4:14: allow_file: \"empty.txt\": no addresses, which would let "
                         "everyone in"));
  // An empty deny file is only an empty list (a list that has not grown yet).
  EXPECT_EQ(Error(kOkService + "deny_file = \"empty.txt\"\n", conf), "loaded fine");
}

TEST(AdmissionKeysTest, KeysAreKnownToTheLoader) {
  for (const char* key : AdmissionKeys::Keys()) {
    // Wrong type on purpose: the message proves the key was read, not refused as unknown.
    const std::string error = Error(kOkService + absl::StrCat(key, " = true\n"));
    EXPECT_EQ(error.find("unknown key"), std::string::npos) << error;
    EXPECT_NE(error, "loaded fine") << key;
  }
  EXPECT_EQ(AdmissionKeys::Keys().size(), 18u);
}

TEST(AdmissionKeysTest, FtpFarmAccessExampleIsWhatItsCommentsSay) {
  absl::StatusOr<std::vector<Server::Service>> services =
      LoadConfig("conf/examples/ftp_farm_access.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 1u);
  const admission::AdmissionOptions& a = (*services)[0].admission;
  EXPECT_EQ(Names(a.deny), (std::vector<std::string>{"198.51.100.23/32", "203.0.113.0/24",
                                                     "2001:db8:bad::/48"}));  // deny.txt
  EXPECT_TRUE(a.allow.empty());
  EXPECT_EQ(a.client.max_connections, 8u);
  EXPECT_DOUBLE_EQ(a.client.rate, 20.0 / 60);
  EXPECT_DOUBLE_EQ(a.client.burst, 10);
  EXPECT_EQ(a.client.ban_after, 5u);
  EXPECT_EQ(a.client.ban_window, absl::Minutes(1));
  EXPECT_EQ(a.client.ban_time, absl::Minutes(15));
  EXPECT_EQ(a.client.prefix_v4, 32);
  EXPECT_EQ(a.client.prefix_v6, 64);
  EXPECT_EQ(a.client.bandwidth, 50u << 20);
  EXPECT_EQ(a.send_proxy, SendProxy::kOff);
}

struct BadKey {
  const char* what;
  std::string text;
  std::string want;  // the whole message: FILE:LINE:COL: what is wrong
};

class BadKeyTest : public ::testing::TestWithParam<BadKey> {};

TEST_P(BadKeyTest, OneErrorAtTheRightPlace) { EXPECT_EQ(Error(GetParam().text), GetParam().want); }

INSTANTIATE_TEST_SUITE_P(
    Errors, BadKeyTest,
    ::testing::Values(
        BadKey{"allow_not_array", kOkService + "allow = \"10.0.0.0/8\"\n",
               "t.toml:4:9: allow: want an array like [\"10.0.0.0/8\"], got a string"},
        BadKey{"deny_entry_not_string", kOkService + "deny = [\"10.0.0.0/8\", 10]\n",
               "t.toml:4:23: deny: want strings like \"10.0.0.0/8\", got an integer"},
        BadKey{"deny_host_bits", kOkService + "deny = [\"10.0.0.1/8\"]\n",
               "t.toml:4:9: deny: \"10.0.0.1/8\": host bits set past /8 (did you mean /32?)"},
        BadKey{"deny_in_defaults", "[defaults]\ndeny = [\"ten\"]\n" + kOkService,
               "t.toml:2:9: deny: \"ten\": not an IPv4 or IPv6 address"},
        BadKey{"allow_empty", kOkService + "allow = []\n",
               "t.toml:4:9: allow: empty, which would let everyone in; write allow = "
               "[\"0.0.0.0/0\", \"::/0\"] to mean that"},
        BadKey{"deny_file_not_string", kOkService + "deny_file = [\"deny.txt\"]\n",
               "t.toml:4:13: deny_file: want a string, got an array"},
        BadKey{"deny_file_empty", kOkService + "deny_file = \"\"\n",
               "t.toml:4:13: deny_file: empty; want a file of CIDRs, one a line"},
        BadKey{"max_connections_zero", kOkService + "max_connections = 0\n",
               "t.toml:4:19: max_connections: 0: want 1..10000000"},
        BadKey{"client_max_connections_big", kOkService + "client_max_connections = 1000001\n",
               "t.toml:4:26: client_max_connections: 1000001: want 1..1000000"},
        BadKey{"client_rate_unit", kOkService + "client_rate = \"20/d\"\n",
               "t.toml:4:15: client_rate: \"20/d\": the unit after / must be s, m or h"},
        BadKey{"client_rate_bad", kOkService + "client_rate = \"fast\"\n",
               "t.toml:4:15: client_rate: \"fast\": want a rate like 20/s, 600/m or 3600/h"},
        BadKey{"client_rate_int", kOkService + "client_rate = 20\n",
               "t.toml:4:15: client_rate: want a string, got an integer"},
        BadKey{"client_burst_without_rate", kOkService + "client_burst = 5\n",
               "t.toml:4:16: client_burst: needs client_rate (the burst is the size of the "
               "rate's bucket)"},
        BadKey{"client_burst_zero", kOkService + "client_rate = \"1/s\"\nclient_burst = 0\n",
               "t.toml:5:16: client_burst: 0: want 1..1000000"},
        BadKey{"client_prefix_v4_big",
               kOkService + "client_rate = \"1/s\"\nclient_prefix_v4 = 33\n",
               "t.toml:5:20: client_prefix_v4: 33: want 0..32"},
        BadKey{"client_prefix_v6_big",
               kOkService + "client_max_connections = 2\nclient_prefix_v6 = 129\n",
               "t.toml:5:20: client_prefix_v6: 129: want 0..128"},
        BadKey{"client_prefix_without_limit", kOkService + "client_prefix_v6 = 64\n",
               "t.toml:4:20: client_prefix_v6: needs client_max_connections or client_rate or "
               "client_bandwidth (the "
               "prefix makes one client of a network)"},
        BadKey{"ban_after_without_rate", kOkService + "client_max_connections = 2\nban_after = 5\n",
               "t.toml:5:13: ban_after: needs client_rate (a ban counts refusals by rate)"},
        BadKey{"ban_after_zero", kOkService + "client_rate = \"1/s\"\nban_after = 0\n",
               "t.toml:5:13: ban_after: 0: want 1..1000000"},
        BadKey{"ban_window_without_ban_after",
               kOkService + "client_rate = \"1/s\"\nban_window = \"1m\"\n",
               "t.toml:5:14: ban_window: needs ban_after (the window in which ban_after refusals "
               "ban)"},
        BadKey{"ban_time_without_ban_after",
               "[defaults]\nban_time = \"1h\"\n" + kOkService + "client_rate = \"1/s\"\n",
               "t.toml:2:12: ban_time: needs ban_after (how long a ban lasts)"},
        BadKey{"ban_time_zero",
               kOkService + "client_rate = \"1/s\"\nban_after = 3\nban_time = \"0s\"\n",
               "t.toml:6:12: ban_time: must be above 0"},
        BadKey{"ban_window_bad",
               kOkService + "client_rate = \"1/s\"\nban_after = 3\nban_window = \"a while\"\n",
               "t.toml:6:14: ban_window: \"a while\": want a duration like 500ms, 2s or 5m"},
        BadKey{"client_table_size_small",
               kOkService + "client_rate = \"1/s\"\nclient_table_size = 15\n",
               "t.toml:5:21: client_table_size: 15: want 16..100000000"},
        BadKey{"client_table_size_without_limit", kOkService + "client_table_size = 1000\n",
               "t.toml:4:21: client_table_size: needs client_max_connections or client_rate or "
               "client_bandwidth (the "
               "table holds their per-client state)"},
        BadKey{"client_bandwidth_bad", kOkService + "client_bandwidth = \"10MiB/m\"\n",
               "t.toml:4:20: client_bandwidth: \"10MiB/m\": bytes per second: the unit after / "
               "must be s"},
        BadKey{"client_bandwidth_tiny", kOkService + "client_bandwidth = \"1KB/s\"\n",
               "t.toml:4:20: client_bandwidth: \"1KB/s\": want 4KiB/s to 100GiB/s"},
        BadKey{"client_bandwidth_on_udp", kUdpService + "client_bandwidth = \"1MiB/s\"\n",
               "t.toml:5:20: client_bandwidth: only for protocol = \"tcp\""},
        BadKey{"send_proxy_bad", kOkService + "send_proxy = \"v3\"\n",
               "t.toml:4:14: send_proxy: \"v3\": want v1, v2 or off"},
        BadKey{"send_proxy_bool", kOkService + "send_proxy = true\n",
               "t.toml:4:14: send_proxy: want a string, got a boolean"},
        BadKey{"send_proxy_on_udp", kUdpService + "send_proxy = \"v2\"\n",
               "t.toml:5:14: send_proxy: only for protocol = \"tcp\""},
        BadKey{"accept_proxy_from_on_udp", kUdpService + "accept_proxy_from = [\"10.0.0.1\"]\n",
               "t.toml:5:21: accept_proxy_from: only for protocol = \"tcp\""},
        BadKey{"proxy_timeout_on_udp", kUdpService + "proxy_timeout = \"1s\"\n",
               "t.toml:5:17: proxy_timeout: only for protocol = \"tcp\""},
        BadKey{"accept_proxy_from_bad", kOkService + "accept_proxy_from = [\"::1/129\"]\n",
               "t.toml:4:22: accept_proxy_from: \"::1/129\": prefix length must be 0..128"},
        BadKey{"proxy_timeout_without_accept", kOkService + "proxy_timeout = \"1s\"\n",
               "t.toml:4:17: proxy_timeout: needs accept_proxy_from (it bounds the wait for a "
               "peer's PROXY header)"},
        BadKey{"proxy_timeout_zero",
               kOkService + "accept_proxy_from = [\"10.0.0.1\"]\nproxy_timeout = \"0s\"\n",
               "t.toml:5:17: proxy_timeout: must be above 0"},
        BadKey{"typo_is_unknown", kOkService + "client_rates = \"1/s\"\n",
               "t.toml:4:1: unknown key \"client_rates\" in [[service]]"},
        BadKey{"typo_in_defaults", "[defaults]\nallow_files = \"a.txt\"\n" + kOkService,
               "t.toml:2:1: unknown key \"allow_files\" in [defaults]"}),
    [](const ::testing::TestParamInfo<BadKey>& info) { return info.param.what; });

}  // namespace
}  // namespace l4lb::conf
