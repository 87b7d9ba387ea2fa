// Backends by DNS name end to end: a real dnsmasq on 127.0.0.1 answering from a
// hosts file the test rewrites (SIGHUP), nginx on 127.0.0.2-4, curl as the
// client. A name with two addresses is two backends; a change takes effect
// within the refresh (the new address takes clients, the removed one none, a
// live connection to a kept address goes on); failures keep the last good
// addresses; a name that does not resolve at start is exit 2 naming it.

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/dnsmasq.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"
#include "tests/reload_fixture.h"

namespace l4lb::testing {
namespace {

constexpr char kName[] = "web.l4lb.test";

class DnsBackendsTest : public ReloadTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ReloadTest::SetUp());
    ASSERT_EQ(access("/usr/sbin/dnsmasq", X_OK), 0) << "dnsmasq is missing: run tools/setup.sh";
    hosts_file_ = TempDir() + "/" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".hosts";
    ASSERT_NO_FATAL_FAILURE(WriteHosts({kHosts[0], kHosts[1]}));
    ASSERT_NE(dns_port_ = FreeUdpPortOnAll({"127.0.0.1"}), 0);
    absl::StatusOr<Server> dns = StartDnsmasqHosts("127.0.0.1", dns_port_, hosts_file_, kName);
    ASSERT_TRUE(dns.ok()) << dns.status();
    dnsmasq_ = *std::move(dns);
    ASSERT_NE(nginx_port_ = FreePortOnAll(kHosts), 0);
    ASSERT_NO_FATAL_FAILURE(StartNginxOnHosts(nginx_port_, &nginx_));
    ASSERT_NE(port_ = FreePortOnAll({"127.0.0.1"}), 0);
  }

  // kName's addresses, then dnsmasq told to read them (SIGHUP to its own PID).
  void WriteHosts(const std::vector<std::string>& addresses, bool reread = false) {
    std::string text = "# rewritten by dns_backends_e2e_test\n";
    for (const std::string& a : addresses) absl::StrAppend(&text, a, " ", kName, "\n");
    const std::string tmp = hosts_file_ + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    ASSERT_EQ(rename(tmp.c_str(), hosts_file_.c_str()), 0);
    if (reread) {
      ASSERT_EQ(kill(dnsmasq_.process->pid(), SIGHUP), 0);
    }
  }

  std::string DnsServer() const { return absl::StrCat("127.0.0.1:", dns_port_); }
  std::string Backend(const std::string& host) const {
    return absl::StrCat(host, ":", nginx_port_);
  }

  std::string Config(const std::string& backends) const {
    return absl::StrCat(AdminTable(), "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", port_,
                        "\"]\nbackends = ", backends, "\ndns_refresh = \"1s\"\ndns_servers = [\"",
                        DnsServer(), "\"]\n[service.health]\ninterval = \"300ms\"\n");
  }

  // The web service's backend names in /status, in order.
  std::vector<std::string> BackendNames() const {
    std::vector<std::string> names;
    const nlohmann::json status = Status();
    if (!status.is_object()) return names;
    for (const nlohmann::json& b : status["services"][0]["backends"]) {
      names.push_back(b["name"].get<std::string>());
    }
    return names;
  }
  double DnsRefreshes(const std::string& result) const {
    return Sample(Metrics(), absl::StrCat("l4lb_dns_refreshes_total{result=\"", result, "\"}"));
  }

  std::string hosts_file_;
  uint16_t dns_port_ = 0, nginx_port_ = 0, port_ = 0;
  Server dnsmasq_;
  std::vector<Server> nginx_;
};

TEST_F(DnsBackendsTest, TwoAddressesAreTwoBackendsAndAChangeMovesNewClientsOnly) {
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Config(Array({Backend(kName)}))));
  ASSERT_NO_FATAL_FAILURE(StartL4lb());
  const std::vector<std::string> two = {Backend(kHosts[0]), Backend(kHosts[1])};
  ASSERT_EQ(BackendNames(), two) << Status().dump(2);
  EXPECT_EQ(BackendStatus("web", two[0])["dns_name"], kName);
  std::map<std::string, int> before = Spread(port_, 1, 30);
  EXPECT_GT(before[kHosts[0] + "\n"], 0) << Show(before);
  EXPECT_GT(before[kHosts[1] + "\n"], 0) << Show(before);
  EXPECT_EQ(before[kHosts[0] + "\n"] + before[kHosts[1] + "\n"], 30) << Show(before);

  // A live connection to the address that stays: half a request now, the rest
  // after the change. Clients of 127.0.0.2 stay on it (Maglev keeps them).
  std::string kept_client;
  for (int c = 1; c <= 30 && kept_client.empty(); ++c) {
    const std::string client = absl::StrCat("127.0.1.", c);
    if (Fetch(port_, client) == kHosts[0] + "\n") kept_client = client;
  }
  ASSERT_FALSE(kept_client.empty());
  const int live = ConnectTcp("127.0.0.1", port_, kept_client);
  ASSERT_GE(live, 0);
  // Closed however the test ends: an open one would hold l4lb's drain.
  const absl::Cleanup close_live = [live] { close(live); };
  ASSERT_TRUE(SendAll(live, "GET / HTTP/1.1\r\nHost: web\r\n"));

  // 127.0.0.3 out, 127.0.0.4 in: published within the refresh (1 s, TTL 1 s).
  ASSERT_NO_FATAL_FAILURE(WriteHosts({kHosts[0], kHosts[2]}, /*reread=*/true));
  const std::vector<std::string> changed = {Backend(kHosts[0]), Backend(kHosts[2])};
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return BackendNames() == changed; }))
      << Status().dump(2) << l4lb_->Log();
  std::printf("new addresses served %.2f s after dnsmasq's SIGHUP\n",
              absl::ToDoubleSeconds(absl::Now() - t0));
  EXPECT_TRUE(l4lb_->HasLine(absl::StrCat("dns: ", kName, " (from ", DnsServer(),
                                          ") changed: ", kHosts[0], ", ", kHosts[1], " -> "),
                             absl::StrCat(kHosts[0], ", ", kHosts[2])))
      << l4lb_->Log();
  EXPECT_GE(DnsRefreshes("changed"), 1) << Metrics();

  const std::map<std::string, int> after = Spread(port_, 2, 30);
  EXPECT_EQ(after.count(kHosts[1] + "\n"), 0u) << "the removed address: " << Show(after);
  EXPECT_GT(after.count(kHosts[2] + "\n"), 0u) << "the new address: " << Show(after);
  EXPECT_EQ(after.count(""), 0u) << "every client served: " << Show(after);

  SetRecvTimeout(live, absl::Seconds(5));
  ASSERT_TRUE(SendAll(live, "Connection: close\r\n\r\n"));
  const std::string reply = ReadToEof(live);
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\n" + kHosts[0] + "\n"))
      << "the same backend: " << reply;
}

