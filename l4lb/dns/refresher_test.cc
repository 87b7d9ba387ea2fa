#include "l4lb/dns/refresher.h"

#include <map>
#include <mutex>

#include "gtest/gtest.h"

#include "l4lb/backend/backend_set.h"

namespace l4lb::dns {
namespace {

net::SocketAddress Ip(const std::string& text) { return *net::SocketAddress::Parse(text + ":0"); }

// A DNS the test rewrites: host -> answer, and what was asked.
class FakeDns {
 public:
  void Set(const std::string& host, absl::StatusOr<Resolver::Answer> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.insert_or_assign(host, std::move(answer));
  }
  Refresher::Resolve resolve() {
    return [this](const std::vector<net::SocketAddress>& servers,
                  const std::string& host) -> absl::StatusOr<Resolver::Answer> {
      std::lock_guard<std::mutex> lock(mu_);
      ++asked_[host];
      servers_ = servers;
      const auto it = answers_.find(host);
      if (it == answers_.end()) return absl::NotFoundError(host + ": no such name");
      return it->second;
    };
  }
  int asked(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    return asked_[host];
  }
  std::vector<net::SocketAddress> servers() {
    std::lock_guard<std::mutex> lock(mu_);
    return servers_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, absl::StatusOr<Resolver::Answer>> answers_;
  std::map<std::string, int> asked_;
  std::vector<net::SocketAddress> servers_;
};

Resolver::Answer Answer(std::vector<std::string> ips, absl::Duration ttl = absl::Minutes(5)) {
  Resolver::Answer a;
  for (const std::string& ip : ips) a.addresses.push_back(Ip(ip));
  a.ttl = ttl;
  return a;
}

Server::Options OneService(const std::string& backends,
                           absl::Duration refresh = absl::Seconds(30)) {
  Server::Options options;
  Server::Service& s = options.services.emplace_back();
  s.name = "ftp";
  s.backends = *backend::ParseBackendList(backends);
  for (backend::BackendSpec& b : s.backends) b.origin = "t.toml:3:12: backends";
  s.dns_refresh = refresh;
  return options;
}

std::vector<std::string> Names(const Server::Options& options) {
  std::vector<std::string> out;
  for (const backend::BackendSpec& b : options.services[0].backends) out.push_back(b.name);
  return out;
}

TEST(RefresherTest, PrepareExpandsNamesAndNamesTheOneThatFails) {
  FakeDns dns;
  dns.Set("ftp.test", Answer({"10.0.0.2", "10.0.0.1"}));
  Refresher refresher({.resolve = dns.resolve()});
  Server::Options options = OneService("10.0.0.9:21,ftp.test:21");
  options.services[0].dns_servers = {*net::SocketAddress::Parse("127.0.0.1:5353")};
  ASSERT_TRUE(refresher.Prepare(&options).ok());
  EXPECT_EQ(Names(options),
            (std::vector<std::string>{"10.0.0.9:21", "10.0.0.1:21", "10.0.0.2:21"}));
  ASSERT_EQ(dns.servers().size(), 1u);
  EXPECT_EQ(dns.servers()[0].ToString(), "127.0.0.1:5353") << "the service's dns_servers";

  // Known names come from the last answer: no query at a second Prepare.
  Server::Options again = OneService("10.0.0.9:21,ftp.test:21");
  again.services[0].dns_servers = options.services[0].dns_servers;
  ASSERT_TRUE(refresher.Prepare(&again).ok());
  EXPECT_EQ(dns.asked("ftp.test"), 1);

  Server::Options bad = OneService("ftp.test:21,nowhere.test:21");
  const absl::Status st = refresher.Prepare(&bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "t.toml:3:12: backends: \"nowhere.test:21\": nowhere.test: no such name");
}

// A refresh that finds other addresses reports a change and the next Prepare
// gives them; one that fails keeps the last good ones; each is counted.
TEST(RefresherTest, ChangeIsReportedAndFailuresKeepTheLastGoodAddresses) {
  FakeDns dns;
  dns.Set("ftp.test", Answer({"10.0.0.1", "10.0.0.2"}));
  Refresher refresher({.resolve = dns.resolve()});
  Server::Options options = OneService("ftp.test:21");
  ASSERT_TRUE(refresher.Prepare(&options).ok());
  const absl::Time t0 = absl::Now();
  EXPECT_FALSE(refresher.RefreshDue(t0)) << "nothing due yet";
  EXPECT_EQ(dns.asked("ftp.test"), 1);

  dns.Set("ftp.test", Answer({"10.0.0.2", "10.0.0.1"}));  // same set, rotated
  EXPECT_FALSE(refresher.RefreshDue(t0 + absl::Seconds(31)));
  dns.Set("ftp.test", Answer({"10.0.0.3", "10.0.0.2"}));
  EXPECT_TRUE(refresher.RefreshDue(t0 + absl::Seconds(62)));
  Server::Options next = OneService("ftp.test:21");
  ASSERT_TRUE(refresher.Prepare(&next).ok());
  EXPECT_EQ(Names(next), (std::vector<std::string>{"10.0.0.2:21", "10.0.0.3:21"}));

  dns.Set("ftp.test", absl::NotFoundError("ftp.test: no such name"));
  EXPECT_FALSE(refresher.RefreshDue(t0 + absl::Seconds(93)));
  dns.Set("ftp.test", absl::UnavailableError("ftp.test: no answer"));
  EXPECT_FALSE(refresher.RefreshDue(t0 + absl::Seconds(124)));
  Server::Options kept = OneService("ftp.test:21");
  ASSERT_TRUE(refresher.Prepare(&kept).ok());
  EXPECT_EQ(Names(kept), Names(next)) << "the last good addresses";
  const Refresher::Counts c = refresher.counts();
  EXPECT_EQ(c.unchanged, 1u);
  EXPECT_EQ(c.changed, 1u);
  EXPECT_EQ(c.failure, 2u);
}

// Due: dns_refresh, or the TTL if shorter, but never below the floor (TTL 0).
TEST(RefresherTest, TtlShortensTheRefreshDownToTheFloor) {
  FakeDns dns;
  dns.Set("short.test", Answer({"10.0.0.1"}, absl::Seconds(5)));
  dns.Set("zero.test", Answer({"10.0.0.2"}, absl::ZeroDuration()));
  dns.Set("long.test", Answer({"10.0.0.3"}, absl::Hours(1)));
  Refresher refresher({.resolve = dns.resolve(), .ttl_floor = absl::Seconds(1)});
  for (const char* name : {"short.test:80", "zero.test:80", "long.test:80"}) {
    Server::Options options = OneService(name, absl::Seconds(30));
    const absl::Time before = absl::Now();
    ASSERT_TRUE(refresher.Prepare(&options).ok());
    const absl::Duration in = refresher.NextDue() - before;
    const absl::Duration want = name[0] == 's'   ? absl::Seconds(5)
                                : name[0] == 'z' ? absl::Seconds(1)
                                                 : absl::Seconds(30);
    EXPECT_GE(in, want) << name;
    EXPECT_LT(in, want + absl::Seconds(1)) << name;
  }
}

// The thread: a change runs `changed`; one it could not apply runs it again
// after the next pass.
TEST(RefresherTest, ThreadCallsChangedUntilApplied) {
  FakeDns dns;
  dns.Set("ftp.test", Answer({"10.0.0.1"}, absl::ZeroDuration()));
  Refresher refresher({.resolve = dns.resolve(), .ttl_floor = absl::Milliseconds(20)});
  Server::Options options = OneService("ftp.test:21");
  ASSERT_TRUE(refresher.Prepare(&options).ok());
  std::mutex mu;
  int calls = 0;
  refresher.Start([&] {
    std::lock_guard<std::mutex> lock(mu);
    return ++calls >= 2;  // the first is "not applied"
  });
  dns.Set("ftp.test", Answer({"10.0.0.2"}, absl::ZeroDuration()));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (calls >= 2) break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::SleepFor(absl::Milliseconds(100));  // more passes: no more calls once applied
  refresher.Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(refresher.counts().changed, 1u);
  EXPECT_GE(refresher.counts().unchanged, 2u) << "passes every 20 ms";
}

}  // namespace
}  // namespace l4lb::dns
