#include "tests/harness/echo_l4lb.h"

#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace l4lb::testing {

std::unique_ptr<L4lb> StartL4lbBefore(const EchoServer& echo, std::vector<std::string> flags) {
  flags.insert(flags.begin(), {"--listen=127.0.0.1:0", "--threads=2", "--health_check=none",
                               absl::StrCat("--backends=127.0.0.2:", echo.port())});
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

bool Ping(uint16_t port, const std::string& source) {
  const int fd = ConnectTcp("127.0.0.1", port, source);
  if (fd < 0) return false;
  SetRecvTimeout(fd, absl::Seconds(5));
  SendAll(fd, "ping");
  shutdown(fd, SHUT_WR);
  const bool ok = ReadToEof(fd) == "ping";
  close(fd);
  return ok;
}

int Hold(uint16_t port, const std::string& source) {
  const int fd = ConnectTcp("127.0.0.1", port, source);
  if (fd < 0) return -1;
  SetRecvTimeout(fd, absl::Seconds(5));
  if (!SendAll(fd, "x") || ReadN(fd, 1) != "x") {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace l4lb::testing
