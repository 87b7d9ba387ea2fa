// l4lb: flags -> Server::Options, start, wait for SIGTERM/SIGINT, drain, exit.
// Nothing else lives here.

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

#include "health/checker.h"
#include "health/probe.h"
#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/server.h"

DEFINE_string(listen, "",
              "Comma-separated addresses to accept TCP clients on: ADDRESS:PORT, IPv6 as "
              "[ADDRESS]:PORT, e.g. 0.0.0.0:9000,[::]:9000, or a port range "
              "ADDRESS:FIRST-LAST (e.g. FTP passive ports 0.0.0.0:30000-30099). Port 0 picks a "
              "free port (see --ready_file).");
DEFINE_string(backends, "",
              "Comma-separated backends: ADDRESS:PORT[=WEIGHT], e.g. "
              "10.0.0.1:80,10.0.0.2:80=3,[2001:db8::1]:80. WEIGHT (1..10000, default 1) is the "
              "backend's relative share of new clients. Addresses without ports "
              "(10.0.0.1,10.0.0.2) send each client to the port it connected to (port-range "
              "listeners).");
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
              "long, then cut them and exit 0. A second signal cuts at once.");
DEFINE_string(hash_key, "src_ip",
              "What picks the backend: src_ip (a client host always reaches the same backend, "
              "on every listener and every l4lb instance) or src_ip_port.");
DEFINE_uint32(maglev_table_size, 65537,
              "Maglev lookup table size: a prime, ideally above 100 x backends. Larger moves "
              "fewer clients when backends change; 4 bytes per slot.");
DEFINE_bool(access_log, true,
            "Log one line per connection at close: client, listener, backend, bytes each way, "
            "duration, close reason.");
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

DEFINE_string(health_check, "tcp",
              "How backends are probed: tcp (connect), send_expect (--health_send, then the "
              "reply must start with --health_expect), ftp (a 220 greeting, then QUIT), ssh "
              "(an SSH-2.0 banner, then ours, then close), http (GET --health_http_path, "
              "status in --health_http_status), or none (every backend always up). Backends "
              "start UP, but one failed check takes a backend that never passed one DOWN; "
              "after that --health_fall failures in a row do.");
DEFINE_string(health_interval, "2s", "Time between two probes of a backend (+-10% jitter).");
DEFINE_string(health_timeout, "1s", "How long one probe may take (connect + reply).");
DEFINE_int32(health_rise, 2, "Passed checks in a row that bring a DOWN backend UP (1..100).");
DEFINE_int32(health_fall, 3, "Failed checks in a row that take an UP backend DOWN (1..100).");
DEFINE_string(health_send, "",
              "send_expect: bytes written after connect; escapes \\r \\n \\t \\xHH.");
DEFINE_string(health_expect, "", "send_expect: what the reply must start with; same escapes.");
DEFINE_int32(health_port, 0, "Probe this port instead of each backend's traffic port (0).");
DEFINE_string(health_http_path, "/", "http: the path to GET.");
DEFINE_string(health_http_host, "", "http: the Host header (default: the backend's address).");
DEFINE_string(health_http_status, "2xx,3xx", "http: accepted status classes.");
DEFINE_bool(health_passive, true,
            "Count refused or timed-out connects and resets seen on client traffic as failed "
            "checks, so a dead backend is ejected between probes.");
DEFINE_bool(kill_on_down, false,
            "Reset live connections to a backend when it goes DOWN (default: leave them, a "
            "long transfer may still be fine).");

#if defined(__SANITIZE_THREAD__)
// glog stamps each line via localtime_r -> glibc tzset, which serialises on a
// libc-internal lock that TSan cannot see (libc is not instrumented). Only that.
extern "C" const char* __tsan_default_suppressions() { return "race:tzset_internal\n"; }
#endif

namespace {

// Operator mistakes: one line naming the flag, exit 2, never a stack trace.
[[noreturn]] void Die(absl::string_view flag, absl::string_view message) {
  fprintf(stderr, "l4lb: --%.*s: %.*s\n", static_cast<int>(flag.size()), flag.data(),
          static_cast<int>(message.size()), message.data());
  exit(2);
}

absl::Duration DurationFlag(absl::string_view flag, const std::string& value) {
  absl::Duration d;
  if (value == "0") return absl::ZeroDuration();
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration()) {
    Die(flag, absl::StrCat("\"", value, "\": want a duration like 500ms, 2s or 5m"));
  }
  return d;
}

