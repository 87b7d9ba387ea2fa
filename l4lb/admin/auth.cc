#include "l4lb/admin/auth.h"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace l4lb::admin {

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path, ": ", strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  const std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty (want the token on one line)"));
  }
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the token holds whitespace (want one word on one line)"));
  }
  return token;
}

bool Authorized(absl::string_view authorization, absl::string_view token) {
  if (token.empty()) return true;
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  return TokenMatches(absl::StripAsciiWhitespace(authorization.substr(kScheme.size())), token);
}

bool TokenMatches(absl::string_view given, absl::string_view token) {
  if (token.empty()) return true;
  // Every byte of the token is compared whatever the result so far: the time
  // taken tells nothing about how much of a guess was right. Its length is no
  // secret worth the trouble.
  uint8_t diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<uint8_t>(token[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

bool IsLoopback(const net::SocketAddress& address) {
  const std::array<uint8_t, 16> ip = address.IpBytes16();
  static constexpr std::array<uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0,
                                                          0, 0, 0, 0, 0, 0, 0, 1};
  if (ip == kV6Loopback) return true;
  // IPv4 (and v4-mapped v6) 127/8.
  for (int i = 0; i < 10; ++i) {
    if (ip[i] != 0) return false;
  }
  return ip[10] == 0xff && ip[11] == 0xff && ip[12] == 127;
}

absl::Status CheckExposure(const net::SocketAddress& listen, bool has_token, bool allow_no_token) {
  if (has_token || allow_no_token || IsLoopback(listen)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      listen.ToString(),
      " is reachable from other hosts and no --admin_token_file protects it; set "
      "--admin_token_file=FILE (clients send \"Authorization: Bearer TOKEN\"), listen on "
      "127.0.0.1, or pass --admin_allow_no_token if anyone who reaches it may use it"));
}

}  // namespace l4lb::admin
