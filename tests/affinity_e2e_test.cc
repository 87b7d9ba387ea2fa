// Affinity end to end: real vsftpd backends behind l4lb with a raw FTP client, so
// the test controls exactly when the data connection is opened. With
// --hash_key=src_ip_port every connection of a client hashes differently, so
// only the affinity table keeps a client's passive data connection on its
// control connection's backend; a backend taken down and brought back in
// between must not change that.

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// One FTP reply (the last line of a multi-line one), or "" on timeout/EOF.
std::string Reply(int fd) {
  std::string all;
  char c;
  while (recv(fd, &c, 1, 0) == 1) {
    all.push_back(c);
    if (c != '\n') continue;
    const size_t start = all.rfind('\n', all.size() - 2);
    const std::string line = all.substr(start == std::string::npos ? 0 : start + 1);
    if (line.size() >= 4 && line[3] == ' ') return line;
  }
  return "";
}

std::string Command(int fd, const std::string& command) {
  if (!SendAll(fd, command + "\r\n")) return "";
  return Reply(fd);
}

// The port of a "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)." reply, or 0.
uint16_t PassivePort(const std::string& reply) {
  const size_t open = reply.find('('), close = reply.find(')');
  if (open == std::string::npos || close == std::string::npos) return 0;
  std::vector<std::string> parts = absl::StrSplit(reply.substr(open + 1, close - open - 1), ',');
  int p1, p2;
  if (parts.size() != 6 || !absl::SimpleAtoi(parts[4], &p1) || !absl::SimpleAtoi(parts[5], &p2)) {
    return 0;
  }
  return static_cast<uint16_t>(p1 * 256 + p2);
}

