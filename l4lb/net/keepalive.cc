#include "l4lb/net/keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace l4lb::net {
namespace {

constexpr int64_t kMaxSeconds = 32767;  // TCP_KEEPIDLE's and TCP_KEEPINTVL's bound

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\": ", why, "; want IDLE,INTERVAL,COUNT like 10m,1m,5, or off"));
}

}  // namespace

std::string Keepalive::ToString() const {
  if (!enabled()) return "off";
  return absl::StrCat(absl::FormatDuration(idle), ",", absl::FormatDuration(interval), ",", count);
}

absl::StatusOr<Keepalive> ParseKeepalive(absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty() || trimmed == "off") return Keepalive{};
  const std::vector<absl::string_view> parts = absl::StrSplit(trimmed, ',');
  if (parts.size() != 3) return Bad(text, "three parts needed");
  Keepalive k;
  for (int i = 0; i < 2; ++i) {
    absl::Duration d;
    const absl::string_view part = absl::StripAsciiWhitespace(parts[i]);
    const char* what = i == 0 ? "IDLE" : "INTERVAL";
    if (!absl::ParseDuration(part, &d)) return Bad(text, absl::StrCat(what, " is not a duration"));
    if (d < absl::Seconds(1) || d > absl::Seconds(kMaxSeconds) ||
        d != absl::Seconds(absl::ToInt64Seconds(d))) {
      return Bad(text, absl::StrCat(what, " must be whole seconds, 1s..", kMaxSeconds, "s"));
    }
    (i == 0 ? k.idle : k.interval) = d;
  }
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[2]), &k.count) || k.count < 1 ||
      k.count > 127) {
    return Bad(text, "COUNT must be 1..127");
  }
  return k;
}

absl::Status SetKeepalive(int fd, const Keepalive& k) {
  const int on = 1;
  const int idle = static_cast<int>(absl::ToInt64Seconds(k.idle));
  const int interval = static_cast<int>(absl::ToInt64Seconds(k.interval));
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &k.count, sizeof(k.count)) != 0) {
    return absl::ErrnoToStatus(errno, "TCP keepalive");
  }
  return absl::OkStatus();
}

absl::Status ClearKeepalive(int fd) {
  const int off = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &off, sizeof(off)) != 0) {
    return absl::ErrnoToStatus(errno, "TCP keepalive");
  }
  return absl::OkStatus();
}

}  // namespace l4lb::net
