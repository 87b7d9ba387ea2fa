// The servers of tests/harness/servers.h against real clients (curl, lftp, sftp,
// ssh): what a client gets back is compared byte for byte with what was put on
// the other side, and each backend's banner with the one it was given.

#include "tests/harness/servers.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 1 MiB of reproducible bytes; `seed` tells files apart.
std::string Data(uint64_t seed) {
  std::string out(1 << 20, '\0');
  Stream(seed).Fill(reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

// A client run to completion, bounded.
CommandResult Client(const std::vector<std::string>& argv) {
  return RunCommand(argv, absl::Seconds(20));
}

// One reply line ("\r\n" included) from a control connection.
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (line.size() < 512 && recv(fd, &c, 1, 0) == 1) {
    line += c;
    if (c == '\n') break;
  }
  return line;
}

// Compared with == rather than EXPECT_EQ: a failure must not print 1 MiB.
#define EXPECT_SAME_BYTES(a, b) \
  EXPECT_TRUE((a) == (b)) << #a << ": " << (a).size() << " bytes, " << #b << ": " << (b).size()

TEST(NginxTest, ServesTheBodyAndFilesPutUnderFiles) {
  const uint16_t port = FreePortOnAll({"127.0.0.2"});
  absl::StatusOr<Server> nginx = StartNginx("127.0.0.2", port, "hello from nginx\n");
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const std::string url = absl::StrCat("http://127.0.0.2:", port);
  CommandResult r = Client({"curl", "-sS", "--max-time", "10", url + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from nginx\n");

  const std::string data = Data(1);
  WriteFile(nginx->files + "/data", data);
  r = Client({"curl", "-sS", "--max-time", "10", url + "/data"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_SAME_BYTES(r.out, data);
}

// A port held by a socket that never answers: the start must fail (nginx cannot
// bind), not pass on the connect alone, and the error must say where to look.
TEST(NginxTest, StartFailsNamingTheServerAndItsLogWhenThePortIsTaken) {
  uint16_t port = 0;
  const int taken = ListenTcp("127.0.0.2", &port);
  ASSERT_GE(taken, 0);
  absl::StatusOr<Server> nginx = StartNginx("127.0.0.2", port, "never served\n");
  close(taken);
  ASSERT_FALSE(nginx.ok());
  const std::string message(nginx.status().message());
  EXPECT_TRUE(absl::StrContains(message, absl::StrCat("nginx on 127.0.0.2:", port, " exited")))
      << message;
  EXPECT_TRUE(absl::StrContains(message, "nginx.log")) << message;
  EXPECT_TRUE(absl::StrContains(message, "Address already in use")) << message;
}

class VsftpdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(pasv_min_ = FreePortRange({"127.0.0.2", "127.0.0.3", "127.0.0.4"}, 4), 0);
  }

  absl::StatusOr<Server> Start(const std::string& host, const std::string& banner,
                               const std::string& pasv_address = "") {
    VsftpdOptions options;
    options.banner = banner;
    options.pasv_min_port = pasv_min_;
    options.pasv_max_port = pasv_min_ + 3;
    options.pasv_address = pasv_address;
    return StartVsftpd(host, FreePortOnAll({host}), options);
  }

  // curl over FTP; --disable-epsv: PASV, the command whose reply the options shape.
  static CommandResult Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "--disable-epsv"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Client(argv);
  }

  uint16_t pasv_min_ = 0;
};

TEST_F(VsftpdTest, CurlDownloadsAndUploadsInPassiveMode) {
  absl::StatusOr<Server> ftp = Start("127.0.0.2", "backend A");
  ASSERT_TRUE(ftp.ok()) << ftp.status();
  const std::string url = absl::StrCat("ftp://127.0.0.2:", ftp->port);
  const std::string down = Data(2);
  WriteFile(ftp->files + "/down.bin", down);
  CommandResult r = Curl({url + "/down.bin"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_SAME_BYTES(r.out, down);

  const std::string up = Data(3);
  const std::string local = TempDir() + "/curl-up.bin";
  WriteFile(local, up);
  r = Curl({"-T", local, absl::StrCat(url, "/", kFtpUploadDir, "/up.bin")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string stored = ReadFile(absl::StrCat(ftp->files, "/", kFtpUploadDir, "/up.bin"));
  EXPECT_SAME_BYTES(stored, up);
  // Uploads are readable back (anon_umask): a farm test gets what it put.
  r = Curl({absl::StrCat(url, "/", kFtpUploadDir, "/up.bin")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_SAME_BYTES(r.out, up);
}

// Raw control connection: the banner, and a PASV reply naming the balancer's
// address (not the backend's) with a port from the configured range.
TEST_F(VsftpdTest, PasvReplyNamesTheGivenAddressAndAPortInRange) {
  absl::StatusOr<Server> ftp = Start("127.0.0.3", "backend B", "127.0.0.1");
  ASSERT_TRUE(ftp.ok()) << ftp.status();
  const int fd = ConnectTcp("127.0.0.3", ftp->port);
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(5));
  EXPECT_EQ(ReadLine(fd), "220 backend B\r\n");
  // no_anon_password: logged in on USER, no PASS asked.
  ASSERT_TRUE(SendAll(fd, "USER anonymous\r\n"));
  const std::string login = ReadLine(fd);
  EXPECT_TRUE(absl::StartsWith(login, "230 ")) << login;
  ASSERT_TRUE(SendAll(fd, "PASV\r\n"));
  const std::string reply = ReadLine(fd);
  close(fd);
  // "227 Entering Passive Mode (127,0,0,1,P1,P2)."
  const size_t open = reply.find('('), end = reply.find(')');
  ASSERT_TRUE(absl::StartsWith(reply, "227 ") && open != std::string::npos &&
              end != std::string::npos)
      << reply;
  const std::vector<std::string> fields =
      absl::StrSplit(reply.substr(open + 1, end - open - 1), ',');
  ASSERT_EQ(fields.size(), 6u) << reply;
  EXPECT_EQ(absl::StrJoin(fields.begin(), fields.begin() + 4, "."), "127.0.0.1") << reply;
  int p1 = 0, p2 = 0;
  ASSERT_TRUE(absl::SimpleAtoi(fields[4], &p1) && absl::SimpleAtoi(fields[5], &p2)) << reply;
  EXPECT_GE(p1 * 256 + p2, pasv_min_) << reply;
  EXPECT_LE(p1 * 256 + p2, pasv_min_ + 3) << reply;
}

TEST_F(VsftpdTest, LftpPutsAndGetsInPassiveMode) {
  absl::StatusOr<Server> ftp = Start("127.0.0.4", "");
  ASSERT_TRUE(ftp.ok()) << ftp.status();
  const std::string data = Data(4);
  const std::string local = TempDir() + "/lftp-up.bin", back = TempDir() + "/lftp-back.bin";
  WriteFile(local, data);
  const std::string remote = absl::StrCat(kFtpUploadDir, "/lftp.bin");
  // fail-exit: a failed put or get ends lftp with a non-zero exit, not at "bye".
  const std::string script =
      absl::StrCat("set cmd:fail-exit yes; set ftp:passive-mode on; set ftp:prefer-epsv no; ",
                   "set net:max-retries 1; set net:timeout 5; set xfer:clobber on; ",  //
                   "put ", local, " -o ", remote, "; get ", remote, " -o ", back, "; bye");
  const CommandResult r =
      Client({"lftp", "-e", script, absl::StrCat("ftp://127.0.0.4:", ftp->port)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string stored = ReadFile(absl::StrCat(ftp->files, "/", remote));
  const std::string got = ReadFile(back);
  EXPECT_SAME_BYTES(stored, data);
  EXPECT_SAME_BYTES(got, data);
  // The default banner names the backend.
  EXPECT_TRUE(absl::StrContains(ReadFile(ftp->dir + "/vsftpd.log"),
                                absl::StrCat("220 vsftpd 127.0.0.4:", ftp->port)));
}

class SshdTest : public ::testing::Test {
 protected:
  // Two backends on one port, as behind a balancer.
  void SetUp() override {
    port_ = FreePortOnAll(kHosts);
    ASSERT_NE(port_, 0);
    for (const std::string& host : kHosts) {
      absl::StatusOr<Server> sshd = StartSshd(host, port_, {.banner = "backend " + host});
      ASSERT_TRUE(sshd.ok()) << sshd.status();
      sshd_.push_back(*std::move(sshd));
    }
  }

  const std::vector<std::string> kHosts = {"127.0.0.3", "127.0.0.4"};
  uint16_t port_ = 0;
  std::vector<Server> sshd_;
};

TEST_F(SshdTest, SftpPutsAndGetsOnEachBackendTrustingOneHostKey) {
  for (size_t i = 0; i < kHosts.size(); ++i) {
    const std::string& host = kHosts[i];
    const std::string data = Data(10 + i);
    const std::string local = absl::StrCat(TempDir(), "/sftp-up-", i);
    const std::string back = absl::StrCat(TempDir(), "/sftp-back-", i);
    const std::string batch = absl::StrCat(TempDir(), "/sftp-batch-", i);
    WriteFile(local, data);
    WriteFile(batch, absl::StrCat("put ", local, " up.bin\nget up.bin ", back, "\n"));
    CommandResult r = Client(SftpBatchCommand(host, port_, batch));
    ASSERT_EQ(r.exit_code, 0) << host << ": " << r.err;
    // Relative names land in this backend's own `files`.
    const std::string stored = ReadFile(sshd_[i].files + "/up.bin");
    const std::string got = ReadFile(back);
    EXPECT_SAME_BYTES(stored, data);
    EXPECT_SAME_BYTES(got, data);

    // ssh with the same options: the remote sha256 matches the local one.
    std::vector<std::string> ssh = SshClientOptions(port_);
    ssh.insert(ssh.begin(), "ssh");
    ssh.insert(ssh.end(), {"root@" + host, "sha256sum < " + sshd_[i].files + "/up.bin"});
    r = Client(ssh);
    ASSERT_EQ(r.exit_code, 0) << host << ": " << r.err;
    const CommandResult local_sum = Client({"sh", "-c", "sha256sum < " + local});
    EXPECT_EQ(r.out, local_sum.out);
    EXPECT_EQ(r.out.size(), 64u + 4u) << r.out;  // "<hex>  -\n": a real digest
  }
}

// The trust above is real: without the shared host key in known_hosts, the same
// client refuses the server.
TEST_F(SshdTest, AnUntrustedHostKeyIsRefused) {
  const std::string empty = TempDir() + "/empty_known_hosts";
  WriteFile(empty, "");
  std::vector<std::string> argv = SftpBatchCommand(kHosts[0], port_, "/dev/null");
  for (std::string& arg : argv) {
    if (absl::StartsWith(arg, "UserKnownHostsFile=")) arg = "UserKnownHostsFile=" + empty;
  }
  const CommandResult r = Client(argv);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "Host key verification failed")) << r.err;
}

TEST_F(SshdTest, IdentificationLineCarriesTheBanner) {
  for (const std::string& host : kHosts) {
    const int fd = ConnectTcp(host, port_);
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    const std::string line = ReadLine(fd);
    close(fd);
    EXPECT_TRUE(absl::StartsWith(line, "SSH-2.0-OpenSSH_")) << line;
    EXPECT_TRUE(absl::EndsWith(line, " backend " + host + "\r\n")) << line;
  }
}

}  // namespace
}  // namespace l4lb::testing
