// l4lb in front of an SFTP farm: three real sshd servers (127.0.0.2-4) on
// l4lb's port (port-less backends), all presenting the same host key (so a
// client that trusts the farm's address trusts whichever backend answers),
// --health_check=ssh. Real sftp clients, each from its own source address
// (127.0.1.X), put and get files through l4lb; every file must come back
// intact, and land whole on the one backend that client reached.

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string> kBackendHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
constexpr uint64_t kMiB = 1024 * 1024;

// sha256sum's digest of a file, or "" if it cannot be read.
std::string Sha256(const std::string& path) {
  const CommandResult r = RunCommand({"sha256sum", path}, absl::Seconds(20));
  return r.exit_code == 0 ? r.out.substr(0, r.out.find(' ')) : "";
}

// The backend named in ssh -v's trace of the server's identification line
// ("remote software version OpenSSH_9.2p1 Debian-2+deb12u10 backend 127.0.0.3"), or "".
std::string BackendInTrace(const std::string& trace) {
  const size_t line = trace.find("remote software version ");
  if (line == std::string::npos) return "";
  const std::string tag = " backend ";
  const size_t at = trace.find(tag, line);
  const size_t end = trace.find_first_of("\r\n", line);
  if (at == std::string::npos || at > end) return "";
  return trace.substr(at + tag.size(), end - at - tag.size());
}

class SftpFarmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/sshd", "/usr/bin/sftp"}) {
      ASSERT_EQ(access(tool, X_OK), 0) << tool << " is missing: run tools/setup.sh";
    }
    // One port on the balancer and on every backend: backends are given without
    // ports, so each client reaches the port it connected to.
    std::vector<std::string> all_hosts = kBackendHosts;
    all_hosts.push_back("127.0.0.1");
    ASSERT_NE(port_ = FreePortOnAll(all_hosts), 0);
    for (const std::string& host : kBackendHosts) {
      absl::StatusOr<Server> sshd = StartSshd(host, port_, {.banner = "backend " + host});
      ASSERT_TRUE(sshd.ok()) << sshd.status();
      sshd_.push_back(*std::move(sshd));
    }
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
        {absl::StrCat("--listen=127.0.0.1:", port_), "--backends=127.0.0.2,127.0.0.3,127.0.0.4",
         "--health_check=ssh", "--threads=2"});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  // The ssh probes pass on every backend, and no client connect needed a retry.
  void TearDown() override {
    if (l4lb_ != nullptr) {
      EXPECT_EQ(l4lb_->ConnectFailuresAndDowns(), "");
    }
  }

  // sftp from `source` through l4lb: put `local` as `name` (relative: into the
  // backend's files), then get it back into local + ".back".
  ClientSession PutAndGet(const std::string& source, const std::string& local,
                          const std::string& name) const {
    const std::string batch = local + ".batch";
    std::ofstream(batch, std::ios::trunc)
        << "put " << local << " " << name << "\nget " << name << " " << local << ".back\n";
    std::vector<std::string> argv = SftpBatchCommand("127.0.0.1", port_, batch);
    // -v: ssh's trace names the server's identification line, banner included.
    argv.insert(argv.begin() + 1, {"-v", "-o", "BindAddress=" + source});
    const CommandResult r = RunCommand(argv, absl::Seconds(60));
    ClientSession session;
    session.trace = absl::StrCat("$ ", absl::StrJoin(argv, " "), "\n", r.err);
    session.backend = BackendInTrace(r.err);
    session.ok = r.exit_code == 0 && !session.backend.empty();
    return session;
  }

  // The backends whose files hold `name`.
  std::vector<size_t> Holders(const std::string& name) const {
    std::vector<size_t> holders;
    for (size_t i = 0; i < sshd_.size(); ++i) {
      if (access((sshd_[i].files + "/" + name).c_str(), F_OK) == 0) holders.push_back(i);
    }
    return holders;
  }

  // After PutAndGet(): `name` is whole on exactly the backend that answered,
  // and came back whole.
  void ExpectLandedOnItsBackend(const ClientSession& session, const std::string& local,
                                const std::string& name) const {
    ASSERT_TRUE(session.ok) << session.TraceEnd();
    const std::vector<size_t> holders = Holders(name);
    ASSERT_EQ(holders.size(), 1u) << name << " is on " << holders.size() << " backends";
    EXPECT_EQ(sshd_[holders[0]].host, session.backend) << "another backend answered";
    const std::string want = Sha256(local);
    ASSERT_EQ(want.size(), 64u) << "no digest of " << local;
    EXPECT_EQ(Sha256(sshd_[holders[0]].files + "/" + name), want) << "stored " << name;
    EXPECT_EQ(Sha256(local + ".back"), want) << "got back " << name;
  }

  uint16_t port_ = 0;
  std::vector<Server> sshd_;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(SftpFarmTest, Puts50MiBAndGetsItBackIntact) {
  const std::string source = "127.0.1.30";
  const std::string local = TempDir() + "/sftp-50MiB.bin";
  WriteRandomFile(local, 50 * kMiB, 30);
  const absl::Time start = absl::Now();
  const ClientSession session = PutAndGet(source, local, "50MiB.bin");
  printf("sftp from %s: 50 MiB up and down via %s in %s\n", source.c_str(), session.backend.c_str(),
         absl::FormatDuration(absl::Now() - start).c_str());
  ExpectLandedOnItsBackend(session, local, "50MiB.bin");
  // And through l4lb, in one connection: its access log line counts at least
  // the file each way (plus SSH framing).
  std::string line;
  EXPECT_TRUE(WaitFor(absl::Seconds(5),
                      [&] {
                        const std::string log = l4lb_->Log();
                        const size_t at = log.find(" conn client=" + source + ":");
                        if (at == std::string::npos) return false;
                        line = log.substr(at, log.find('\n', at) - at);
                        return true;
                      }))
      << "no access log line for " << source;
  uint64_t up = 0, down = 0;
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    if (absl::StartsWith(field, "up=")) (void)absl::SimpleAtoi(field.substr(3), &up);
    if (absl::StartsWith(field, "down=")) (void)absl::SimpleAtoi(field.substr(5), &down);
  }
  EXPECT_TRUE(absl::StrContains(line, " backend=" + session.backend + ":")) << line;
  EXPECT_GE(up, 50 * kMiB) << line;
  EXPECT_GE(down, 50 * kMiB) << line;
}

// Ten sessions at once from ten addresses: all succeed, and more than one
// backend takes part.
TEST_F(SftpFarmTest, TenConcurrentSessionsAllSucceedOnSeveralBackends) {
  constexpr int kSessions = 10;
  std::vector<ClientSession> sessions(kSessions);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSessions; ++s) {
    const std::string local = absl::StrCat(TempDir(), "/sftp-many-", s, ".bin");
    WriteRandomFile(local, kMiB, 40 + s);
    threads.emplace_back([&, s, local] {
      sessions[s] =
          PutAndGet(absl::StrCat("127.0.1.", 40 + s), local, absl::StrCat("many-", s, ".bin"));
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> backends;
  for (int s = 0; s < kSessions; ++s) {
    ExpectLandedOnItsBackend(sessions[s], absl::StrCat(TempDir(), "/sftp-many-", s, ".bin"),
                             absl::StrCat("many-", s, ".bin"));
    backends.insert(sessions[s].backend);
  }
  printf("%d sessions on %zu backends: %s\n", kSessions, backends.size(),
         absl::StrJoin(backends, ", ").c_str());
  EXPECT_GT(backends.size(), 1u);
}

}  // namespace
}  // namespace l4lb::testing
