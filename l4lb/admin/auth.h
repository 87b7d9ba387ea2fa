#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::admin {

// Who may use the admin endpoint: anyone who can reach it, or, with a token
// (--admin_token_file), only requests that carry it as "Authorization: Bearer
// TOKEN". Metrics tell an attacker which backends are down and how loaded;
// later actions drain backends: off loopback, a token is required unless the
// operator says otherwise.
//
// Thread safety: pure functions.

// The token in `path`: its content with surrounding whitespace (the trailing
// newline of `echo secret > file`) trimmed. "PATH: <strerror>", or "PATH: empty".
absl::StatusOr<std::string> ReadToken(const std::string& path);

// Whether an Authorization header value carries `token` ("Bearer TOKEN"; the
// scheme's case is free, RFC 7235). Time independent of where a wrong token
// first differs, so it cannot be guessed byte by byte. An empty token accepts
// everything (no token configured).
bool Authorized(absl::string_view authorization, absl::string_view token);

// Whether `given` is `token`, in the same time-independent way. For the status
// page alone, which a browser opens from a typed or bookmarked URL and so
// cannot send a header: AdminServer accepts GET /?token=TOKEN. The page then
// sends the token as a header; every route that reads data or acts needs it.
bool TokenMatches(absl::string_view given, absl::string_view token);

// 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104.
bool IsLoopback(const net::SocketAddress& address);

// OK unless `listen` is reachable from other hosts and no token protects it
// (`allow_no_token`: the operator means it). The error says what to do.
absl::Status CheckExposure(const net::SocketAddress& listen, bool has_token, bool allow_no_token);

}  // namespace l4lb::admin
