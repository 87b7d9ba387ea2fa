// libFuzzer target: the parsers behind l4lb's flags (each also reached from the
// config file): addresses (net::SocketAddress::Parse, --listen's
// ParseListenAddress), --backends (backend::ParseBackendList, both port modes),
// durations (main.cc's DurationFlag: absl::ParseDuration, "0", no negatives),
// --hash_key, --health_check, --health_http_status and the \xHH escapes of
// --health_send/--health_expect. Every input goes through all of them.
// fuzz/README.md says how to run it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"

#include "health/probe.h"
#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/net/address.h"

namespace {

namespace net = l4lb::net;
namespace backend = l4lb::backend;

void Check(bool ok, const char* what) {
  if (ok) return;
  fprintf(stderr, "flags_fuzzer: broken contract: %s\n", what);
  abort();
}

void CheckAddress(const net::SocketAddress& a) {
  Check(a.family() == AF_INET || a.family() == AF_INET6, "an IPv4 or IPv6 address");
  const absl::StatusOr<net::SocketAddress> again = net::SocketAddress::Parse(a.ToString());
  Check(again.ok() && *again == a, "ToString() parses back to the same address");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  if (absl::StatusOr<net::SocketAddress> a = net::SocketAddress::Parse(text); a.ok()) {
    CheckAddress(*a);
  }
  if (auto listen = net::ParseListenAddress(text); listen.ok()) {
    Check(!listen->empty() && listen->size() <= static_cast<size_t>(net::kMaxPortRange),
          "1..kMaxPortRange listen addresses");
    for (const net::SocketAddress& a : *listen) CheckAddress(a);
  }
  for (backend::BackendPorts ports :
       {backend::BackendPorts::kRequired, backend::BackendPorts::kFromListener}) {
    if (auto list = backend::ParseBackendList(text, ports); list.ok()) {
      Check(!list->empty(), "a parsed backend list is not empty");
      for (const backend::BackendSpec& b : *list) {
        Check(b.weight >= 1 && b.weight <= backend::kMaxWeight, "weight 1..kMaxWeight");
        Check(ports == backend::BackendPorts::kFromListener || b.target_port() != 0,
              "a port where one is required");
        // A host name stays unresolved (l4lb/dns/ resolves it), named as written.
        Check(b.resolved() ? b.name == b.address.ToString() && b.host.empty()
                           : !b.host.empty() && absl::StartsWith(b.name, b.host),
              "name is the address, or the host name as written");
      }
    }
  }

  // main.cc's DurationFlag: "0", or absl::ParseDuration and not negative. What it
  // accepts must format and parse back to the same value.
  absl::Duration d;
  if (text != "0" && absl::ParseDuration(text, &d) && d >= absl::ZeroDuration()) {
    absl::Duration again;
    Check(absl::ParseDuration(absl::FormatDuration(d), &again) && again == d,
          "a duration formats and parses back");
  }

  (void)backend::ParseHashKey(text);
  (void)l4lb::health::ParseProbeKind(text);
  if (auto statuses = l4lb::health::ParseHttpStatuses(text); statuses.ok()) {
    for (char c : *statuses) Check(c >= '1' && c <= '5', "status classes 1xx..5xx");
  }
  if (auto bytes = l4lb::health::Unescape(text); bytes.ok()) {
    Check(bytes->size() <= text.size(), "unescaping never grows the text");
  }
  return 0;
}