std::vector<l4lb::net::SocketAddress> ListenFlag() {
  if (FLAGS_listen.empty()) Die("listen", "required, e.g. --listen=0.0.0.0:9000");
  std::vector<l4lb::net::SocketAddress> out;
  for (absl::string_view entry : absl::StrSplit(FLAGS_listen, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    absl::StatusOr<std::vector<l4lb::net::SocketAddress>> addresses =
        l4lb::net::ParseListenAddress(entry);
    if (!addresses.ok()) Die("listen", addresses.status().message());
    out.insert(out.end(), addresses->begin(), addresses->end());
  }
  return out;
}

std::string UnescapeFlag(absl::string_view flag, const std::string& value) {
  absl::StatusOr<std::string> out = l4lb::health::Unescape(value);
  if (!out.ok()) Die(flag, out.status().message());
  return *out;
}

l4lb::health::HealthOptions HealthFromFlags() {
  l4lb::health::HealthOptions health;
  absl::StatusOr<l4lb::health::ProbeSpec::Kind> kind =
      l4lb::health::ParseProbeKind(FLAGS_health_check);
  if (!kind.ok()) Die("health_check", kind.status().message());
  health.probe.kind = *kind;
  health.interval = DurationFlag("health_interval", FLAGS_health_interval);
  if (health.interval <= absl::ZeroDuration()) Die("health_interval", "must be above 0");
  health.timeout = DurationFlag("health_timeout", FLAGS_health_timeout);
  if (health.timeout <= absl::ZeroDuration()) Die("health_timeout", "must be above 0");
  if (FLAGS_health_rise < 1 || FLAGS_health_rise > 100) {
    Die("health_rise", absl::StrCat(FLAGS_health_rise, ": want 1..100"));
  }
  if (FLAGS_health_fall < 1 || FLAGS_health_fall > 100) {
    Die("health_fall", absl::StrCat(FLAGS_health_fall, ": want 1..100"));
  }
  health.rise = FLAGS_health_rise;
  health.fall = FLAGS_health_fall;
  health.probe.send = UnescapeFlag("health_send", FLAGS_health_send);
  health.probe.expect = UnescapeFlag("health_expect", FLAGS_health_expect);
  if (health.probe.kind == l4lb::health::ProbeSpec::Kind::kSendExpect &&
      health.probe.expect.empty()) {
    Die("health_expect", "--health_check=send_expect needs what the reply starts with");
  }
  if (FLAGS_health_port < 0 || FLAGS_health_port > 65535) {
    Die("health_port", absl::StrCat(FLAGS_health_port, ": want 0..65535"));
  }
  health.probe.port = static_cast<uint16_t>(FLAGS_health_port);
  if (!absl::StartsWith(FLAGS_health_http_path, "/")) {
    Die("health_http_path",
        absl::StrCat("\"", FLAGS_health_http_path, "\": want a path like /healthz"));
  }
  health.probe.http_path = FLAGS_health_http_path;
  health.probe.http_host = FLAGS_health_http_host;
  absl::StatusOr<std::vector<char>> statuses =
      l4lb::health::ParseHttpStatuses(FLAGS_health_http_status);
  if (!statuses.ok()) Die("health_http_status", statuses.status().message());
  health.probe.http_statuses = *statuses;
  health.passive = FLAGS_health_passive;
  return health;
}

l4lb::Server::Options OptionsFromFlags() {
  l4lb::Server::Service service;
  service.listen = ListenFlag();
  absl::StatusOr<std::vector<l4lb::backend::BackendSpec>> backends =
      l4lb::backend::ParseBackendList(FLAGS_backends);
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
  service.health = HealthFromFlags();
  service.kill_on_down = FLAGS_kill_on_down;

  l4lb::Server::Options options;
  options.services.push_back(std::move(service));
  if (FLAGS_threads < 0 || FLAGS_threads > 1024) {
    Die("threads", absl::StrCat(FLAGS_threads, ": want 0..1024"));
  }
  options.threads =
      FLAGS_threads > 0 ? FLAGS_threads : std::max(1u, std::thread::hardware_concurrency());
  options.access_log = FLAGS_access_log;
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
  return options;
}

// Each TCP client holds two sockets, plus a pipe (two fds) per direction while
// bytes are in flight: the open-files limit is the connection limit.
void CheckOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  const uint64_t idle_connections = limit.rlim_cur > 100 ? (limit.rlim_cur - 100) / 2 : 0;
  if (limit.rlim_cur < 200000) {
    LOG(WARNING) << "open-files limit is " << limit.rlim_cur << ": room for about "
                 << idle_connections
                 << " concurrent TCP connections (2 sockets each, 2 more fds per busy "
                    "direction); raise it (ulimit -n, LimitNOFILE=) for more";
  } else {
    LOG(INFO) << "open-files limit " << limit.rlim_cur << ": about " << idle_connections
              << " concurrent TCP connections";
  }
}

