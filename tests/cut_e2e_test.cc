// A transfer that l4lb cuts must look cut to both ends, and a side that resets
// first must not take the other side's last bytes with it: the built binary
// between raw loopback sockets, then under vsftpd and curl (FTP stream mode takes
// the data connection's EOF for the end of the file).

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

std::unique_ptr<L4lb> StartL4lb(const std::vector<std::string>& flags) {
  std::vector<std::string> all = {"--listen=127.0.0.1:0", "--threads=1", "--health_check=none"};
  all.insert(all.end(), flags.begin(), flags.end());
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(all);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

void Reset(int fd) {
  const linger reset{.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  close(fd);
}

// Waits until the peer has ACKed every byte written to fd.
bool AllAcked(int fd, absl::Duration timeout) {
  return WaitFor(timeout, [&] {
    int unacked = 0;
    return ioctl(fd, SIOCOUTQ, &unacked) == 0 && unacked == 0;
  });
}

// Reads to EOF or error, `chunk` bytes per `pause`: a slow reader, so what its
// peer sent waits in l4lb (socket, pipe) rather than in the reader's socket.
std::string ReadSlowly(int fd, size_t chunk, absl::Duration pause, int* error) {
  std::string got;
  std::vector<char> buf(chunk);
  for (int i = 0; i < 100'000; ++i) {
    absl::SleepFor(pause);
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      *error = n == 0 ? 0 : errno;
      return got;
    }
    got.append(buf.data(), n);
  }
  *error = -1;
  return got;
}

std::string Pattern(size_t n) {
  std::string s(n, 0);
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST(CutTest, IdleTimeoutResetsBothSides) {
  std::atomic<int> backend_error{-2};
  OneShotServer backend("127.0.0.2", [&](int fd) {
    SetRecvTimeout(fd, absl::Seconds(10));
    int error = -1;
    EXPECT_EQ(ReadToEof(fd, &error), "hello");
    backend_error = error;
  });
  auto l4lb =
      StartL4lb({absl::StrCat("--backends=127.0.0.2:", backend.port()), "--idle_timeout=500ms"});
  ASSERT_NE(l4lb, nullptr);
  const int client = ConnectTcp("127.0.0.1", l4lb->port());
  SetRecvTimeout(client, absl::Seconds(10));
  ASSERT_TRUE(SendAll(client, "hello"));
  int error = -1;
  EXPECT_EQ(ReadToEof(client, &error), "");
  EXPECT_EQ(error, ECONNRESET) << "the client took an idle cut for a clean end: "
                               << strerror(error);
  ASSERT_TRUE(backend.Join(absl::Seconds(10)));
  EXPECT_EQ(backend_error, ECONNRESET) << "the backend took an idle cut for a clean end";
  close(client);
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb->HasLine("close=idle_timeout", "client=127.0.0.1"); }));
}

