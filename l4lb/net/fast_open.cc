#include "l4lb/net/fast_open.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace l4lb::net {

absl::Status SetDeferAccept(int fd, bool on) {
  const int seconds = on ? kDeferAcceptSeconds : 0;
  if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof(seconds)) != 0) {
    return absl::ErrnoToStatus(errno, "TCP_DEFER_ACCEPT");
  }
  return absl::OkStatus();
}

absl::Status SetFastOpenConnect(int fd) {
  const int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on, sizeof(on)) != 0) {
    return absl::ErrnoToStatus(errno, "TCP_FASTOPEN_CONNECT");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ReadFastOpenSysctl() {
  // /proc/sys/net answers for the namespace of the thread that opens it.
  std::ifstream in("/proc/sys/net/ipv4/tcp_fastopen");
  std::string text;
  if (!std::getline(in, text)) {
    return absl::NotFoundError("cannot read /proc/sys/net/ipv4/tcp_fastopen");
  }
  int value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("/proc/sys/net/ipv4/tcp_fastopen: \"", text, "\" is not a number"));
  }
  return value;
}

absl::Status CheckFastOpenClient() {
  absl::StatusOr<int> sysctl = ReadFastOpenSysctl();
  if (!sysctl.ok()) return sysctl.status();
  if ((*sysctl & kFastOpenClientBit) != 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "net.ipv4.tcp_fastopen is ", *sysctl,
      ", without the client bit (1): backend connects go without Fast Open (sysctl -w "
      "net.ipv4.tcp_fastopen=", *sysctl | kFastOpenClientBit, ")"));
}

}  // namespace l4lb::net
