#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4lb::admission {

// Cidr is an address prefix in the 16-byte space of net::SocketAddress::IpBytes16():
// IPv4 prefixes are IPv4-mapped (::ffff:a.b.c.d, length + 96), so an IPv4
// client matches them whether it reached an IPv4 or a dual-stack [::] listener.
struct Cidr {
  std::array<uint8_t, 16> address{};  // bits past `length` are zero
  int length = 0;                     // 0..128, in the mapped space

  // "10.0.0.0/8", "2001:db8::/32", "[2001:db8::]/32", or a bare address (/32, /128).
  std::string ToString() const;
  friend bool operator==(const Cidr& a, const Cidr& b) {
    return a.address == b.address && a.length == b.length;
  }
};

// One prefix. Host bits set below the length ("10.0.0.1/8") are an error: they
// usually mean a typo in the length, and silently widening would let in more
// than the operator wrote. Errors quote the text.
absl::StatusOr<Cidr> ParseCidr(absl::string_view text);

// Comma-separated prefixes (a flag's value); empty entries are errors, an empty
// text is an empty list.
absl::StatusOr<std::vector<Cidr>> ParseCidrList(absl::string_view text);

// A file of prefixes, one a line; `#` starts a comment, blank lines are skipped.
// Errors name `path:LINE`.
absl::StatusOr<std::vector<Cidr>> ParseCidrFile(absl::string_view contents, absl::string_view path);
// Reads and parses the file at `path` (at start-up or reload, never on a worker).
absl::StatusOr<std::vector<Cidr>> LoadCidrFile(const std::string& path);

}  // namespace l4lb::admission
