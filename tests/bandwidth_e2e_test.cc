// client_bandwidth end to end: the built l4lb with --client_bandwidth in front of
// real nginx (curl downloads) and of a sink (uploads), clients from distinct
// loopback addresses. A limited transfer takes as long as its size over the
// rate, all of a client's connections share one rate, another client has its
// own, and every byte arrives.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::string Body(size_t size) {
  std::string body(size, '\0');
  Stream(7).Fill(reinterpret_cast<uint8_t*>(body.data()), body.size());
  return body;
}

struct Download {
  bool ok = false;
  double seconds = 0;
  std::string error;
};

// curl from `source` through l4lb's `port`, `body` expected back.
Download Curl(uint16_t port, const std::string& source, const std::string& body) {
  const std::string out = absl::StrCat(TempDir(), "/curl.", source, ".", port, ".", rand());
  const CommandResult r =
      RunCommand({"curl", "-sS", "--max-time", "30", "--interface", source, "-o", out, "-w",
                  "%{time_total}", absl::StrCat("http://127.0.0.1:", port, "/")},
                 absl::Seconds(35));
  Download d;
  d.error = r.err;
  d.ok = r.exit_code == 0 && absl::SimpleAtod(r.out, &d.seconds) && ReadFile(out) == body;
  unlink(out.c_str());
  return d;
}

class BandwidthTest : public ::testing::Test {
 protected:
  void StartL4lb(uint16_t backend_port, std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"--listen=127.0.0.1:0", "--threads=2", "--health_check=none",
                                 absl::StrCat("--backends=127.0.0.2:", backend_port)});
    absl::StatusOr<std::unique_ptr<L4lb>> started = L4lb::Start(flags);
    ASSERT_TRUE(started.ok()) << started.status();
    l4lb_ = *std::move(started);
  }
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(BandwidthTest, ADownloadTakesItsSizeOverTheRateAndArrivesWhole) {
  const std::string body = Body(3 * kMiB);
  absl::StatusOr<Server> nginx = StartNginx("127.0.0.2", FreePortOnAll({"127.0.0.2"}), body);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  ASSERT_NO_FATAL_FAILURE(StartL4lb(nginx->port, {"--client_bandwidth=1MiB/s"}));
  const Download d = Curl(l4lb_->port(), "127.0.41.1", body);
  ASSERT_TRUE(d.ok) << d.error;
  // 3 MiB at 1 MiB/s, less the bucket's 100 ms that is there at once: 2.9 s.
  // Never faster than the rate; the upper bound only catches a stall.
  EXPECT_GE(d.seconds, 2.6);
  EXPECT_LE(d.seconds, 4.5);
}

TEST_F(BandwidthTest, AClientsConnectionsShareOneRateAnotherClientHasItsOwn) {
  const std::string body = Body(2 * kMiB);
  absl::StatusOr<Server> nginx = StartNginx("127.0.0.2", FreePortOnAll({"127.0.0.2"}), body);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  ASSERT_NO_FATAL_FAILURE(StartL4lb(nginx->port, {"--client_bandwidth=1MiB/s"}));
  // Two downloads of one client (they land on either worker: the bucket is the
  // client's, not the worker's) and one of another client, all at once.
  Download a, b, other;
  const absl::Time start = absl::Now();
  std::thread ta([&] { a = Curl(l4lb_->port(), "127.0.42.1", body); });
  std::thread tb([&] { b = Curl(l4lb_->port(), "127.0.42.1", body); });
  std::thread tother([&] { other = Curl(l4lb_->port(), "127.0.43.1", body); });
  ta.join();
  tb.join();
  tother.join();
  ASSERT_TRUE(a.ok) << a.error;
  ASSERT_TRUE(b.ok) << b.error;
  ASSERT_TRUE(other.ok) << other.error;
  // 4 MiB of one client at 1 MiB/s: the later of its two ends near 3.9 s.
  EXPECT_GE(std::max(a.seconds, b.seconds), 3.5);
  EXPECT_LE(std::max(a.seconds, b.seconds), 6.0);
  // 2 MiB of the other at its own 1 MiB/s: about 1.9 s, undisturbed.
  EXPECT_GE(other.seconds, 1.6);
  EXPECT_LE(other.seconds, 3.2);
  EXPECT_LE(absl::Now() - start, absl::Seconds(8));
}

TEST_F(BandwidthTest, AnUploadIsBoundToo) {
  constexpr size_t kSize = 3 * kMiB;
  std::atomic<uint64_t> received{0};
  std::atomic<bool> saw_eof{false};
  std::string got;
  OneShotServer sink("127.0.0.2", [&](int fd) {
    got = ReadToEof(fd);
    received = got.size();
    saw_eof = true;
  });
  ASSERT_NO_FATAL_FAILURE(StartL4lb(sink.port(), {"--client_bandwidth=1MiB/s"}));
  const std::string body = Body(kSize);
  const int fd = ConnectTcp("127.0.0.1", l4lb_->port(), "127.0.44.1");
  ASSERT_GE(fd, 0);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(SendAll(fd, body));
  shutdown(fd, SHUT_WR);
  ASSERT_TRUE(sink.Join(absl::Seconds(15)));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_TRUE(saw_eof);
  EXPECT_TRUE(got == body) << "received " << received << " of " << kSize;
  EXPECT_GE(seconds, 2.6);
  EXPECT_LE(seconds, 4.5);
  SetRecvTimeout(fd, absl::Seconds(5));
  EXPECT_EQ(ReadToEof(fd), "") << "the sink's close reaches the client as EOF";
  close(fd);
}

TEST_F(BandwidthTest, BadValuesNameTheFlag) {
  for (const char* bad :
       {"--client_bandwidth=fast", "--client_bandwidth=10MiB/m", "--client_bandwidth=100B/s"}) {
    const CommandResult r = RunCommand(
        {L4lbBinary(), "--listen=127.0.0.1:0", "--backends=127.0.0.2:80", bad}, absl::Seconds(10));
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--client_bandwidth: "), std::string::npos) << r.err;
  }
  const CommandResult udp = RunCommand({L4lbBinary(), "--listen=udp://127.0.0.1:0",
                                        "--backends=127.0.0.2:53", "--client_bandwidth=1MiB/s"},
                                       absl::Seconds(10));
  EXPECT_EQ(udp.exit_code, 2);
  EXPECT_NE(udp.err.find("--client_bandwidth: only for tcp"), std::string::npos) << udp.err;
}

}  // namespace
}  // namespace l4lb::testing
