#pragma once

// HTTP requests to l4lb's admin endpoint through Debian's curl: a real client,
// not ours (admin, actions and status-page tests).

#include <cstdint>
#include <string>

namespace l4lb::testing {

struct HttpReply {
  int code = 0;         // 0: curl failed (no answer within 5 s, refused)
  std::string headers;  // the response's header block
  std::string body;
};

// `method` (GET, POST, DELETE) on http://127.0.0.1:port/path, with
// "Authorization: Bearer token" unless `token` is empty.
HttpReply Http(const std::string& method, uint16_t port, const std::string& path,
               const std::string& token = "");

}  // namespace l4lb::testing
