// l4lb: flags (or --config) -> Server::Options, start (reload/reloader.h), tell
// systemd, serve until SIGTERM/SIGINT (SIGHUP: reload; service_loop.h), drain,
// exit. Nothing else lives here.

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

#include "conf/config.h"
#include "health/checker.h"
#include "health/probe.h"
#include "l4lb/admin_flags.h"
#include "l4lb/admission_flags.h"
#include "l4lb/announce_flags.h"
#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/command_line.h"
#include "l4lb/connection_flags.h"
#include "l4lb/dns/refresher.h"
#include "l4lb/dns_flags.h"
#include "l4lb/sni_flags.h"
#include "l4lb/fd_budget.h"
#include "l4lb/health_flags.h"
#include "l4lb/net/congestion.h"
#include "l4lb/net/socket.h"
#include "l4lb/reload/reloader.h"
#include "l4lb/server.h"
#include "l4lb/service_loop.h"
#include "l4lb/takeover_flags.h"
#include "l4lb/upgrade.h"
#include "l4lb/udp/session_bound.h"
#include "l4lb/version.h"

DEFINE_string(
    config, "",
    "Load the services from this TOML file (one [[service]] table each, with its own "
    "listeners, backends and settings; see conf/examples/). The per-service flags "
    "(--listen, --backends, --hash_key, --maglev_table_size, --connect_*, "
    "--idle_timeout, --health_*, --kill_on_down, --slow_start, --affinity_ttl, --udp_*, "
    "--max_responses, --dns_*) are then refused; --threads, --access_log*, --pipe_size, "
    "--copy_bytes, --busy_poll, --*_congestion, --drain_timeout and --ready_file still apply.");
DEFINE_string(listen, "",
              "Comma-separated addresses to accept clients on: ADDRESS:PORT, IPv6 as "
              "[ADDRESS]:PORT, e.g. 0.0.0.0:9000,[::]:9000, or a port range "
              "ADDRESS:FIRST-LAST (e.g. FTP passive ports 0.0.0.0:30000-30099). Port 0 picks a "
              "free port (see --ready_file). Prefix udp:// for UDP (e.g. udp://0.0.0.0:53); "
              "tcp:// or nothing is TCP. All entries are one protocol; for both, use --config.");
DEFINE_string(backends, "",
              "Comma-separated backends: ADDRESS:PORT[=WEIGHT][@backup], e.g. "
              "10.0.0.1:80,10.0.0.2:80=3,[2001:db8::1]:80,10.0.0.9:80@backup. WEIGHT (1..10000, "
              "default 1) is the backend's relative share of new clients. @backup: new clients "
              "only while no other backend is UP and ready. Addresses without ports "
              "(10.0.0.1,10.0.0.2) send each client to the port it connected to (port-range "
              "listeners). A host name (ftp1.farm.internal:21) is one backend per address it "
              "resolves to, kept up to date (--dns_refresh, --dns_servers).");
DEFINE_int32(threads, 0, "Worker threads, each with its own io_uring ring (0: one per CPU).");
DEFINE_string(connect_timeout, "2s",
              "How long a backend connect may take before the next backend is tried "
              "(e.g. 500ms, 2s).");
DEFINE_int32(connect_retries, 2,
             "Further backends tried after a refused or timed-out connect (0..8); then the "
             "client is closed.");
DEFINE_string(idle_timeout, "600s",
              "Close a connection after this long with no byte in either direction (0: never).");
DEFINE_string(drain_timeout, "30s",
              "On SIGTERM/SIGINT: stop accepting and let live connections finish for this "
              "long, then cut them and exit 0. A second signal cuts at once. After a reload "
              "(SIGHUP), how long the replaced config's connections may go on.");
DEFINE_string(hash_key, "src_ip",
              "What picks the backend: src_ip (a client host always reaches the same backend, "
              "on every listener and every l4lb instance) or src_ip_port.");
DEFINE_uint32(maglev_table_size, 65537,
              "Maglev lookup table size: a prime, ideally above 100 x backends. Larger moves "
              "fewer clients when backends change; 4 bytes per slot.");
DEFINE_bool(access_log, true,
            "Log one line per connection at close: client, listener, backend, bytes each way, "
            "duration, close reason. Written by a logging thread: a slow log drops lines "
            "(counted, reported once a second), it never stalls a worker.");