// Without --config too (Republish builds from the flags' options), and what
// fails afterwards keeps the last good addresses: the name gone from the
// server, then the server gone.
TEST_F(DnsBackendsTest, FailuresKeepTheLastGoodAddresses) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
      L4lb::Start({absl::StrCat("--listen=127.0.0.1:", port_), "--backends=" + Backend(kName),
                   "--dns_servers=" + DnsServer(), "--dns_refresh=1s", "--threads=2",
                   absl::StrCat("--admin=127.0.0.1:", admin_)});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  l4lb_ = *std::move(l4lb);
  const std::vector<std::string> two = {Backend(kHosts[0]), Backend(kHosts[1])};
  ASSERT_EQ(BackendNames(), two);

  ASSERT_NO_FATAL_FAILURE(WriteHosts({}, /*reread=*/true));
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return DnsRefreshes("failure") >= 1; })) << Metrics();
  EXPECT_TRUE(l4lb_->HasLine(absl::StrCat("dns: ", kName),
                             absl::StrCat("keeping the last good addresses of ", kName, " (from ",
                                          DnsServer(), "): ", kHosts[0], ", ", kHosts[1])))
      << l4lb_->Log();
  const double failures = DnsRefreshes("failure");

  dnsmasq_.process->Stop(SIGKILL, absl::Seconds(5));
  ASSERT_TRUE(WaitFor(absl::Seconds(15), [&] { return DnsRefreshes("failure") > failures; }))
      << Metrics();
  EXPECT_EQ(BackendNames(), two);
  const std::map<std::string, int> served = Spread(port_, 3, 20);
  EXPECT_EQ(served.count(""), 0u) << Show(served);
  EXPECT_EQ(served.size(), 2u) << "both addresses still take clients: " << Show(served);
  // Once per name and refresh, not per connection: at most one line a second.
  const int lines = l4lb_->CountLines(absl::StrCat("dns: ", kName), "keeping the last good");
  EXPECT_LE(lines, absl::ToInt64Seconds(absl::Now() - start) + 1) << l4lb_->Log();
}

// A name that does not resolve at start stops l4lb before it binds anything:
// exit 2, one line naming it and where it was written.
TEST_F(DnsBackendsTest, UnresolvableNameAtStartIsExitTwoNamingIt) {
  ASSERT_NO_FATAL_FAILURE(WriteConfig(
      Config(Array({Backend(kName), absl::StrCat("nowhere.l4lb.test:", nginx_port_)}))));
  const CommandResult file = RunCommand({L4lbBinary(), "--config=" + config_}, absl::Seconds(30));
  EXPECT_EQ(file.exit_code, 2) << file.err;
  EXPECT_TRUE(absl::StrContains(
      file.err,
      absl::StrCat("l4lb: ", config_, ":7:", 13 + (Backend(kName).size() + 2) + 2,
                   ": backends: \"nowhere.l4lb.test:", nginx_port_, "\": nowhere.l4lb.test: ")))
      << file.err;

  const CommandResult flags = RunCommand(
      {L4lbBinary(), absl::StrCat("--listen=127.0.0.1:", port_),
       absl::StrCat("--backends=nowhere.l4lb.test:", nginx_port_), "--dns_servers=" + DnsServer()},
      absl::Seconds(30));
  EXPECT_EQ(flags.exit_code, 2) << flags.err;
  EXPECT_TRUE(absl::StrContains(flags.err, absl::StrCat("l4lb: --backends: \"nowhere.l4lb.test:",
                                                        nginx_port_, "\": nowhere.l4lb.test: ")))
      << flags.err;
  EXPECT_LT(ConnectTcp("127.0.0.1", port_), 0) << "nothing was bound";

  // At a reload the same name is the reload's error; the running config stays.
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Config(Array({Backend(kName)}))));
  ASSERT_NO_FATAL_FAILURE(StartL4lb());
  ASSERT_NO_FATAL_FAILURE(WriteConfig(
      Config(Array({Backend(kName), absl::StrCat("nowhere.l4lb.test:", nginx_port_)}))));
  const Reload reload = Sighup();
  EXPECT_FALSE(reload.success) << reload.text;
  EXPECT_TRUE(absl::StrContains(reload.error, "backends: \"nowhere.l4lb.test:")) << reload.text;
  EXPECT_EQ(BackendNames(), (std::vector<std::string>{Backend(kHosts[0]), Backend(kHosts[1])}));
}

}  // namespace
}  // namespace l4lb::testing
