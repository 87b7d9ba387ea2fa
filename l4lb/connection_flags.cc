#include "l4lb/connection_flags.h"

#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"

#include "l4lb/balancer/policy.h"
#include "l4lb/command_line.h"
#include "l4lb/net/keepalive.h"
#include "l4lb/net/source.h"

DEFINE_string(balance, "maglev",
              "How a new connection's backend is picked: maglev (consistent hash of the client: "
              "every listener and instance agrees), maglev_bounded (the same, but a backend "
              "above --balance_factor x its share of the active connections is skipped), "
              "least_conn (fewest active connections per weight) or round_robin (weighted). "
              "TCP only for all but maglev.");
DEFINE_double(balance_factor, 1.25,
              "maglev_bounded: how far above its weighted share of the active connections a "
              "backend may go before clients skip it (above 1, at most 100).");
DEFINE_string(client_keepalive, "off",
              "TCP keepalive towards clients: IDLE,INTERVAL,COUNT (e.g. 10m,1m,5: probe after "
              "10 minutes of silence, every minute, reset after 5 unanswered), or off. Keeps "
              "an idle FTP control connection alive through NATs and firewalls.");
DEFINE_string(backend_keepalive, "off", "TCP keepalive towards backends, like --client_keepalive.");
DEFINE_string(source, "",
              "Local addresses for backend connections, comma-separated (e.g. 10.0.0.5 or "
              "10.0.0.5,10.0.0.6), taken in turn: the address backends see on a multi-homed "
              "host, and one more local port range per address. Empty: the kernel's choice.");
DEFINE_bool(transparent, false,
            "Connect to backends from each client's own address (IP_TRANSPARENT): backends "
            "see real clients without the PROXY protocol. Needs CAP_NET_ADMIN and a route "
            "that delivers the backends' replies to this host (README \"Transparent mode\"). "
            "Not with --source.");
DEFINE_string(client_fin_timeout, "0",
              "Cut a connection once one direction has ended (a FIN went one way) and no byte "
              "has moved for this long (e.g. 30s): a peer that never finishes its half-close "
              "cannot hold it forever. 0: only --idle_timeout.");
DEFINE_string(client_timeout, "0",
              "Cut a connection once l4lb has waited this long on the client (e.g. 30s) with "
              "no byte from or to it: a client that went away or stopped reading (HAProxy's "
              "timeout client). Not while its bytes wait for the backend. 0: off.");
DEFINE_string(backend_timeout, "0",
              "The same on the backend side (HAProxy's timeout server): a backend that stopped "
              "answering or reading. 0: off.");

DEFINE_bool(defer_accept, false,
            "TCP_DEFER_ACCEPT on the listeners: a connection reaches l4lb only once the "
            "client's first bytes are there (fewer wake-ups per short connection). For "
            "client-first protocols (HTTP, TLS) only: a client that waits for the server "
            "(FTP, SSH, SMTP) is accepted about 1 s late. HAProxy's defer-accept.");
DEFINE_bool(backend_tfo, false,
            "TCP Fast Open to backends: the client's first bytes ride in the SYN once a "
            "backend has given l4lb a cookie (backends must enable TFO, e.g. nginx listen "
            "fastopen=N, and net.ipv4.tcp_fastopen have bit 1 here, bit 2 on the backend). "
            "Client-first protocols only: a connect that carries data cannot be retried on "
            "another backend, and one whose client never speaks is never opened. HAProxy's "
            "server tfo.");

namespace l4lb {
namespace {

constexpr const char* kFlags[] = {"balance",         "balance_factor",    "client_keepalive",
                                  "backend_keepalive", "client_fin_timeout", "client_timeout",
                                  "backend_timeout", "source",            "transparent",
                                  "defer_accept",    "backend_tfo"};

bool Set(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

absl::Status Bad(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

}  // namespace

absl::Span<const char* const> ConnectionServiceFlags() { return kFlags; }

absl::Status ConnectionFlagsInto(Server::Service* service) {
  absl::StatusOr<balancer::Balance> balance = balancer::ParseBalance(FLAGS_balance);
  if (!balance.ok()) return Bad("balance", balance.status().message());
  if (!(FLAGS_balance_factor > 1.0 && FLAGS_balance_factor <= 100.0)) {
    return Bad("balance_factor", absl::StrCat(FLAGS_balance_factor, ": want above 1, at most 100"));
  }
  service->balance_factor = FLAGS_balance_factor;
  if (service->protocol == Server::Protocol::kUdp) {
    for (const char* flag :
         {"client_keepalive", "backend_keepalive", "client_fin_timeout", "client_timeout",
          "backend_timeout", "source", "transparent", "defer_accept", "backend_tfo"}) {
      if (Set(flag)) return Bad(flag, "only for tcp listeners");
    }
    if (*balance != balancer::Balance::kMaglev) return Bad("balance", "only maglev for udp:// listeners");
    return absl::OkStatus();
  }
  service->balance = *balance;
  for (const auto& [flag, value, keepalive] :
       {std::tuple{"client_keepalive", &FLAGS_client_keepalive, &service->client_keepalive},
        std::tuple{"backend_keepalive", &FLAGS_backend_keepalive, &service->backend_keepalive}}) {
    absl::StatusOr<net::Keepalive> parsed = net::ParseKeepalive(*value);
    if (!parsed.ok()) return Bad(flag, parsed.status().message());
    *keepalive = *parsed;
  }
  for (const auto& [flag, value, duration] :
       {std::tuple{"client_fin_timeout", &FLAGS_client_fin_timeout, &service->client_fin_timeout},
        std::tuple{"client_timeout", &FLAGS_client_timeout, &service->client_timeout},
        std::tuple{"backend_timeout", &FLAGS_backend_timeout, &service->backend_timeout}}) {
    absl::StatusOr<absl::Duration> parsed = DurationFromFlag(flag, *value);
    if (!parsed.ok()) return parsed.status();
    *duration = *parsed;
  }
  if (!FLAGS_source.empty()) {
    absl::StatusOr<std::vector<net::SocketAddress>> source = net::ParseSourceList(FLAGS_source);
    if (!source.ok()) return Bad("source", source.status().message());
    service->source = *std::move(source);
  }
  if (FLAGS_transparent && !FLAGS_source.empty()) {
    return Bad("transparent", "not with --source (the client's address is the source)");
  }
  service->transparent = FLAGS_transparent;
  service->defer_accept = FLAGS_defer_accept;
  service->backend_tfo = FLAGS_backend_tfo;
  return absl::OkStatus();
}

}  // namespace l4lb
