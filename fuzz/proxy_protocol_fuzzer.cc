// libFuzzer target: the PROXY protocol v1/v2 parser (l4lb/admission/proxy_protocol.h),
// which reads bytes from any client in accept_proxy_from. Beyond "no crash, no leak,
// no hang" under ASan+UBSan it checks the contract the worker relies on; fuzz/README.md
// says how to run it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/types/span.h"

#include "l4lb/admission/proxy_protocol.h"

namespace {

using l4lb::admission::ParseProxyHeader;
using l4lb::admission::ProxyCommand;
using l4lb::admission::ProxyHeader;
using l4lb::admission::ProxyParse;
using l4lb::admission::ProxyTransport;

void Check(bool ok, const char* what) {
  if (ok) return;
  fprintf(stderr, "proxy_protocol_fuzzer: broken contract: %s\n", what);
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> bytes(data, size);
  const absl::StatusOr<ProxyParse> r = ParseProxyHeader(bytes);
  if (!r.ok()) {
    Check(r.status().code() == absl::StatusCode::kInvalidArgument, "errors are InvalidArgument");
    return 0;
  }
  if (!r->header) {
    // Need more: the bound must leave room for at least one more byte, and stay
    // within what l4lb ever buffers.
    Check(r->max_total > size, "need-more bound above what was given");
    Check(r->max_total <= l4lb::admission::kProxyMaxHeaderBytes, "need-more bound <= 536");
    return 0;
  }
  const ProxyHeader& h = *r->header;
  Check(h.consumed > 0 && h.consumed <= size, "consumed within the input");
  Check(h.consumed <= l4lb::admission::kProxyMaxHeaderBytes, "consumed <= 536");
  // The header alone parses to the same header; one byte less is still a prefix.
  const absl::StatusOr<ProxyParse> exact = ParseProxyHeader(bytes.first(h.consumed));
  Check(exact.ok() && exact->header && exact->header->consumed == h.consumed &&
            exact->header->source == h.source,
        "the header alone parses the same");
  const absl::StatusOr<ProxyParse> shorter = ParseProxyHeader(bytes.first(h.consumed - 1));
  Check(shorter.ok() && !shorter->header, "a header's prefix needs more");
  // Addresses exactly when the command is PROXY over TCP or UDP, and they survive a
  // rebuild (TCP over the same family: what l4lb itself sends).
  const bool inet = h.transport != ProxyTransport::kUnspec;
  Check(inet == (h.source.family() != AF_UNSPEC), "addresses iff a TCP/UDP transport");
  Check(!inet || h.command == ProxyCommand::kProxy, "addresses only with PROXY");
  if (inet) {
    for (const std::string& again : {l4lb::admission::BuildProxyV1(h.source, h.destination),
                                     l4lb::admission::BuildProxyV2(h.source, h.destination)}) {
      const absl::StatusOr<ProxyParse> rebuilt = ParseProxyHeader(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(again.data()), again.size()));
      Check(rebuilt.ok() && rebuilt->header && rebuilt->header->source == h.source &&
                rebuilt->header->destination == h.destination &&
                rebuilt->header->consumed == again.size(),
            "build -> parse round trip");
    }
  }
  return 0;
}
