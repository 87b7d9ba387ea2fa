// The built l4lb in front of three real nginx servers (127.0.0.2-4, Debian's
// nginx), driven by real curl from many source addresses.

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr char kNginx[] = "/usr/sbin/nginx";
const std::vector<std::string> kBackendHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// nginx on `host` serving "backend <host>" at / and a 1 MiB file of its own at /big.
absl::StatusOr<Server> StartBackend(const std::string& host, uint16_t port) {
  absl::StatusOr<Server> nginx = StartNginx(host, port, absl::StrCat("backend ", host, "\n"));
  if (!nginx.ok()) return nginx;
  std::string big;
  for (int i = 0; big.size() < (1 << 20); ++i) big += absl::StrCat(host, " line ", i, "\n");
  std::ofstream(nginx->files + "/big", std::ios::trunc) << big;
  return nginx;
}

class NginxE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kNginx, X_OK), 0) << "nginx is missing: run tools/setup.sh";
    ASSERT_EQ(RunCommand({"curl", "--version"}, absl::Seconds(5)).exit_code, 0)
        << "curl is missing: run tools/setup.sh";
    port_ = FreePortOnAll(kBackendHosts);
    ASSERT_NE(port_, 0);
    for (const std::string& host : kBackendHosts) {
      absl::StatusOr<Server> nginx = StartBackend(host, port_);
      ASSERT_TRUE(nginx.ok()) << nginx.status();
      nginx_.push_back(*std::move(nginx));
    }
  }

  std::string BackendsFlag() const {
    std::string flag = "--backends=";
    for (const std::string& host : kBackendHosts) {
      absl::StrAppend(&flag, flag.back() == '=' ? "" : ",", host, ":", port_);
    }
    return flag;
  }

  // curl from `source` through l4lb's `port`: the body, or "" on failure.
  static std::string Curl(const std::string& source, uint16_t port, const std::string& path) {
    const CommandResult r = RunCommand({"curl", "-sS", "--max-time", "10", "--interface", source,
                                        absl::StrCat("http://127.0.0.1:", port, path)},
                                       absl::Seconds(15));
    EXPECT_EQ(r.exit_code, 0) << "curl from " << source << ": " << r.err;
    return r.out;
  }

  uint16_t port_ = 0;
  std::vector<Server> nginx_;
};

TEST_F(NginxE2eTest, EveryBackendGetsClientsAndEachClientSticksToOne) {
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
      {"--listen=127.0.0.1:0,127.0.0.1:0", "--threads=2", "--hash_key=src_ip", BackendsFlag()});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_EQ((*l4lb)->ports().size(), 2u);

  std::map<std::string, std::string> backend_of;  // client -> body it got
  std::map<std::string, int> clients_per_backend;
  for (int c = 10; c < 40; ++c) {
    const std::string client = absl::StrCat("127.0.0.", c);
    std::set<std::string> answers;
    // Three requests on each of the two listeners: six new connections.
    for (const uint16_t port : (*l4lb)->ports()) {
      for (int i = 0; i < 3; ++i) answers.insert(Curl(client, port, "/"));
    }
    EXPECT_EQ(answers.size(), 1u) << client << " reached several backends";
    backend_of[client] = *answers.begin();
    ++clients_per_backend[*answers.begin()];
  }
  for (const std::string& host : kBackendHosts) {
    const std::string body = absl::StrCat("backend ", host, "\n");
    EXPECT_GT(clients_per_backend[body], 0) << host << " got no client";
    printf("%s: %d of 30 clients\n", host.c_str(), clients_per_backend[body]);
  }
  EXPECT_EQ(clients_per_backend.size(), kBackendHosts.size()) << "unexpected bodies";
}

TEST_F(NginxE2eTest, LargeResponsesArriveIntact) {
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
      L4lb::Start({"--listen=127.0.0.1:0", "--threads=2", BackendsFlag()});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  for (int c = 50; c < 56; ++c) {
    const std::string client = absl::StrCat("127.0.0.", c);
    const std::string body = Curl(client, (*l4lb)->port(), "/big");
    ASSERT_GE(body.size(), size_t{1} << 20) << client;
    // The file is the backend's own: compare with the one that host serves directly.
    const std::string host = body.substr(0, body.find(' '));
    const CommandResult direct = RunCommand(
        {"curl", "-sS", "--max-time", "10", absl::StrCat("http://", host, ":", port_, "/big")},
        absl::Seconds(15));
    EXPECT_TRUE(body == direct.out) << client << ": body differs from " << host << "'s /big";
  }
}

TEST_F(NginxE2eTest, AKilledBackendsClientsMoveToTheOthers) {
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
      L4lb::Start({"--listen=127.0.0.1:0", "--threads=2", BackendsFlag()});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  nginx_[0].process->Stop(SIGKILL, absl::Seconds(5));  // 127.0.0.2 now refuses
  std::set<std::string> bodies;
  for (int c = 10; c < 40; ++c)
    bodies.insert(Curl(absl::StrCat("127.0.0.", c), (*l4lb)->port(), "/"));
  EXPECT_EQ(bodies, (std::set<std::string>{"backend 127.0.0.3\n", "backend 127.0.0.4\n"}));
}

}  // namespace
}  // namespace l4lb::testing
