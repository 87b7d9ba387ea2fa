#include "l4lb/net/fast_open.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
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

absl::Status SetFastOpenConnect(int fd, int syn_retries) {
  const int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on, sizeof(on)) != 0) {
    return absl::ErrnoToStatus(errno, "TCP_FASTOPEN_CONNECT");
  }
  if (setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syn_retries, sizeof(syn_retries)) != 0) {
    return absl::ErrnoToStatus(errno, "TCP_SYNCNT");
  }
  return absl::OkStatus();
}

int SynRetriesWithin(absl::Duration timeout) {
  // The SYN goes at 0 s, retransmission k after a backoff of min(2^k, 120) s
  // (TCP_TIMEOUT_INIT doubling up to TCP_RTO_MAX); the connect fails one more
  // backoff after the last: n retries wait sum_{k=0..n} min(2^k, 120) s.
  constexpr int64_t kRtoMaxSeconds = 120;
  int n = 1;
  int64_t waited = 1 + 2;
  while (n < 127 && absl::Seconds(waited) < timeout) {
    ++n;
    waited += std::min(int64_t{1} << std::min(n, 62), kRtoMaxSeconds);
  }
  return n;
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
