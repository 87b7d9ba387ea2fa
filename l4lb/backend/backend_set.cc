#include "l4lb/backend/backend_set.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace l4lb::backend {

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
      if (ports == BackendPorts::kFromListener) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", entry,
                         "\": want an address without a port (the client's port "
                         "is used), e.g. 10.0.0.1 or [2001:db8::1]"));
      }
      return address.status();
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
