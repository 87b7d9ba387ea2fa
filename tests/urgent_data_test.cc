// The built l4lb relaying TCP urgent data (MSG_OOB: telnet's Synch, FTP's ABOR).
// l4lb reads it inline (SO_OOBINLINE on every socket it relays): the urgent byte
// travels as a plain byte, where it was sent in the stream, and the connection
// neither stalls at the urgent mark nor ends there. Each case runs with a few
// bytes around the mark (the copy path) and with megabytes (the splice path).

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

std::unique_ptr<L4lb> StartL4lb(uint16_t backend_port) {
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
      L4lb::Start({"--listen=127.0.0.1:0", "--threads=1", "--health_check=none",
                   absl::StrCat("--backends=127.0.0.2:", backend_port)});
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

// `n` bytes of Stream(seed), as a string to compare with.
std::string Bytes(uint64_t seed, size_t n) {
  std::string out(n, '\0');
  Stream(seed).Fill(reinterpret_cast<uint8_t*>(out.data()), n);
  return out;
}

// Sends `before`, the urgent byte '!' with MSG_OOB, then `after`.
bool SendAroundUrgentByte(int fd, const std::string& before, const std::string& after) {
  return SendAll(fd, before) && send(fd, "!", 1, MSG_OOB | MSG_NOSIGNAL) == 1 && SendAll(fd, after);
}

class UrgentDataTest : public ::testing::TestWithParam<size_t> {
 protected:
  const std::string before_ = Bytes(1, GetParam());
  const std::string after_ = Bytes(2, GetParam());
  const std::string want_ = before_ + "!" + after_;
};

INSTANTIATE_TEST_SUITE_P(BytesAroundTheMark, UrgentDataTest, ::testing::Values(100, 4 << 20),
                         [](const auto& info) { return absl::StrCat(info.param); });

TEST_P(UrgentDataTest, ClientsUrgentByteIsEchoedInOrderWhileTheConnectionStaysOpen) {
  // An FTP client sends ABOR after the urgent byte and waits for the reply with
  // the connection open: a relay stuck at the mark never delivers the rest.
  EchoServer echo("127.0.0.2");
  std::unique_ptr<L4lb> l4lb = StartL4lb(echo.port());
  ASSERT_NE(l4lb, nullptr);
  const int fd = ConnectTcp("127.0.0.1", l4lb->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(10));
  std::string echoed;
  std::thread reader([&] { echoed = ReadN(fd, want_.size()); });
  const bool sent = SendAroundUrgentByte(fd, before_, after_);
  reader.join();
  EXPECT_TRUE(sent);
  ASSERT_EQ(echoed.size(), want_.size()) << "stalled at the urgent mark";
  EXPECT_TRUE(echoed == want_) << "bytes out of order or changed";
  // Still open and still relaying after the mark.
  ASSERT_TRUE(SendAll(fd, std::string("more")));
  EXPECT_EQ(ReadN(fd, 4), "more");
  shutdown(fd, SHUT_WR);
  int error = -1;
  EXPECT_EQ(ReadToEof(fd, &error), "");
  EXPECT_EQ(error, 0);
  close(fd);
}

TEST_P(UrgentDataTest, ClientsFinRightAfterTheUrgentByteDoesNotCutWhatCameBetween) {
  // With the FIN in, splice(2) at the urgent mark returns 0: read as an EOF, the
  // relay would forward a FIN before the urgent byte and what follows it.
  EchoServer echo("127.0.0.2");
  std::unique_ptr<L4lb> l4lb = StartL4lb(echo.port());
  ASSERT_NE(l4lb, nullptr);
  const int fd = ConnectTcp("127.0.0.1", l4lb->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(10));
  std::string echoed;
  int error = -1;
  std::thread reader([&] { echoed = ReadToEof(fd, &error); });
  EXPECT_TRUE(SendAroundUrgentByte(fd, before_, after_));
  shutdown(fd, SHUT_WR);
  reader.join();
  EXPECT_EQ(error, 0) << "not a clean end: " << strerror(error);
  ASSERT_EQ(echoed.size(), want_.size());
  EXPECT_TRUE(echoed == want_) << "bytes out of order or changed";
  close(fd);
}

TEST_P(UrgentDataTest, BackendsUrgentByteReachesTheClientInOrder) {
  // The other direction: a telnet or FTP server signalling the client.
  const std::string before = before_, after = after_;
  bool sent = false;
  OneShotServer backend("127.0.0.2", [&](int fd) {
    sent = SendAroundUrgentByte(fd, before, after);
    shutdown(fd, SHUT_WR);
    // Wait for the client's FIN: closing with bytes unread would reset.
    SetRecvTimeout(fd, absl::Seconds(10));
    ReadToEof(fd);
  });
  std::unique_ptr<L4lb> l4lb = StartL4lb(backend.port());
  ASSERT_NE(l4lb, nullptr);
  const int fd = ConnectTcp("127.0.0.1", l4lb->port());
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(10));
  int error = -1;
  const std::string got = ReadToEof(fd, &error);
  shutdown(fd, SHUT_WR);
  EXPECT_TRUE(backend.Join(absl::Seconds(10)));
  EXPECT_TRUE(sent);
  EXPECT_EQ(error, 0) << "not a clean end: " << strerror(error);
  ASSERT_EQ(got.size(), want_.size()) << "cut or stalled at the urgent mark";
  EXPECT_TRUE(got == want_) << "bytes out of order or changed";
  close(fd);
}

}  // namespace
}  // namespace l4lb::testing
