#include "l4lb/dns/expand.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace l4lb::dns {
namespace {

auto SortKey(const net::SocketAddress& a) { return std::make_tuple(a.family(), a.IpBytes16()); }

}  // namespace

void Canonicalize(std::vector<net::SocketAddress>* addresses) {
  std::sort(addresses->begin(), addresses->end(),
            [](const net::SocketAddress& a, const net::SocketAddress& b) {
              return SortKey(a) < SortKey(b);
            });
  addresses->erase(std::unique(addresses->begin(), addresses->end()), addresses->end());
}

absl::StatusOr<std::vector<backend::BackendSpec>> Expand(
    const std::vector<backend::BackendSpec>& backends, const Addresses& resolved) {
  std::vector<backend::BackendSpec> out;
  absl::flat_hash_set<std::string> taken;
  for (const backend::BackendSpec& b : backends) {
    if (b.resolved()) taken.insert(b.name);
  }
  for (const backend::BackendSpec& b : backends) {
    if (b.resolved()) {
      out.push_back(b);
      continue;
    }
    const auto it = resolved.find(b.host);
    if (it == resolved.end() || it->second.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(b.name, ": not resolved"));
    }
    std::vector<net::SocketAddress> addresses = it->second;
    Canonicalize(&addresses);
    for (net::SocketAddress address : addresses) {
      address.set_port(b.port);
      backend::BackendSpec one = b;
      one.address = address;
      one.name = address.ToString();
      if (!taken.insert(one.name).second) continue;
      out.push_back(std::move(one));
    }
  }
  return out;
}

std::string JoinAddresses(const std::vector<net::SocketAddress>& addresses) {
  return absl::StrJoin(addresses, ", ", [](std::string* out, const net::SocketAddress& a) {
    const std::string text = a.ToString();
    absl::string_view shown = text;
    absl::ConsumeSuffix(&shown, ":0");
    out->append(shown.data(), shown.size());
  });
}

}  // namespace l4lb::dns