DEFINE_int32(access_log_buffer, 1 << 20,
             "Bytes of access-log lines each worker can queue for the logging thread (about "
             "170 per line); a line that finds it full is dropped and counted. 1024..1G.");
DEFINE_string(ready_file, "",
              "Once listening, write the bound listen addresses here, one per line "
              "(\"tcp 127.0.0.1:9000\"): how scripts learn the port chosen for :0.");

DEFINE_int32(pipe_size, 262144,
             "Bytes each relay pipe holds (F_SETPIPE_SZ, rounded up to a power-of-two "
             "number of pages; 0: the kernel default, 64 KiB). Bounds what l4lb buffers "
             "per busy direction; pipes are held only while bytes are in flight. 256 KiB "
             "measured fastest (bench/RESULTS.md).");
DEFINE_int32(copy_bytes, 16384,
             "Reads start with a copy of up to this many bytes (recv + send through one "
             "per-thread buffer), which is cheaper than splice for small messages; a read "
             "that fills it switches the connection to zero-copy splice. 0: always splice. "
             "At most the pipe size.");
DEFINE_string(busy_poll, "50us",
              "After a pass that moved bulk data (64 KiB or more on one connection), a "
              "worker polls its ring this long before it sleeps, so the sender of the next "
              "burst need not wake it (bench/RESULTS.md). Connections moving small "
              "messages never make it spin. 0: always sleep at once.");
DEFINE_string(backend_congestion, "cubic",
              "TCP congestion control of connections to backends (\"\": the kernel's "
              "default, net.ipv4.tcp_congestion_control). The backend hop is a LAN: there "
              "bbr's pacing costs the balancer 2-3x the CPU per GB for no gain "
              "(bench/RESULTS.md). If cubic is missing, the kernel's default is kept.");
DEFINE_string(client_congestion, "",
              "TCP congestion control of client connections (\"\": the kernel's default, "
              "often bbr on hosts that face a WAN). Set on the listeners, which accepted "
              "sockets inherit.");

DEFINE_bool(kill_on_down, false,
            "Reset live connections to a backend when it goes DOWN (default: leave them, a "
            "long transfer may still be fine).");
DEFINE_string(slow_start, "0",
              "A backend that comes UP (after DOWN, or enabled from MAINT) starts with a tenth "
              "of its weight and reaches all of it in 10 steps over this long (e.g. 30s). "
              "0: at once. Not at l4lb's start.");
DEFINE_string(affinity_ttl, "0",
              "Pin each client IP to the backend it was sent to until this long after its last "
              "connection, even when backends change (e.g. 10m keeps an FTP session's control "
              "and data connections together). 0: off, clients follow the hash.");
DEFINE_string(udp_idle_timeout, "30s",
              "udp:// listeners: end a client's session (its own socket to the backend) after "
              "this long without a datagram either way.");
DEFINE_uint32(udp_max_sessions, 100000,
              "udp:// listeners: live sessions per worker (1..10000000); the least recently "
              "active one makes room for a new client. Only lowers the bound that the open-files "
              "limit and ip_local_port_range allow (logged at start-up).");
DEFINE_uint32(max_responses, 0,
              "udp:// listeners: end a session after this many replies from the backend (0: no "
              "limit; 1 suits DNS).");

#if defined(__SANITIZE_THREAD__)
// glog stamps each line via localtime_r -> glibc tzset, which serialises on a
// libc-internal lock that TSan cannot see (libc is not instrumented). And Debian's
// libcpp-httplib.so (the admin endpoint) is not instrumented either: TSan saw its
// memcpy and memcmp on a block one handler thread allocated, with synchronisation it
// cannot see. called_from_lib ignores only the interceptors that library calls; our
// handlers' own reads of the workers' counters are still checked.
extern "C" const char* __tsan_default_suppressions() {
  return "race:tzset_internal\ncalled_from_lib:libcpp-httplib.so\n";
}
#endif

