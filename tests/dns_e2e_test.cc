// DNS through l4lb end to end: real dnsmasq servers on 127.0.0.2-4 behind a
// udp:// listener, queried by real dig: spread, stickiness, health checks.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/dnsmasq.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"
#include "tests/harness/udp_l4lb.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string>& kHosts = kUdpBackendHosts;

// ---------------------------------------------------------------------------
// DNS: dnsmasq on 127.0.0.2-4, one port, each answering who.test TXT with
// "backend 127.0.0.N".

class DnsFarm : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access("/usr/sbin/dnsmasq", X_OK), 0) << "dnsmasq is missing: run tools/setup.sh";
    ASSERT_EQ(RunCommand({"dig", "-v"}, absl::Seconds(5)).exit_code, 0)
        << "dig is missing: run tools/setup.sh";
    port_ = FreeUdpPortOnAll(kHosts);
    ASSERT_NE(port_, 0);
    for (size_t i = 0; i < kHosts.size(); ++i) {
      dnsmasq_.emplace_back();
      ASSERT_NO_FATAL_FAILURE(Restart(i));
    }
  }
  void Restart(size_t i) {
    absl::StatusOr<Server> s = StartDnsmasq(kHosts[i], port_, Txt(i));
    ASSERT_TRUE(s.ok()) << s.status();
    dnsmasq_[i] = *std::move(s);
  }
  static std::string Txt(size_t i) { return "backend " + kHosts[i]; }
  std::string Name(size_t i) const { return absl::StrCat("backend ", kHosts[i], ":", port_); }

  uint16_t port_ = 0;
  std::vector<Server> dnsmasq_;
};

// The harness itself, without l4lb: each dnsmasq answers with its own record,
// and dig reports nothing where nothing listens.
TEST_F(DnsFarm, DigStraightToEachDnsmasqGetsItsOwnRecord) {
  for (size_t i = 0; i < kHosts.size(); ++i) {
    EXPECT_EQ(DigTxt(kHosts[i], port_), Txt(i));
    EXPECT_EQ(DigTxt(kHosts[i], port_, "127.0.1.1"), Txt(i)) << "from another source";
  }
  EXPECT_EQ(DigTxt("127.0.0.5", port_), "");
  dnsmasq_[0].process->Stop(SIGKILL, absl::Seconds(5));
  EXPECT_EQ(DigTxt(kHosts[0], port_), "");
}

TEST_F(DnsFarm, QueriesSpreadOverAllBackendsAndEachClientSticks) {
  std::vector<std::string> flags = kFastChecks;
  flags.insert(flags.end(), {Backends(port_, 3), "--health_check=dns", "--max_responses=1"});
  auto l4lb = StartUdpL4lb(flags);
  ASSERT_NE(l4lb, nullptr);
  const uint16_t port = l4lb->port();
  ASSERT_TRUE(absl::StartsWith(DigTxt("127.0.0.1", port), "backend 127.0.0.")) << l4lb->Log();

  std::map<std::string, std::string> backend_of;  // client IP -> answer
  std::map<std::string, int> clients_per_backend;
  for (int c = 1; c <= 30; ++c) {
    const std::string client = absl::StrCat("127.0.1.", c);
    backend_of[client] = DigTxt("127.0.0.1", port, client);
    ++clients_per_backend[backend_of[client]];
  }
  for (size_t i = 0; i < kHosts.size(); ++i) {
    printf("%s: %d of 30 dig clients\n", kHosts[i].c_str(), clients_per_backend[Txt(i)]);
    EXPECT_GT(clients_per_backend[Txt(i)], 0) << kHosts[i] << " got no client";
  }
  EXPECT_EQ(clients_per_backend.size(), kHosts.size()) << "failed or unexpected answers";

  // One source address, fixed port: three queries, three sessions (max_responses=1
  // ends each at its answer), one backend: the one this IP got from any port.
  for (int c = 1; c <= 5; ++c) {
    const std::string ip = absl::StrCat("127.0.1.", c);
    uint16_t source_port = 0;
    close(BindUdp(ip, &source_port));  // free now; dig binds it
    for (int q = 0; q < 3; ++q) {
      EXPECT_EQ(DigTxt("127.0.0.1", port, absl::StrCat(ip, "#", source_port)), backend_of[ip])
          << ip << "#" << source_port << " query " << q;
    }
    const std::string client = absl::StrCat(ip, ":", source_port);
    EXPECT_TRUE(WaitFor(absl::Seconds(2),
                        [&] {
                          return SessionLines(*l4lb, {client, "max_responses"}).size() == 3;
                        }))
        << client << ": want 3 sessions ended by max_responses\n"
        << l4lb->Log();
  }
  // Probes ran all along: a DNS check accepts dnsmasq's answer (REFUSED for ". NS").
  EXPECT_FALSE(absl::StrContains(l4lb->Log(), "is DOWN")) << l4lb->Log();
}

// A killed dnsmasq is found by the DNS check, and by a TCP check on its TCP port
// (dnsmasq serves both); its clients then get answers from the two others.
TEST_F(DnsFarm, KilledDnsmasqGoesDownAndItsClientsMove) {
  for (const std::string check : {"dns", "tcp"}) {
    SCOPED_TRACE(check);
    std::vector<std::string> flags = kFastChecks;
    flags.insert(flags.end(), {Backends(port_, 3), "--max_responses=1", "--health_check=" + check,
                               absl::StrCat("--health_port=", port_)});
    auto l4lb = StartUdpL4lb(flags);
    ASSERT_NE(l4lb, nullptr);
    std::string on_first;  // a client IP that 127.0.0.2 answers
    for (int c = 1; c <= 30 && on_first.empty(); ++c) {
      const std::string client = absl::StrCat("127.0.1.", c);
      if (DigTxt("127.0.0.1", l4lb->port(), client) == Txt(0)) on_first = client;
    }
    ASSERT_FALSE(on_first.empty()) << "no client reached " << kHosts[0];

    dnsmasq_[0].process->Stop(SIGKILL, absl::Seconds(5));
    const std::optional<absl::Duration> took = WaitForDown(*l4lb, Name(0));
    ASSERT_TRUE(took.has_value()) << l4lb->Log();
    printf("%s check: DOWN %s after the kill\n", check.c_str(),
           absl::FormatDuration(*took).c_str());
    EXPECT_LE(*took, kDownWithin);

    const std::string moved = DigTxt("127.0.0.1", l4lb->port(), on_first);
    EXPECT_TRUE(moved == Txt(1) || moved == Txt(2)) << on_first << " got \"" << moved << "\"";
    std::map<std::string, int> after;
    for (int c = 1; c <= 30; ++c) {
      ++after[DigTxt("127.0.0.1", l4lb->port(), absl::StrCat("127.0.1.", c))];
    }
    EXPECT_EQ(after.count(""), 0u) << after[""] << " queries unanswered";
    EXPECT_EQ(after.count(Txt(0)), 0u);
    ASSERT_NO_FATAL_FAILURE(Restart(0));
  }
}

}  // namespace
}  // namespace l4lb::testing
