#include "l4lb/backend/backend_set.h"

#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace l4lb::backend {
namespace {

// RFC 1123 host names: dot-separated labels of letters, digits, '-' (not at
// either end) and '_' (SRV-style names some zones use), 1..63 bytes each, 253
// in all. A last label of digits alone is a mistyped IPv4 address ("10.0.0.300"),
// never a name: no top-level domain is numeric.
bool IsHostName(absl::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  if (text.back() == '.') text.remove_suffix(1);  // "farm.internal." is fully qualified
  bool all_digits = false;
  for (absl::string_view label : absl::StrSplit(text, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    all_digits = true;
    for (const char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
      all_digits &= absl::ascii_isdigit(c);
    }
  }
  return !all_digits;
}

// "HOST:PORT" (or "HOST" when the port comes from the listener) as a named,
// unresolved spec. Not OK: `text` is no host name (or its port is bad), and the
// error is the address parser's, unless only the host is wrong.
absl::StatusOr<BackendSpec> NamedSpec(absl::string_view entry, absl::string_view text,
                                      BackendPorts ports, absl::Status address_error) {
  BackendSpec spec;
  absl::string_view host = text;
  if (ports == BackendPorts::kRequired) {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || text.front() == '[') return address_error;
    host = text.substr(0, colon);
    const absl::string_view port_text = text.substr(colon + 1);
    uint32_t port = 0;
    if (port_text.empty() || port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(port_text, &port) || port > 65535) {
      return address_error;
    }
    spec.port = static_cast<uint16_t>(port);
    if (spec.port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": backend port 0"));
    }
  }
  if (!IsHostName(host)) {
    if (ports == BackendPorts::kFromListener || host.find(':') != absl::string_view::npos) {
      return address_error;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("\"", entry, "\": neither an IPv4 address nor a host name"));
  }
  spec.host = absl::AsciiStrToLower(host);  // DNS names are case-insensitive
  spec.name =
      ports == BackendPorts::kRequired ? absl::StrCat(spec.host, ":", spec.port) : spec.host;
  return spec;
}

}  // namespace

absl::StatusOr<std::vector<BackendSpec>> ParseBackendList(absl::string_view text,
                                                          BackendPorts ports) {
  std::vector<BackendSpec> out;
  absl::flat_hash_set<std::string> seen;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("empty backend list (want ADDRESS:PORT[=WEIGHT][@backup],...)");
  }
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": empty entry"));
    }
    BackendSpec spec;
    absl::string_view address_text = entry;
    // '@' never appears in an address either: what follows the last one is a flag.
    if (const size_t at = address_text.rfind('@'); at != absl::string_view::npos) {
      if (address_text.substr(at + 1) != "backup") {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", entry, "\": want @backup after the address or weight"));
      }
      spec.backup = true;
      address_text = address_text.substr(0, at);
    }
    // '=' never appears in an address, so the last one starts the weight.
    if (const size_t eq = address_text.rfind('='); eq != absl::string_view::npos) {
      const absl::string_view weight_text = address_text.substr(eq + 1);
      address_text = address_text.substr(0, eq);
      if (weight_text.empty() ||
          weight_text.find_first_not_of("0123456789") != absl::string_view::npos ||
          !absl::SimpleAtoi(weight_text, &spec.weight) || spec.weight < 1 ||
          spec.weight > kMaxWeight) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", entry, "\": weight must be 1..", kMaxWeight));
      }
    }
    absl::StatusOr<net::SocketAddress> address = net::SocketAddress::Parse(
        ports == BackendPorts::kRequired ? std::string(address_text)
                                         : absl::StrCat(address_text, ":0"));
    if (!address.ok()) {
      absl::Status error = address.status();
      if (ports == BackendPorts::kFromListener) {
        error = absl::InvalidArgumentError(
            absl::StrCat("\"", entry,
                         "\": want an address or host name without a port (the client's "
                         "port is used), e.g. 10.0.0.1, [2001:db8::1] or ftp1.farm.internal"));
      }
      absl::StatusOr<BackendSpec> named = NamedSpec(entry, address_text, ports, error);
      if (!named.ok()) return named.status();
      named->weight = spec.weight;
      named->backup = spec.backup;
      if (!seen.insert(named->name).second) {
        return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": listed twice"));
      }
      out.push_back(*std::move(named));
      continue;
    }
    if (ports == BackendPorts::kRequired && address->port() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": backend port 0"));
    }
    spec.address = *address;
    spec.name = address->ToString();
    if (!seen.insert(spec.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("\"", entry, "\": listed twice"));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

}  // namespace l4lb::backend
