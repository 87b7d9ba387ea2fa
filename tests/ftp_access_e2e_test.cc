// Access control in front of an FTP farm (issue 13): vsftpd behind l4lb on the
// control port and the passive range; one client address is denied, one hits
// its connection limit, one floods, is banned by rate and is let in again when
// the ban runs out, while a normal client's uploads and downloads stay
// byte-exact the whole time.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

class FtpAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/vsftpd", "/usr/bin/curl"}) {
      ASSERT_EQ(access(tool, X_OK), 0) << tool << " is missing: run tools/setup.sh";
    }
    const std::vector<std::string> hosts = {"127.0.0.1", "127.0.0.2"};
    ASSERT_NE(pasv_min_ = FreePortRange(hosts, 10), 0);
    ASSERT_NE(control_ = FreePortOnAll(hosts), 0);
    absl::StatusOr<Server> vsftpd =
        StartVsftpd("127.0.0.2", control_,
                    {.pasv_min_port = pasv_min_,
                     .pasv_max_port = static_cast<uint16_t>(pasv_min_ + 9),
                     .pasv_address = "127.0.0.1"});
    ASSERT_TRUE(vsftpd.ok()) << vsftpd.status();
    vsftpd_ = *std::move(vsftpd);
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
        L4lb::Start({absl::StrCat("--listen=127.0.0.1:", control_, ",127.0.0.1:", pasv_min_, "-",
                                  pasv_min_ + 9),
                     "--backends=127.0.0.2", "--health_check=ftp", "--threads=2",
                     "--deny=127.0.80.0/24", "--client_max_connections=4", "--client_rate=40/s",
                     "--client_burst=40", "--ban_after=5", "--ban_time=3s",
                     // A data connection that was refused leaves vsftpd waiting in accept for
                     // it (60 s), deaf to its control connection: do not drain that long.
                     "--drain_timeout=2s"});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  std::string Url(const std::string& name) const {
    return absl::StrCat("ftp://127.0.0.1:", control_, "/", kFtpUploadDir, "/", name);
  }
  // One curl transfer from `source` (control + one passive data connection).
  int Curl(const std::string& source, std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl",           "-sS",         "--max-time", "10",
                                     "--disable-epsv", "--interface", source};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(15)).exit_code;
  }

  uint16_t pasv_min_ = 0, control_ = 0;
  Server vsftpd_;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(FtpAccessTest, DeniedLimitedAndBannedClientsWhileANormalOneTransfersByteExact) {
  const std::string local = TempDir() + "/ftp-access.bin";
  WriteRandomFile(local, 2 << 20, 41);
  const std::string want = ReadFile(local);
  // The normal client: upload, download, compare, in a loop, all the time.
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0}, bad{0};
  std::thread normal([&] {
    for (int i = 0; i < 200 && !stop; ++i) {
      const std::string name = absl::StrCat("n", i, ".bin");
      const std::string back = absl::StrCat(TempDir(), "/ftp-access-back-", i, ".bin");
      const bool ok = Curl("127.0.83.1", {"-T", local, Url(name)}) == 0 &&
                      Curl("127.0.83.1", {"-o", back, Url(name)}) == 0 && ReadFile(back) == want;
      ++(ok ? rounds : bad);
      unlink(back.c_str());
      absl::SleepFor(absl::Milliseconds(200));  // 4 connections a round: under 40/s
    }
  });
  ASSERT_TRUE(WaitFor(absl::Seconds(20), [&] { return rounds.load() >= 1; }));

  // Denied: every connection of 127.0.80.0/24 is refused at accept.
  EXPECT_NE(Curl("127.0.80.7", {"-o", "/dev/null", Url("n0.bin")}), 0);

  // Limited: 127.0.81.1 holds four control connections (the banner proves each
  // reached vsftpd); its fifth connection is refused.
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    const int fd = ConnectTcp("127.0.0.1", control_, "127.0.81.1");
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    ASSERT_EQ(ReadN(fd, 3), "220") << "connection " << i;
    held.push_back(fd);
  }
  EXPECT_NE(Curl("127.0.81.1", {"-o", "/dev/null", Url("n0.bin")}), 0);
  for (int fd : held) close(fd);

  // Banned: 127.0.82.1 logs in and out again and again (password guessing), one
  // session at a time, faster than its rate.
  const absl::Time flood_start = absl::Now();
  for (int i = 0; i < 1000 && absl::Now() - flood_start < absl::Seconds(10) &&
                  !l4lb_->HasLine("client=127.0.82.1:", "close=banned");
       ++i) {
    const int fd = ConnectTcp("127.0.0.1", control_, "127.0.82.1");
    if (fd < 0) continue;
    SetRecvTimeout(fd, absl::Seconds(5));
    if (ReadN(fd, 3) == "220") {  // admitted: a session
      SendAll(fd, "USER anonymous\r\nQUIT\r\n");
      ReadToEof(fd);
    }
    close(fd);
  }
  ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return l4lb_->HasLine("client=127.0.82.1:", "close=banned");
  })) << l4lb_->Log();
  EXPECT_NE(Curl("127.0.82.1", {"-o", "/dev/null", Url("n0.bin")}), 0) << "banned";
  const absl::Time banned = absl::Now();
  // ... and let in again once ban_time has passed.
  EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] {
    return Curl("127.0.82.1", {"-o", "/dev/null", Url("n0.bin")}) == 0;
  }));
  EXPECT_GE(absl::Now() - banned, absl::Seconds(2));

  stop = true;
  normal.join();
  EXPECT_GE(rounds.load(), 2);
  EXPECT_EQ(bad.load(), 0) << "the normal client's transfers failed or differed";
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return l4lb_->HasLine("client=127.0.80.7:", "close=denied") &&
           l4lb_->HasLine("client=127.0.81.1:", "close=limited");
  })) << l4lb_->Log();
}

}  // namespace
}  // namespace l4lb::testing