// Written as FILE.tmp and renamed: readers never see half a list.
absl::Status WriteReadyFile(const std::vector<l4lb::net::SocketAddress>& listening) {
  const std::string tmp = FLAGS_ready_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& address : listening) out << "tcp " << address.ToString() << "\n";
    if (!out.good()) return absl::ErrnoToStatus(errno, tmp);
  }
  if (rename(tmp.c_str(), FLAGS_ready_file.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, FLAGS_ready_file);
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;  // operators read stderr / the journal; --log_dir to change
  gflags::SetUsageMessage(
      "TCP layer-4 load balancer.\n"
      "  l4lb --listen=0.0.0.0:9000 --backends=10.0.0.1:80,10.0.0.2:80=3\n"
      "Relays each client's bytes untouched to a backend picked by consistent hashing "
      "(Maglev) of the client address.");
  gflags::SetVersionString("0.1");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (argc > 1) {
    fprintf(stderr, "l4lb: unexpected argument \"%s\" (flags look like --listen=...)\n", argv[1]);
    return 2;
  }
  google::InitGoogleLogging(argv[0]);
  const absl::Duration drain_timeout = DurationFlag("drain_timeout", FLAGS_drain_timeout);
  l4lb::Server::Options options = OptionsFromFlags();

  // Block the stop signals in every thread (workers inherit the mask) so main
  // alone takes them with sigwait. SIGPIPE: a write to a closed peer is an error
  // code, not a reason to die.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (!FLAGS_ready_file.empty()) {
    // Fail before binding anything: a bad path found after start would leave
    // workers running while main exits.
    if (absl::Status s = WriteReadyFile({}); !s.ok()) Die("ready_file", s.message());
    unlink(FLAGS_ready_file.c_str());
  }
  CheckOpenFilesLimit();
  absl::StatusOr<std::unique_ptr<l4lb::Server>> server = l4lb::Server::Create(options);
  if (!server.ok()) {
    const absl::string_view message = server.status().message();
    const bool listen_error = absl::StartsWith(message, "bind ") ||
                              absl::StartsWith(message, "listen ") ||
                              absl::StartsWith(message, "socket for ");
    Die(listen_error                          ? "listen"
        : absl::StartsWith(message, "maglev") ? "maglev_table_size"
                                              : "backends",
        message);
  }
  if (absl::Status started = (*server)->Start(); !started.ok()) {
    fprintf(stderr, "l4lb: cannot start workers: %s\n", started.ToString().c_str());
    return 1;
  }
  for (const auto& address : (*server)->listening()) {
    LOG(INFO) << "listening on " << address.ToString() << " with " << options.threads
              << " worker(s), " << options.services[0].backends.size() << " backend(s)";
  }
  if (!FLAGS_ready_file.empty()) {
    if (absl::Status s = WriteReadyFile((*server)->listening()); !s.ok()) {
      LOG(ERROR) << "--ready_file: " << s.message() << "; stopping";
      (*server)->ForceCloseAndJoin();
      return 2;
    }
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LOG(INFO) << strsignal(signal_number) << ": draining, up to " << drain_timeout;
  (*server)->StopAccepting();
  const absl::Time deadline = absl::Now() + drain_timeout;
  const timespec poll_interval = absl::ToTimespec(absl::Milliseconds(50));
  while (!(*server)->Drained() && absl::Now() < deadline) {
    if (sigtimedwait(&stop_signals, nullptr, &poll_interval) > 0) {
      LOG(INFO) << "second signal: cutting live connections now";
      break;
    }
  }
  (*server)->ForceCloseAndJoin();
  LOG(INFO) << "exiting: " << (*server)->Totals().ToString();
  return 0;
}
