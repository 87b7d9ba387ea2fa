#include "l4lb/tls/sni_routes.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "l4lb/tls/client_hello.h"

namespace l4lb::tls {
namespace {

constexpr absl::string_view kWildcardPrefix = "*.";

absl::Status BadPattern(absl::string_view pattern, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("server name pattern \"", absl::CHexEscape(pattern), "\": ", why));
}

}  // namespace

absl::StatusOr<SniRoutes> SniRoutes::Build(
    const std::vector<std::pair<std::vector<std::string>, int>>& routes,
    std::optional<int> default_route) {
  if (default_route && *default_route < 0) {
    return absl::InvalidArgumentError(absl::StrCat("default route ", *default_route, " < 0"));
  }
  SniRoutes out;
  out.default_route_ = default_route;
  for (const auto& [names, index] : routes) {
    if (index < 0) return absl::InvalidArgumentError(absl::StrCat("route index ", index, " < 0"));
    if (names.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("route ", index, " has no server names"));
    }
    for (const std::string& pattern : names) {
      // Only a whole leftmost label may be a wildcard, as in nginx: "*foo.com"
      // and "a.*.com" would need a scan of every pattern to match.
      const bool wildcard = absl::StartsWith(pattern, kWildcardPrefix);
      std::string name = wildcard ? pattern.substr(kWildcardPrefix.size()) : pattern;
      if (absl::StrContains(name, '*')) {
        return BadPattern(pattern, "'*' only as a whole first label (\"*.example.com\")");
      }
      if (absl::Status valid = NormalizeServerName(&name); !valid.ok()) {
        return BadPattern(pattern, valid.message());
      }
      auto& table = wildcard ? out.wildcard_ : out.exact_;
      if (!table.try_emplace(name, index).second) {
        return BadPattern(pattern, "given twice");
      }
    }
  }
  return out;
}

std::optional<int> SniRoutes::Match(absl::string_view server_name) const {
  // The name from ParseClientHello is already normalized; others are made so
  // on the stack. Longer names than any pattern can match nothing.
  if (!server_name.empty() && server_name.back() == '.') server_name.remove_suffix(1);
  char lower[255];
  if (server_name.size() > sizeof(lower)) return default_route_;
  if (std::any_of(server_name.begin(), server_name.end(),
                  [](char c) { return absl::ascii_isupper(static_cast<unsigned char>(c)); })) {
    std::transform(server_name.begin(), server_name.end(), lower,
                   [](char c) { return absl::ascii_tolower(static_cast<unsigned char>(c)); });
    server_name = absl::string_view(lower, server_name.size());
  }
  if (std::optional<int> route = Find(server_name)) return route;
  return default_route_;
}

std::optional<int> SniRoutes::Find(absl::string_view name) const {
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  // "a.b.example.com" tries "b.example.com", then "example.com", then "com": the
  // first hit is the longest suffix, and the name itself is never a wildcard's.
  for (size_t dot = name.find('.'); dot != absl::string_view::npos; dot = name.find('.', dot + 1)) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  }
  return std::nullopt;
}

}  // namespace l4lb::tls