TEST(CutTest, DrainTimeoutResetsAnUploadInProgress) {
  // The reproduction: a slow upload, SIGTERM, --drain_timeout=1s. The
  // backend got 19,000 bytes and then a clean EOF.
  std::atomic<int> backend_error{-2};
  std::atomic<size_t> backend_bytes{0};
  OneShotServer backend("127.0.0.2", [&](int fd) {
    SetRecvTimeout(fd, absl::Seconds(10));
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        backend_error = n == 0 ? 0 : errno;
        return;
      }
      backend_bytes += n;
    }
  });
  auto l4lb =
      StartL4lb({absl::StrCat("--backends=127.0.0.2:", backend.port()), "--drain_timeout=1s"});
  ASSERT_NE(l4lb, nullptr);
  const int client = ConnectTcp("127.0.0.1", l4lb->port());
  std::atomic<bool> stop{false};
  std::thread uploader([&] {
    const std::string chunk(1000, 'u');
    for (int i = 0; i < 400 && !stop && SendAll(client, chunk); ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] { return backend_bytes > 10'000; }));
  EXPECT_EQ(l4lb->process().Stop(SIGTERM, absl::Seconds(5)), 0);
  stop = true;
  uploader.join();
  ASSERT_TRUE(backend.Join(absl::Seconds(10)));
  EXPECT_GT(backend_bytes, 0u);
  EXPECT_EQ(backend_error, ECONNRESET)
      << "after " << backend_bytes << " bytes the backend saw "
      << (backend_error == 0 ? "a clean EOF: a cut upload looks complete"
                             : strerror(backend_error));
  close(client);
}

TEST(CutTest, BackendThatAnswersThenResetsStillGetsItsAnswerToTheClient) {
  // A server that rejects an upload (HTTP 413) answers and closes with the
  // upload unread: its kernel resets. Over a direct connection the client reads
  // the whole answer, then the reset; through l4lb it must be the same, though
  // most of the answer still sits in l4lb when the reset arrives.
  const std::string answer = "HTTP/1.1 413 Payload Too Large\r\n\r\n" + Pattern(200'000);
  std::atomic<bool> backend_reset{false};
  OneShotServer backend("127.0.0.2", [&](int fd) {
    SetRecvTimeout(fd, absl::Seconds(10));
    ReadN(fd, 100);  // the request line; the body stays unread
    ASSERT_TRUE(SendAll(fd, answer));
    ASSERT_TRUE(AllAcked(fd, absl::Seconds(10)));  // all of it reached l4lb
    close(fd);                                     // unread bytes: the kernel sends a RST
    backend_reset = true;
  });
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", backend.port())});
  ASSERT_NE(l4lb, nullptr);
  const int client = ConnectTcp("127.0.0.1", l4lb->port());
  SetRecvTimeout(client, absl::Seconds(10));
  ASSERT_TRUE(SendAll(client, "POST /upload HTTP/1.1\r\n\r\n" + std::string(100'000, 'p')));
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] { return backend_reset.load(); }));
  int error = -1;
  const std::string got = ReadSlowly(client, 4096, absl::Milliseconds(1), &error);
  EXPECT_EQ(got.size(), answer.size());
  EXPECT_TRUE(got == answer) << "the answer arrived damaged";
  EXPECT_EQ(error, ECONNRESET) << "the answer must end in the backend's reset, not "
                               << strerror(error);
  close(client);
  ASSERT_TRUE(backend.Join(absl::Seconds(10)));
  EXPECT_TRUE(WaitFor(absl::Seconds(2),
                      [&] { return l4lb->HasLine("close=backend_reset", "client=127.0.0.1"); }));
}

TEST(CutTest, ClientThatResetsAfterAnUploadStillGetsEveryByteToTheBackend) {
  const std::string upload = Pattern(1 << 20);
  std::string received;
  std::atomic<int> backend_error{-2};
  std::atomic<bool> client_reset{false};
  OneShotServer backend("127.0.0.2", [&](int fd) {
    SetRecvTimeout(fd, absl::Seconds(10));
    ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] { return client_reset.load(); }));
    int error = -1;
    received = ReadSlowly(fd, 16384, absl::Milliseconds(1), &error);
    backend_error = error;
  });
  auto l4lb = StartL4lb({absl::StrCat("--backends=127.0.0.2:", backend.port())});
  ASSERT_NE(l4lb, nullptr);
  const int client = ConnectTcp("127.0.0.1", l4lb->port());
  std::thread sender([&] { SendAll(client, upload); });
  sender.join();
  ASSERT_TRUE(AllAcked(client, absl::Seconds(10)));  // l4lb has every byte
  Reset(client);
  client_reset = true;
  ASSERT_TRUE(backend.Join(absl::Seconds(20)));
  EXPECT_EQ(received.size(), upload.size());
  EXPECT_TRUE(received == upload) << "the upload arrived damaged";
  EXPECT_EQ(backend_error, ECONNRESET) << strerror(backend_error);
}

// --- FTP: vsftpd records a cut upload as failed, curl reports a cut download --

class FtpCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/vsftpd", "/usr/bin/curl"}) {
      ASSERT_EQ(access(tool, X_OK), 0) << tool << " is missing: run tools/setup.sh";
    }
    const std::vector<std::string> hosts = {"127.0.0.1", "127.0.0.2"};
    ASSERT_NE(pasv_min_ = FreePortRange(hosts, 5), 0);
    ASSERT_NE(control_ = FreePortOnAll(hosts), 0);
    absl::StatusOr<Server> vsftpd =
        StartVsftpd("127.0.0.2", control_,
                    {.pasv_min_port = pasv_min_,
                     .pasv_max_port = static_cast<uint16_t>(pasv_min_ + 4),
                     .pasv_address = "127.0.0.1"});
    ASSERT_TRUE(vsftpd.ok()) << vsftpd.status();
    vsftpd_ = *std::move(vsftpd);
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
        {absl::StrCat("--listen=127.0.0.1:", control_, ",127.0.0.1:", pasv_min_, "-",
                      pasv_min_ + 4),
         "--backends=127.0.0.2", "--health_check=ftp", "--threads=1", "--drain_timeout=1s"});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  std::string Url(const std::string& name) const {
    return absl::StrCat("ftp://127.0.0.1:", control_, "/", kFtpUploadDir, "/", name);
  }
  std::string VsftpdLog() const {
    std::ifstream in(vsftpd_.dir + "/vsftpd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // curl in the background: its exit code lands in `exit_code`.
  std::thread Curl(std::vector<std::string> argv, std::atomic<int>* exit_code) {
    return std::thread([argv = std::move(argv), exit_code] {
      *exit_code = RunCommand(argv, absl::Seconds(30)).exit_code;
    });
  }

  uint16_t pasv_min_ = 0, control_ = 0;
  Server vsftpd_;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(FtpCutTest, UploadCutAtTheDrainTimeoutIsRecordedAsFailed) {
  const std::string local = TempDir() + "/cut-upload.bin";
  WriteRandomFile(local, 4 << 20, 7);
  std::atomic<int> curl_exit{-1};
  // 200 KB/s: 4 MiB takes 20 s, far past the 1 s drain timeout.
  std::thread curl = Curl(
      {"curl", "-sS", "--disable-epsv", "--limit-rate", "200k", "-T", local, Url("cut-upload.bin")},
      &curl_exit);
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    return absl::StrContains(VsftpdLog(), "150 Ok to send data");
  })) << VsftpdLog();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(l4lb_->process().Stop(SIGTERM, absl::Seconds(5)), 0);
  curl.join();
  EXPECT_NE(curl_exit, 0) << "curl took a cut upload for a complete one";
  const std::string log = VsftpdLog();
  EXPECT_TRUE(WaitFor(absl::Seconds(5),
                      [&] {
                        return absl::StrContains(VsftpdLog(), "FAIL UPLOAD") ||
                               absl::StrContains(VsftpdLog(), "426 ");
                      }))
      << "vsftpd did not record the cut upload as failed:\n"
      << VsftpdLog();
  EXPECT_FALSE(absl::StrContains(VsftpdLog(), "OK UPLOAD"))
      << "vsftpd stored a truncated upload as complete:\n"
      << VsftpdLog();
}

TEST_F(FtpCutTest, DownloadCutAtTheDrainTimeoutIsAnErrorForCurl) {
  WriteRandomFile(vsftpd_.files + "/" + kFtpUploadDir + "/big.bin", 8 << 20, 9);
  std::atomic<int> curl_exit{-1};
  std::thread curl = Curl({"curl", "-sS", "--disable-epsv", "--limit-rate", "200k", "-o",
                           TempDir() + "/cut-download.bin", Url("big.bin")},
                          &curl_exit);
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    return absl::StrContains(VsftpdLog(), "150 Opening BINARY mode data connection");
  })) << VsftpdLog();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(l4lb_->process().Stop(SIGTERM, absl::Seconds(5)), 0);
  curl.join();
  EXPECT_NE(curl_exit, 0) << "curl took a cut download for a complete one";
  EXPECT_NE(curl_exit, -1) << "curl hung";
}

}  // namespace
}  // namespace l4lb::testing
