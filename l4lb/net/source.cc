#include "l4lb/net/source.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "l4lb/net/socket.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace l4lb::net {

absl::StatusOr<std::vector<SocketAddress>> ParseSourceList(absl::string_view text) {
  std::vector<SocketAddress> out;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": an empty entry"));
    }
    // "[v6]" or bare v6 (two colons or more); one colon is an IPv4 with a port.
    const size_t colons = std::count(entry.begin(), entry.end(), ':');
    const bool bracketed = absl::StartsWith(entry, "[");
    if ((bracketed && !absl::EndsWith(entry, "]")) || (!bracketed && colons == 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": a source is an address without a port"));
    }
    const std::string with_port = !bracketed && colons >= 2 ? absl::StrCat("[", entry, "]:0")
                                                            : absl::StrCat(entry, ":0");
    absl::StatusOr<SocketAddress> address = SocketAddress::Parse(with_port);
    if (!address.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": not an IP address"));
    }
    if (address->is_wildcard()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": a wildcard is no source (it is the default)"));
    }
    out.push_back(*address);
  }
  return out;
}

absl::Status BindSource(int fd, const SocketAddress& source) {
  const int one = 1;
  // Best effort: kernels before 4.2 lack it, and bind then takes a port at once.
  (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (bind(fd, source.sockaddr_ptr(), source.sockaddr_len()) != 0) {
    std::string address = source.ToString();
    address.resize(address.size() - 2);  // ":0"
    return absl::ErrnoToStatus(errno, absl::StrCat("source ", address, ": bind"));
  }
  return absl::OkStatus();
}

absl::Status CheckSource(const SocketAddress& source) {
  absl::StatusOr<Fd> fd = OpenTcpClientSocket(source.family());
  if (!fd.ok()) return fd.status();
  return BindSource(fd->get(), source);
}

}  // namespace l4lb::net
