#include "l4lb/dns/servers.h"

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
    if (entry.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": empty entry"));
    // No port: IPv4 without a colon, IPv6 without brackets (two colons or more).
    const size_t colons = entry.front() == '[' ? 1 : absl::StrContains(entry, ':') +
                                                         (entry.find(':') != entry.rfind(':'));
    const std::string full = colons == 0   ? absl::StrCat(entry, ":53")
                             : colons == 1 ? std::string(entry)
                                           : absl::StrCat("[", entry, "]:53");
    absl::StatusOr<net::SocketAddress> address = net::SocketAddress::Parse(full);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": want a DNS server address, IP[:PORT] (e.g. 10.0.0.53 ",
                       "or 127.0.0.1:5353; IPv6 in brackets with a port)"));
    }
    if (address->port() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": port 0"));
    }
    out.push_back(*address);
  }
  return out;
}

}  // namespace l4lb::dns
