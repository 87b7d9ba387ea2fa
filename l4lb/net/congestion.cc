#include "l4lb/net/congestion.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace l4lb::net {
namespace {

constexpr char kProc[] = "/proc/sys/net/ipv4/";

absl::StatusOr<std::string> ReadProcLine(absl::string_view name) {
  const std::string path = absl::StrCat(kProc, name);
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line))
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string(absl::StripAsciiWhitespace(line));
}

}  // namespace

absl::StatusOr<std::string> DefaultCongestion() { return ReadProcLine("tcp_congestion_control"); }

absl::StatusOr<std::string> AvailableCongestion() {
  return ReadProcLine("tcp_available_congestion_control");
}

absl::Status SetCongestion(int fd, absl::string_view name) {
  if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(), name.size()) == 0) {
    return absl::OkStatus();
  }
  const int err = errno;
  if (err != ENOENT && err != EPERM) {
    return absl::ErrnoToStatus(err, absl::StrCat("TCP congestion control \"", name, "\""));
  }
  // ENOENT: no such module; EPERM: loaded but not in tcp_allowed_congestion_control
  // and we lack CAP_NET_ADMIN. Either way the operator needs the list.
  const absl::StatusOr<std::string> available =
      err == ENOENT ? AvailableCongestion() : ReadProcLine("tcp_allowed_congestion_control");
  return absl::InvalidArgumentError(absl::StrCat(
      err == ENOENT ? "no TCP congestion control \"" : "TCP congestion control \"", name,
      err == ENOENT ? "\" here" : "\" is not allowed without CAP_NET_ADMIN", " (",
      err == ENOENT ? "available" : "allowed", ": ", available.ok() ? *available : "unknown", ")"));
}

absl::StatusOr<std::string> GetCongestion(int fd) {
  char name[16] = {};  // TCP_CA_NAME_MAX, which only the kernel's headers define
  socklen_t len = sizeof(name);
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) {
    return absl::ErrnoToStatus(errno, "getsockopt TCP_CONGESTION");
  }
  return std::string(name, strnlen(name, len));
}

}  // namespace l4lb::net