class FtpAffinity : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePortOnAll(kHosts);
    ASSERT_NE(port_, 0);
    pasv_ = FreePortRange({"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}, 10);
    ASSERT_NE(pasv_, 0);
    for (const std::string& host : kHosts) {
      VsftpdOptions options;
      options.banner = "ftp-" + host;
      options.pasv_min_port = pasv_;
      options.pasv_max_port = pasv_ + 9;
      options.pasv_address = "127.0.0.1";
      absl::StatusOr<Server> s = StartVsftpd(host, port_, options);
      ASSERT_TRUE(s.ok()) << s.status();
      ftp_.push_back(*std::move(s));
    }
    // Only now: before vsftpd runs, the control port is free too.
    health_port_ = FreePortOnAll(kHosts);
    ASSERT_NE(health_port_, 0);
    for (size_t i = 0; i < kHosts.size(); ++i) {
      health_.push_back(-1);
      ASSERT_NO_FATAL_FAILURE(SetHealthy(i, true));
    }
  }
  void TearDown() override {
    for (int fd : health_) {
      if (fd >= 0) close(fd);
    }
  }
  // The health checks probe a port of ours on each backend host: closing it
  // takes the backend DOWN while its FTP sessions go on.
  void SetHealthy(size_t i, bool up) {
    if (!up) {
      close(health_[i]);
      health_[i] = -1;
      return;
    }
    uint16_t port = health_port_;
    health_[i] = ListenTcp(kHosts[i], &port);
    ASSERT_GE(health_[i], 0);
  }
  std::unique_ptr<L4lb> StartL4lb(const std::string& affinity_ttl) {
    return Start({
        absl::StrCat("--listen=127.0.0.1:", port_, ",127.0.0.1:", pasv_, "-", pasv_ + 9),
        "--backends=127.0.0.2,127.0.0.3,127.0.0.4",
        "--hash_key=src_ip_port",
        "--affinity_ttl=" + affinity_ttl,
        // A refused data connection must not be retried on the other backends
        // (that would find the session by luck).
        "--connect_retries=0",
        "--health_check=tcp",
        absl::StrCat("--health_port=", health_port_),
        "--health_interval=100ms",
        "--health_timeout=100ms",
        "--health_rise=1",
        "--health_fall=1",
        "--health_passive=false",
    });
  }
  std::unique_ptr<L4lb> Start(std::vector<std::string> flags) {
    // A data connection that missed its session leaves that session's vsftpd
    // waiting for one (accept_timeout, 60 s) without reading its control
    // connection: the client's close reaches it only then. l4lb drains such a
    // connection for the default 30 s, past the harness's 10 s wait for a clean
    // exit; cut it sooner (the drain timeout still exits 0).
    flags.push_back("--drain_timeout=2s");
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
    EXPECT_TRUE(l4lb.ok()) << l4lb.status();
    if (!l4lb.ok()) return nullptr;
    // Every backend passed its first checks: the DOWN/UP lines the test counts
    // are its own.
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_EQ((*l4lb)->CountLines("backend", "is DOWN"), 0) << (*l4lb)->Log();
    return *std::move(l4lb);
  }

  // Logs in from `source` through l4lb: the control fd and the index of the
  // backend whose banner answered, or -1.
  int Login(const std::string& source, int* backend) {
    const int fd = ConnectTcp("127.0.0.1", port_, source);
    if (fd < 0) return -1;
    // Short: a data connection that missed its session shows as a RETR timeout.
    SetRecvTimeout(fd, absl::Seconds(2));
    const std::string banner = Reply(fd);
    *backend = -1;
    for (size_t i = 0; i < kHosts.size(); ++i) {
      if (absl::StrContains(banner, "ftp-" + kHosts[i])) *backend = static_cast<int>(i);
    }
    // The harness's vsftpd asks no password of anonymous (230 at once).
    std::string reply = Command(fd, "USER anonymous");
    if (absl::StartsWith(reply, "331")) reply = Command(fd, "PASS x@");
    EXPECT_TRUE(absl::StartsWith(reply, "230")) << banner << reply;
    return fd;
  }

  // PASV + RETR of the backend's who file over a data connection from `source`:
  // its content, or "" when the data connection reached no waiting session.
  std::string Retrieve(int control, const std::string& source) {
    const std::string pasv = Command(control, "PASV");
    const uint16_t port = PassivePort(pasv);
    if (port == 0) {
      ADD_FAILURE() << "PASV: " << pasv;
      return "";
    }
    const int data = ConnectTcp("127.0.0.1", port, source);
    if (data < 0) return "";
    SetRecvTimeout(data, absl::Seconds(3));
    std::string content;
    // No 150 (a timeout) when the data connection reached another backend.
    if (absl::StartsWith(Command(control, "RETR who.txt"), "150")) {
      content = ReadToEof(data);
      Reply(control);  // 226
    }
    close(data);
    return content;
  }

  uint16_t port_ = 0, pasv_ = 0, health_port_ = 0;
  std::vector<Server> ftp_;
  std::vector<int> health_;
};

TEST_F(FtpAffinity, DataConnectionReachesTheControlBackendAcrossADownAndUp) {
  for (size_t i = 0; i < kHosts.size(); ++i) {
    std::ofstream(ftp_[i].files + "/who.txt") << "served by " << kHosts[i];
  }
  auto l4lb = StartL4lb("60s");
  ASSERT_NE(l4lb, nullptr);
  for (int client = 1; client <= 6; ++client) {
    SCOPED_TRACE(client);
    const std::string source = absl::StrCat("127.0.3.", client);
    int backend;
    const int control = Login(source, &backend);
    ASSERT_GE(control, 0);
    ASSERT_GE(backend, 0);
    const std::string name = "backend " + kHosts[backend];
    const int downs = l4lb->CountLines(name, "is DOWN");
    const int ups = l4lb->CountLines(name, "is UP");
    SetHealthy(backend, false);
    ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] {
      return l4lb->CountLines(name, "is DOWN") > downs;
    })) << l4lb->Log();
    ASSERT_NO_FATAL_FAILURE(SetHealthy(backend, true));
    ASSERT_TRUE(WaitFor(absl::Seconds(3), [&] { return l4lb->CountLines(name, "is UP") > ups; }))
        << l4lb->Log();
    EXPECT_EQ(Retrieve(control, source), "served by " + kHosts[backend]) << l4lb->Log();
    // And a second data connection of the same session, while the first is gone.
    EXPECT_EQ(Retrieve(control, source), "served by " + kHosts[backend]);
    close(control);
  }
}