namespace {

using l4lb::Server;
namespace net = l4lb::net;

// Operator mistakes: one line naming the flag, exit 2, never a stack trace.
[[noreturn]] void Die(absl::string_view flag, absl::string_view message) {
  fprintf(stderr, "l4lb: --%.*s: %.*s\n", static_cast<int>(flag.size()), flag.data(),
          static_cast<int>(message.size()), message.data());
  exit(2);
}

// A mistake whose message already says where: "l4lb: FILE:LINE:COL: what is
// wrong" for a config file, "l4lb: --flag: what is wrong" from ParseCommandLine.
// Exit 2.
[[noreturn]] void DieConfig(absl::string_view message) {
  fprintf(stderr, "l4lb: %.*s\n", static_cast<int>(message.size()), message.data());
  exit(2);
}

absl::Duration DurationFlag(absl::string_view flag, const std::string& value) {
  absl::StatusOr<absl::Duration> d = l4lb::DurationFromFlag(flag, value);
  if (!d.ok()) DieConfig(d.status().message());
  return *d;
}

const char* ProtocolName(Server::Protocol protocol) {
  return protocol == Server::Protocol::kUdp ? "udp" : "tcp";
}

// Flags that describe the one service the command line defines. With --config each
// service sets these in the file: a flag too would be ambiguous (which service?).
constexpr const char* kServiceFlags[] = {
    "listen",           "backends",           "hash_key",         "maglev_table_size",
    "connect_timeout",  "connect_retries",    "idle_timeout",     "health_check",
    "health_interval",  "health_timeout",     "health_rise",      "health_fall",
    "health_send",      "health_expect",      "health_port",      "health_http_path",
    "health_http_host", "health_http_status", "health_passive",   "kill_on_down",
    "affinity_ttl",     "udp_idle_timeout",   "udp_max_sessions", "max_responses",
    "slow_start"};
constexpr const char* kUdpFlags[] = {"udp_idle_timeout", "udp_max_sessions", "max_responses"};

bool FlagSet(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

// --listen: every entry bare or "tcp://" (TCP), or every entry "udp://".
std::vector<l4lb::net::SocketAddress> ListenFlag(Server::Protocol* protocol) {
  if (FLAGS_listen.empty()) Die("listen", "required, e.g. --listen=0.0.0.0:9000");
  std::vector<l4lb::net::SocketAddress> out;
  absl::string_view first;  // the first entry, as given
  for (absl::string_view entry : absl::StrSplit(FLAGS_listen, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    const absl::string_view text = entry;
    Server::Protocol entry_protocol = Server::Protocol::kTcp;
    if (absl::ConsumePrefix(&entry, "udp://")) {
      entry_protocol = Server::Protocol::kUdp;
    } else {
      absl::ConsumePrefix(&entry, "tcp://");
    }
    if (first.data() == nullptr) {
      first = text;
      *protocol = entry_protocol;
    } else if (entry_protocol != *protocol) {
      Die("listen", absl::StrCat("\"", text, "\" is ", ProtocolName(entry_protocol), " but \"",
                                 first, "\" is ", ProtocolName(*protocol),
                                 ": one protocol per --listen (for both, use --config)"));
    }
    absl::StatusOr<std::vector<l4lb::net::SocketAddress>> addresses =
        l4lb::net::ParseListenAddress(entry);
    if (!addresses.ok()) Die("listen", addresses.status().message());
    out.insert(out.end(), addresses->begin(), addresses->end());
  }
  return out;
}

// The one service the flags describe (without --config).
Server::Service ServiceFromFlags() {
  Server::Service service;
  service.listen = ListenFlag(&service.protocol);
  absl::StatusOr<std::vector<l4lb::backend::BackendSpec>> backends =
      l4lb::backend::ParseBackendList(FLAGS_backends);
  // With --sni_routes, --backends is only the default route: optional.
  if (FLAGS_backends.empty() && l4lb::SniRoutesFlagSet()) backends.emplace();
  if (!backends.ok()) {
    // Addresses alone ("10.0.0.1,10.0.0.2"): each client goes to the port it
    // connected to, which is what port-range listeners want.
    absl::StatusOr<std::vector<l4lb::backend::BackendSpec>> portless =
        l4lb::backend::ParseBackendList(FLAGS_backends, l4lb::backend::BackendPorts::kFromListener);
    if (!portless.ok()) Die("backends", backends.status().message());
    backends = std::move(portless);
  }
  service.backends = *std::move(backends);
  absl::StatusOr<l4lb::backend::HashKey> hash_key = l4lb::backend::ParseHashKey(FLAGS_hash_key);
  if (!hash_key.ok()) Die("hash_key", hash_key.status().message());
  service.hash_key = *hash_key;
  service.maglev_table_size = FLAGS_maglev_table_size;
  service.connect_timeout = DurationFlag("connect_timeout", FLAGS_connect_timeout);
  if (service.connect_timeout <= absl::ZeroDuration()) {
    Die("connect_timeout", "must be above 0");
  }
  if (FLAGS_connect_retries < 0 || FLAGS_connect_retries > 8) {
    Die("connect_retries", absl::StrCat(FLAGS_connect_retries, ": want 0..8"));
  }
  service.connect_retries = FLAGS_connect_retries;
  service.idle_timeout = DurationFlag("idle_timeout", FLAGS_idle_timeout);
  absl::StatusOr<l4lb::health::HealthOptions> health = l4lb::HealthFromFlags();
  if (!health.ok()) DieConfig(health.status().message());
  service.health = *std::move(health);
  // A TCP connect says nothing about a UDP server (most listen on UDP alone):
  // udp:// services are probed only when told how (--health_check=udp or dns).
  if (service.protocol == Server::Protocol::kUdp && !FlagSet("health_check")) {
    service.health.probe.kind = l4lb::health::ProbeSpec::Kind::kNone;
  }
  service.kill_on_down = FLAGS_kill_on_down;
  service.slow_start = DurationFlag("slow_start", FLAGS_slow_start);
  if (const absl::Duration ttl = DurationFlag("affinity_ttl", FLAGS_affinity_ttl);
      ttl > absl::ZeroDuration()) {
    service.affinity_group = "flags";
    service.affinity_ttl = ttl;
  }
  if (service.protocol == Server::Protocol::kTcp) {
    for (const char* flag : kUdpFlags) {
      if (FlagSet(flag)) Die(flag, "only for udp:// listeners");
    }
  }
  if (absl::Status st = l4lb::ConnectionFlagsInto(&service); !st.ok()) DieConfig(st.message());
  if (absl::Status st = l4lb::DnsFlagsInto(&service); !st.ok()) DieConfig(st.message());
  service.udp_idle_timeout = DurationFlag("udp_idle_timeout", FLAGS_udp_idle_timeout);
  if (service.udp_idle_timeout <= absl::ZeroDuration()) Die("udp_idle_timeout", "must be above 0");
  if (FLAGS_udp_max_sessions < 1 || FLAGS_udp_max_sessions > 10'000'000) {
    Die("udp_max_sessions", absl::StrCat(FLAGS_udp_max_sessions, ": want 1..10000000"));
  }
  service.udp_max_sessions = FLAGS_udp_max_sessions;
  service.max_responses = FLAGS_max_responses;
  absl::StatusOr<l4lb::admission::AdmissionOptions> admission = l4lb::AdmissionFromFlags();
  if (!admission.ok()) DieConfig(admission.status().message());
  service.admission = *std::move(admission);
  if (service.protocol == Server::Protocol::kUdp) {
    for (const char* flag : {"send_proxy", "accept_proxy_from", "proxy_timeout"}) {
      if (FlagSet(flag)) Die(flag, "only for tcp listeners (a PROXY header is a stream's start)");
    }
    if (FlagSet("client_bandwidth")) {
      Die("client_bandwidth", "only for tcp listeners (a UDP session has no backpressure)");
    }
  }
  return service;
}

// --config=FILE: the services (and its [admin] table into *admin), or one line
// naming the file, line and column.
std::vector<Server::Service> ServicesFromConfig(
    std::optional<l4lb::admin::AdminServer::Options>* admin) {
  for (absl::Span<const char* const> flags :
       {absl::MakeConstSpan(kServiceFlags), l4lb::AdmissionServiceFlags(),
        l4lb::ConnectionServiceFlags(), l4lb::DnsServiceFlags(), l4lb::SniServiceFlags()}) {
    for (const char* flag : flags) {
      if (FlagSet(flag)) {
        Die(flag, "cannot be combined with --config (set it per service in the file)");
      }
    }
  }
  absl::StatusOr<l4lb::conf::Config> config = l4lb::conf::LoadConfigFile(FLAGS_config);
  if (!config.ok()) DieConfig(config.status().message());
  *admin = std::move(config->admin);
  return std::move(config->services);
}

// A congestion control flag -> what sockets must be given: "" when it is the
// kernel's default anyway (no setsockopt per connection then). A name the kernel
// lacks is an error, unless it is our default (cubic is a module on some kernels).
std::string CongestionFromFlag(const char* flag, const std::string& value,
                               const absl::StatusOr<std::string>& system) {
  if (value.empty() || (system.ok() && *system == value)) return "";
  net::Fd probe(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) probe.Reset(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));  // v6-only
  const absl::Status status = net::SetCongestion(probe.get(), value);
  if (!status.ok()) {
    if (!gflags::GetCommandLineFlagInfoOrDie(flag).is_default) Die(flag, status.message());
    LOG(WARNING) << "--" << flag << "=" << value << ": " << status.message()
                 << "; keeping the kernel's default, " << system.value_or("unknown");
    return "";
  }
  return value;
}

Server::Options OptionsFromFlags() {
  Server::Options options;
  std::optional<l4lb::admin::AdminServer::Options> config_admin;
  if (FLAGS_config.empty()) {
    options.services.push_back(ServiceFromFlags());
    absl::StatusOr<std::vector<Server::Service>> pools =
        l4lb::SniFlagsInto(&options.services.front());
    if (!pools.ok()) DieConfig(pools.status().message());
    for (Server::Service& pool : *pools) options.services.push_back(std::move(pool));
  } else {
    options.services = ServicesFromConfig(&config_admin);
  }
  absl::StatusOr<std::optional<l4lb::admin::AdminServer::Options>> admin =
      l4lb::AdminFromFlags(std::move(config_admin));
  if (!admin.ok()) DieConfig(admin.status().message());
  options.admin = *std::move(admin);
  if (FLAGS_threads < 0 || FLAGS_threads > 1024) {
    Die("threads", absl::StrCat(FLAGS_threads, ": want 0..1024"));
  }
  options.threads =
      FLAGS_threads > 0 ? FLAGS_threads : std::max(1u, std::thread::hardware_concurrency());
  options.access_log = FLAGS_access_log;
  if (FLAGS_access_log_buffer < 1024 || FLAGS_access_log_buffer > (1 << 30)) {
    Die("access_log_buffer", absl::StrCat(FLAGS_access_log_buffer, ": want 1024..1G bytes"));
  }
  options.access_log_buffer = static_cast<size_t>(FLAGS_access_log_buffer);
  if (FLAGS_pipe_size < 0 || FLAGS_pipe_size > (1 << 30)) {
    Die("pipe_size", absl::StrCat(FLAGS_pipe_size, ": want 0 (kernel default) or 4096..1G"));
  }
  if (FLAGS_pipe_size > 0 && FLAGS_pipe_size < 4096) {
    Die("pipe_size", absl::StrCat(FLAGS_pipe_size, ": a pipe holds at least one page (4096)"));
  }
  options.pipe_size = FLAGS_pipe_size;
  const int pipe_bytes = FLAGS_pipe_size > 0 ? FLAGS_pipe_size : 65536;  // kernel default
  if (FLAGS_copy_bytes < 0 || FLAGS_copy_bytes > pipe_bytes) {
    Die("copy_bytes", absl::StrCat(FLAGS_copy_bytes, ": want 0..", pipe_bytes,
                                   " (the pipe size: bytes a full destination refuses wait "
                                   "in the pipe)"));
  }
  options.copy_bytes = static_cast<size_t>(FLAGS_copy_bytes);
  options.busy_poll = DurationFlag("busy_poll", FLAGS_busy_poll);
  if (options.busy_poll > absl::Milliseconds(10)) {
    Die("busy_poll", absl::StrCat(FLAGS_busy_poll, ": want 0..10ms"));
  }
  const absl::StatusOr<std::string> kernel_congestion = net::DefaultCongestion();
  options.client_congestion =
      CongestionFromFlag("client_congestion", FLAGS_client_congestion, kernel_congestion);
  options.backend_congestion =
      CongestionFromFlag("backend_congestion", FLAGS_backend_congestion, kernel_congestion);
  return options;
}

// SIGHUP, POST /reload: --config read again, everything else as at start-up
// (`globals`: the flags' part, which cannot change while l4lb runs). Errors are
// the file's "FILE:LINE:COL: what is wrong", or "--flag: ..." for [admin]
// clashing with the admin flags.
absl::StatusOr<Server::Options> ReloadOptions(const Server::Options& globals) {
  absl::StatusOr<l4lb::conf::Config> config = l4lb::conf::LoadConfigFile(FLAGS_config);
  if (!config.ok()) return config.status();
  Server::Options next = globals;
  next.services = std::move(config->services);
  absl::StatusOr<std::optional<l4lb::admin::AdminServer::Options>> admin =
      l4lb::AdminFromFlags(std::move(config->admin));
  if (!admin.ok()) return admin.status();
  next.admin = *std::move(admin);
  l4lb::BoundUdpSessions(next);
  return next;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;  // operators read stderr / the journal; --log_dir to change
  gflags::SetUsageMessage(
      "Usage: l4lb --listen=ADDR:PORT,... --backends=ADDR:PORT[=WEIGHT],... [FLAG]...\n"
      "  or:  l4lb --config=FILE [FLAG]...\n"
      "TCP/UDP layer-4 load balancer: relays each client's bytes untouched to a backend\n"
      "picked by consistent hashing (Maglev) of the client address.");
  gflags::SetVersionString(std::string(l4lb::Version()));
  // Not gflags::ParseCommandLineFlags: it exits 1 on a bad command line, and an
  // operator's mistake here is exit 2 with one line, like every other.
  gflags::SetArgv(argc, const_cast<const char**>(argv));
  l4lb::RememberCommandLine(argc, argv);  // before any flag is parsed out of argv
  if (absl::Status parsed = l4lb::ParseCommandLine(argc, argv); !parsed.ok()) {
    DieConfig(parsed.message());
  }
  l4lb::HandleHelpFlags(l4lb::VersionText());
  google::InitGoogleLogging(argv[0]);
  const absl::Duration drain_timeout = DurationFlag("drain_timeout", FLAGS_drain_timeout);
  l4lb::Server::Options options = OptionsFromFlags();

  // Before any thread starts: main alone takes the signals (service_loop.h).
  l4lb::BlockServiceSignals();

  if (!FLAGS_ready_file.empty()) {
    // Fail before binding anything: a bad path found after start would leave
    // workers running while main exits. Only FILE.tmp is tried: a script waiting
    // for FILE must never see it before the listeners are bound.
    const std::string tmp = FLAGS_ready_file + ".tmp";
    if (!std::ofstream(tmp, std::ios::trunc).good()) {
      Die("ready_file", absl::ErrnoToStatus(errno, tmp).message());
    }
    unlink(tmp.c_str());
  }
  // Before binding: a bad --announce is exit 2 like any flag, and a VIP left by
  // a killed run goes now, not once this one is ready.
  // A live upgrade: the running l4lb's listeners come before anything is bound
  // here, so that none is bound twice and none is ever closed.
  absl::StatusOr<l4lb::TakeoverStart> takeover = l4lb::TakeoverFromFlags(options.threads);
  if (!takeover.ok()) DieConfig(takeover.status().message());
  absl::StatusOr<std::unique_ptr<l4lb::announce::Announcer>> announcer =
      l4lb::AnnouncerFromFlags(/*inherit=*/takeover->taker.has_value());
  if (!announcer.ok()) DieConfig(announcer.status().message());
  l4lb::RaiseOpenFilesLimit();
  l4lb::BoundUdpSessions(options);
  options.max_connections = l4lb::MaxConnectionsFromFlag(
      /*reserved_fds=*/100 + options.services.size() * options.threads,
      std::any_of(options.services.begin(), options.services.end(),
                  [](const Server::Service& s) { return s.protocol == Server::Protocol::kUdp; }));
  // Backends by name: resolved now, off the workers, so a name that does not
  // resolve stops l4lb before it binds anything (exit 2, naming it and where it
  // was written); the refresher's thread keeps them current from then on.
  l4lb::dns::Refresher dns({});
  Server::Options resolved = options;
  if (absl::Status st = dns.Prepare(&resolved); !st.ok()) DieConfig(st.message());
  l4lb::reload::Reloader::Options service;
  service.inherited = &takeover->inherited;
  service.hold_accepts = takeover->taker.has_value();
  service.drain_timeout = drain_timeout;
  service.prepare = [&dns](Server::Options* next) { return dns.Prepare(next); };
  service.dns_refreshes = [&dns] {
    const l4lb::dns::Refresher::Counts c = dns.counts();
    return l4lb::admin::DnsRefreshes{
        .changed = c.changed, .unchanged = c.unchanged, .failure = c.failure};
  };
  if (!FLAGS_config.empty()) {
    service.load = [globals = options] { return ReloadOptions(globals); };
    service.file = FLAGS_config;
  }
  service.serving = [](const Server& running) {
    return l4lb::AnnounceListeners(running, FLAGS_ready_file);
  };
  absl::StatusOr<std::unique_ptr<l4lb::reload::Reloader>> server =
      l4lb::reload::Reloader::Create(options, std::move(service));
  // Inherited listeners this config does not have close now (as a reload closes
  // the ones it drops), so their clients are refused rather than left queued.
  takeover->inherited.clear();
  if (!server.ok()) {
    absl::string_view message = server.status().message();
    if (!FLAGS_config.empty()) DieConfig(absl::StrCat(FLAGS_config, ": ", message));
    const bool listen_error = absl::StartsWith(message, "bind ") ||
                              absl::StartsWith(message, "listen ") ||
                              absl::StartsWith(message, "socket for ");
    if (absl::ConsumePrefix(&message, "admin: ")) Die("admin", message);
    Die(listen_error                                       ? "listen"
        : absl::StartsWith(message, "maglev")              ? "maglev_table_size"
        : absl::StartsWith(message, "source")              ? "source"
        : absl::StartsWith(message, "transparent")         ? "transparent"
        : absl::StrContains(message, "congestion control") ? "client_congestion"
                                                           : "backends",
        message);
  }
  if (absl::Status started = (*server)->Start(); !started.ok()) {
    if (absl::IsDataLoss(started)) {  // AnnounceListeners could not write the ready file
      LOG(ERROR) << "--ready_file: " << started.message() << "; stopping";
      (*server)->ForceCloseAndJoin();
      return 2;
    }
    fprintf(stderr, "l4lb: cannot start workers: %s\n", started.ToString().c_str());
    return 1;
  }
  const std::string kernel_congestion = net::DefaultCongestion().value_or("unknown");
  for (const auto& [side, name] : {std::pair{"client", options.client_congestion},
                                   std::pair{"backend", options.backend_congestion}}) {
    if (!name.empty()) {
      LOG(INFO) << side << " connections use TCP congestion control " << name
                << " (the kernel's default is " << kernel_congestion << ")";
    }
  }
  const bool took_over = takeover->taker.has_value();
  if (absl::Status st = l4lb::CompleteTakeover(*takeover, **server); !st.ok()) {
    // Nothing was acknowledged: the running l4lb takes back what it sent.
    LOG(ERROR) << "takeover failed: " << st.message() << "; the running l4lb keeps serving";
    (*server)->ForceCloseAndJoin();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<l4lb::takeover::Donor>> donor =
      l4lb::DonorFromFlags(**server, options.threads);
  if (!donor.ok()) DieConfig(donor.status().message());
  dns.Start([reloader = server->get()] { return reloader->Republish().status.ok(); });
  LOG(INFO) << "l4lb " << l4lb::Version() << " ready";
  size_t listeners = 0;
  for (const Server::Service& s : options.services) listeners += s.listen.size();
  // After a takeover this process is the service's main one now (the unit's
  // NotifyAccess=all lets it say so).
  l4lb::NotifyServiceManager(absl::StrCat(took_over ? absl::StrCat("MAINPID=", getpid(), "\n") : "",
                                          "READY=1\nSTATUS=serving ", options.services.size(),
                                          " service(s) on ", listeners, " listener(s)",
                                          took_over ? " (took over)" : ""));
  l4lb::ServeUntilStopped(**server, drain_timeout, announcer->get(), donor->get());
  dns.Stop();  // before the reloader it publishes into goes
  LOG(INFO) << "exiting: " << (*server)->Totals().ToString();
  return 0;
}
