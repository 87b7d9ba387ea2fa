#include "l4lb/sni_flags.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gflags/gflags.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/command_line.h"
#include "l4lb/tls/sni_routes.h"

DEFINE_string(sni_routes, "",
              "TLS passthrough by server name (SNI): ROUTE;ROUTE..., each NAMES=BACKENDS, "
              "NAMES |-separated exact names or *.suffix wildcards, BACKENDS as --backends "
              "takes them; e.g. \"api.example.com=10.0.1.1:443,10.0.1.2:443;"
              "*.example.com|example.com=10.0.2.1:443\". --backends (optional then) is the "
              "default route for no SNI, no match or no TLS; without it those are refused. "
              "Each route's backends have the service's other settings (health, balance).");
DEFINE_string(sni_timeout, "5s",
              "With --sni_routes: the client's whole ClientHello must be in by then, or it "
              "is closed (bad_tls).");

namespace l4lb {
namespace {

constexpr const char* kFlags[] = {"sni_routes", "sni_timeout"};

absl::Status Bad(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

}  // namespace

absl::Span<const char* const> SniServiceFlags() { return kFlags; }

bool SniRoutesFlagSet() { return !FLAGS_sni_routes.empty(); }

absl::StatusOr<std::vector<Server::Service>> SniFlagsInto(Server::Service* front) {
  std::vector<Server::Service> pools;
  const bool timeout_set = !gflags::GetCommandLineFlagInfoOrDie("sni_timeout").is_default;
  if (FLAGS_sni_routes.empty()) {
    if (timeout_set) return Bad("sni_timeout", "needs --sni_routes");
    return pools;
  }
  if (front->protocol != Server::Protocol::kTcp) {
    return Bad("sni_routes", "only for tcp listeners (a ClientHello is a stream's start)");
  }
  absl::StatusOr<absl::Duration> timeout = DurationFromFlag("sni_timeout", FLAGS_sni_timeout);
  if (!timeout.ok()) return timeout.status();
  if (*timeout <= absl::ZeroDuration()) return Bad("sni_timeout", "must be above 0");
  front->sni_timeout = *timeout;
  std::vector<std::pair<std::vector<std::string>, int>> all;
  for (absl::string_view route : absl::StrSplit(FLAGS_sni_routes, ';', absl::SkipWhitespace())) {
    route = absl::StripAsciiWhitespace(route);
    const size_t eq = route.find('=');
    if (eq == absl::string_view::npos) {
      return Bad("sni_routes", absl::StrCat("\"", route, "\": want NAMES=BACKENDS"));
    }
    std::vector<std::string> names =
        absl::StrSplit(route.substr(0, eq), '|', absl::SkipWhitespace());
    if (names.empty()) return Bad("sni_routes", absl::StrCat("\"", route, "\": no names"));
    all.emplace_back(names, static_cast<int>(all.size()));
    if (absl::StatusOr<tls::SniRoutes> built = tls::SniRoutes::Build(all, {}); !built.ok()) {
      return Bad("sni_routes", built.status().message());
    }
    const std::string backends_text(route.substr(eq + 1));
    absl::StatusOr<std::vector<backend::BackendSpec>> backends =
        backend::ParseBackendList(backends_text);
    if (!backends.ok()) {
      // As --backends: addresses alone keep the port the client connected to.
      backends = backend::ParseBackendList(backends_text, backend::BackendPorts::kFromListener);
    }
    if (!backends.ok()) {
      return Bad("sni_routes", absl::StrCat("\"", route, "\": ", backends.status().message()));
    }
    Server::Service pool = *front;
    pool.name = absl::StrCat("sni:", names.front());
    pool.listen.clear();
    pool.backends = *std::move(backends);
    for (backend::BackendSpec& b : pool.backends) b.origin = "--sni_routes";
    pool.sni_routes.clear();
    front->sni_routes.push_back({.names = names, .service = pool.name});
    pools.push_back(std::move(pool));
  }
  return pools;
}

}  // namespace l4lb