// The same clients without affinity: src_ip_port hashing scatters the data
// connections, so some miss their session. This is what the test above guards.
TEST_F(FtpAffinity, WithoutAffinityDataConnectionsScatter) {
  for (size_t i = 0; i < kHosts.size(); ++i) {
    std::ofstream(ftp_[i].files + "/who.txt") << "served by " << kHosts[i];
  }
  auto l4lb = StartL4lb("0");
  ASSERT_NE(l4lb, nullptr);
  int missed = 0;
  for (int client = 1; client <= 6; ++client) {
    int backend;
    const std::string source = absl::StrCat("127.0.3.", client);
    const int control = Login(source, &backend);
    ASSERT_GE(control, 0);
    missed += Retrieve(control, source) != "served by " + kHosts[backend];
    close(control);
  }
  EXPECT_GT(missed, 0) << "without affinity every data connection still found its session";
}

// Two services of one affinity group, as an operator may write them: the control
// port with ported backends, the passive range with port-less ones in another
// order. Their Maglev tables are seeded by host (backend/host_key.h), so they
// agree with or without the group: every data connection finds its session by
// src_ip hashing alone, as it must across l4lb instances, which share no pins.
// Once the lists really differ (the passive one weights a host 3) the tables
// disagree for some clients, and the group's shared pins keep each on the
// control connection's backend.
TEST_F(FtpAffinity, ServicesOfOneGroupShareThePinAcrossDifferentBackendLists) {
  for (size_t i = 0; i < kHosts.size(); ++i) {
    std::ofstream(ftp_[i].files + "/who.txt") << "served by " << kHosts[i];
  }
  struct Case {
    bool grouped;
    bool weighted;  // the passive service weights 127.0.0.4 3, the control one 1
    bool expect_misses;
  };
  for (const Case& c : {Case{true, false, false}, Case{false, false, false},
                        Case{true, true, false}, Case{false, true, true}}) {
    SCOPED_TRACE(absl::StrCat(c.grouped ? "grouped" : "not grouped",
                              c.weighted ? ", weighted" : ", same hosts"));
    const std::string config = absl::StrCat(TempDir(), "/ftp-", c.grouped, c.weighted, ".toml");
    std::ofstream(config) << absl::StrCat(
        "[defaults]\n", c.grouped ? "affinity_group = \"ftp\"\naffinity_ttl = \"60s\"\n" : "",
        "connect_retries = 0\n",  // a refused data connection must not find its session by luck
        "[defaults.health]\ncheck = \"none\"\n",
        "[[service]]\nname = \"control\"\nlisten = [\"127.0.0.1:", port_, "\"]\n",
        "backends = [\"127.0.0.2:", port_, "\", \"127.0.0.3:", port_, "\", \"127.0.0.4:", port_,
        "\"]\n", "[[service]]\nname = \"passive\"\nlisten = [\"127.0.0.1:", pasv_, "-", pasv_ + 9,
        "\"]\n", "backends = [",
        c.weighted ? "{ address = \"127.0.0.4\", weight = 3 }" : "\"127.0.0.4\"",
        ", \"127.0.0.3\", \"127.0.0.2\"]\n");
    auto l4lb = Start({"--config=" + config});
    ASSERT_NE(l4lb, nullptr);
    int missed = 0;
    for (int client = 1; client <= 8; ++client) {
      const std::string source = absl::StrCat("127.0.4.", client);
      int backend;
      const int control = Login(source, &backend);
      ASSERT_GE(control, 0);
      ASSERT_GE(backend, 0);
      missed += Retrieve(control, source) != "served by " + kHosts[backend];
      close(control);
    }
    if (c.expect_misses) {
      EXPECT_GT(missed, 0) << "the two services' tables agreed for every client: the grouped "
                              "case proves nothing";
    } else {
      EXPECT_EQ(missed, 0) << l4lb->Log();
    }
  }
}

}  // namespace
}  // namespace l4lb::testing
