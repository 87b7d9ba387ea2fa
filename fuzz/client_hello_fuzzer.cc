// libFuzzer target: the TLS ClientHello parser (l4lb/tls/client_hello.h), which
// reads the first bytes of every connection to a TLS-routed service, and the SNI
// route table it feeds (l4lb/tls/sni_routes.h). Beyond "no crash, no leak, no
// hang" under ASan+UBSan it checks the contract a worker peeking a growing buffer
// relies on; fuzz/README.md says how to run it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

#include "l4lb/tls/client_hello.h"
#include "l4lb/tls/sni_routes.h"

namespace {

using l4lb::tls::ClientHelloResult;
using l4lb::tls::kMaxClientHelloBytes;
using l4lb::tls::kTlsRecordHeaderBytes;
using l4lb::tls::ParseClientHello;
using Kind = ClientHelloResult::Kind;

void Check(bool ok, const char* what) {
  if (ok) return;
  fprintf(stderr, "client_hello_fuzzer: broken contract: %s\n", what);
  abort();
}

bool SameAnswer(const ClientHelloResult& a, const ClientHelloResult& b) {
  return a.kind == b.kind && a.server_name == b.server_name && a.reason == b.reason;
}

// Every prefix of `bytes`, as a client sending it a byte at a time: kNeedMore
// (never past the bound), then one answer that more bytes do not change. Returns
// the answer and, in `at`, the prefix length that gave it (0: never decided).
ClientHelloResult Feed(absl::Span<const uint8_t> bytes, size_t max_bytes, size_t* at) {
  *at = 0;
  ClientHelloResult first;
  for (size_t n = 0; n <= bytes.size(); ++n) {
    ClientHelloResult r = ParseClientHello(bytes.first(n), max_bytes);
    if (*at == 0 && r.kind == Kind::kNeedMore) {
      Check(n < std::max(max_bytes, kTlsRecordHeaderBytes), "need more only within max_bytes");
      Check(r.server_name.empty() && r.reason.empty(), "need more carries no name or reason");
      // A worker peeks again only once this many are in: it must ask for more.
      Check(l4lb::tls::ClientHelloBytesWanted(bytes.first(n)) > n, "bytes wanted beyond held");
      continue;
    }
    if (*at == 0) {
      *at = n;
      first = std::move(r);
      continue;
    }
    Check(SameAnswer(r, first), "once decided, more bytes give the same answer");
  }
  return *at == 0 ? ParseClientHello(bytes, max_bytes) : first;
}

void CheckAnswer(const ClientHelloResult& r, size_t at) {
  switch (r.kind) {
    case Kind::kNeedMore:
      return;
    case Kind::kServerName: {
      Check(!r.server_name.empty() && r.reason.empty(), "a name and no reason");
      std::string again = r.server_name;
      Check(l4lb::tls::NormalizeServerName(&again).ok() && again == r.server_name,
            "the name is valid and already normalized (lowercase, no root dot)");
      return;
    }
    case Kind::kNoServerName:
      Check(r.server_name.empty() && r.reason.empty(), "no name, no reason");
      return;
    case Kind::kNotTls:
      Check(at >= 1 && at <= 3, "not TLS is told within 3 bytes");
      [[fallthrough]];
    case Kind::kMalformed:
      Check(r.server_name.empty() && !r.reason.empty(), "a reason and no name");
      return;
  }
  Check(false, "a kind out of the enum");
}

const l4lb::tls::SniRoutes& Routes() {
  static const l4lb::tls::SniRoutes* routes = [] {
    absl::StatusOr<l4lb::tls::SniRoutes> r = l4lb::tls::SniRoutes::Build(
        {{{"a.example.com", "example.com"}, 0}, {{"*.example.com"}, 1}, {{"*.b.example.com"}, 2}},
        9);
    Check(r.ok(), "the route table builds");
    return new l4lb::tls::SniRoutes(*std::move(r));
  }();
  return *routes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> bytes(data, size);
  size_t at = 0;
  const ClientHelloResult full = Feed(bytes, kMaxClientHelloBytes, &at);
  CheckAnswer(full, at);
  if (full.kind == Kind::kServerName || full.kind == Kind::kNoServerName) {
    // A complete hello of `at` bytes: that is exactly enough of a bound, one byte
    // less is "larger than" (the bound is a lower bound on what is still needed).
    Check(SameAnswer(ParseClientHello(bytes, at), full), "the hello's own size is enough");
    size_t small_at = 0;
    const ClientHelloResult small = Feed(bytes, at - 1, &small_at);
    Check(small.kind == Kind::kMalformed &&
              small.reason == absl::StrCat("ClientHello larger than ", at - 1, " bytes"),
          "one byte less than the hello is too small");
    Check(small_at > 0 && small_at < at, "too large is told before the last byte");
    // Every name the parser gives is one a route table can look up.
    const std::optional<int> route = Routes().Match(full.server_name);
    Check(route.has_value(), "the table has a default route");
    if (absl::EndsWith(full.server_name, ".example.com")) Check(*route != 9, "a wildcard matches");
  } else {
    // A small bound, cut anywhere: the contract holds at every size.
    const size_t small_bytes = size % 64;
    CheckAnswer(Feed(bytes, small_bytes, &at), at);
  }
  // Any bytes as a name: Match takes what NormalizeServerName would refuse.
  Routes().Match(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
