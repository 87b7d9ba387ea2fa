#include "l4lb/dns/servers.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace l4lb::dns {

absl::StatusOr<std::vector<net::SocketAddress>> ParseServerList(absl::string_view text) {
  std::vector<net::SocketAddress> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty())
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": empty entry"));
    // No port: "[v6]", a bare v6 (two colons or more) or an IPv4 without a colon.
    const size_t colons = std::count(entry.begin(), entry.end(), ':');
    const bool bracketed = absl::StartsWith(entry, "[");
    const std::string full = bracketed && absl::EndsWith(entry, "]") ? absl::StrCat(entry, ":53")
                             : !bracketed && colons >= 2 ? absl::StrCat("[", entry, "]:53")
                             : !bracketed && colons == 0 ? absl::StrCat(entry, ":53")
                                                         : std::string(entry);
    absl::StatusOr<net::SocketAddress> address = net::SocketAddress::Parse(full);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": want a DNS server address, IP[:PORT] (e.g. 10.0.0.53, ",
                       "127.0.0.1:5353 or [2001:db8::53]:53)"));
    }
    if (address->port() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": port 0"));
    }
    out.push_back(*address);
  }
  return out;
}

}  // namespace l4lb::dns
