#include "l4lb/health_flags.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"

#include "health/probe.h"
#include "l4lb/command_line.h"

DEFINE_string(health_check, "tcp",
              "How backends are probed: tcp (connect), send_expect (--health_send, then the "
              "reply must start with --health_expect), ftp (a 220 greeting, then QUIT), ssh "
              "(an SSH-2.0 banner, then ours, then close), http (GET --health_http_path, "
              "status in --health_http_status), udp (a datagram of --health_send, the reply "
              "must start with --health_expect; an ICMP port unreachable fails at once), dns "
              "(a query for \".\" NS, any reply), or none (every backend always up). udp:// "
              "listeners default to none. Backends start UP, but one failed check takes a "
              "backend that never passed one DOWN; after that --health_fall failures in a row "
              "do.");
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

namespace l4lb {
namespace {

absl::Status FlagError(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

}  // namespace

absl::StatusOr<health::HealthOptions> HealthFromFlags() {
  health::HealthOptions health;
  absl::StatusOr<health::ProbeSpec::Kind> kind = health::ParseProbeKind(FLAGS_health_check);
  if (!kind.ok()) return FlagError("health_check", kind.status().message());
  health.probe.kind = *kind;
  absl::StatusOr<absl::Duration> interval = DurationFromFlag("health_interval", FLAGS_health_interval);
  if (!interval.ok()) return interval.status();
  health.interval = *interval;
  if (health.interval <= absl::ZeroDuration()) return FlagError("health_interval", "must be above 0");
  absl::StatusOr<absl::Duration> timeout = DurationFromFlag("health_timeout", FLAGS_health_timeout);
  if (!timeout.ok()) return timeout.status();
  health.timeout = *timeout;
  if (health.timeout <= absl::ZeroDuration()) return FlagError("health_timeout", "must be above 0");
  if (FLAGS_health_rise < 1 || FLAGS_health_rise > 100) {
    return FlagError("health_rise", absl::StrCat(FLAGS_health_rise, ": want 1..100"));
  }
  if (FLAGS_health_fall < 1 || FLAGS_health_fall > 100) {
    return FlagError("health_fall", absl::StrCat(FLAGS_health_fall, ": want 1..100"));
  }
  health.rise = FLAGS_health_rise;
  health.fall = FLAGS_health_fall;
  absl::StatusOr<std::string> send = health::Unescape(FLAGS_health_send);
  if (!send.ok()) return FlagError("health_send", send.status().message());
  health.probe.send = *send;
  absl::StatusOr<std::string> expect = health::Unescape(FLAGS_health_expect);
  if (!expect.ok()) return FlagError("health_expect", expect.status().message());
  health.probe.expect = *expect;
  if (health.probe.kind == health::ProbeSpec::Kind::kSendExpect && health.probe.expect.empty()) {
    return FlagError("health_expect", "--health_check=send_expect needs what the reply starts with");
  }
  if (FLAGS_health_port < 0 || FLAGS_health_port > 65535) {
    return FlagError("health_port", absl::StrCat(FLAGS_health_port, ": want 0..65535"));
  }
  health.probe.port = static_cast<uint16_t>(FLAGS_health_port);
  if (!absl::StartsWith(FLAGS_health_http_path, "/")) {
    return FlagError("health_http_path",
                     absl::StrCat("\"", FLAGS_health_http_path, "\": want a path like /healthz"));
  }
  health.probe.http_path = FLAGS_health_http_path;
  health.probe.http_host = FLAGS_health_http_host;
  absl::StatusOr<std::vector<char>> statuses = health::ParseHttpStatuses(FLAGS_health_http_status);
  if (!statuses.ok()) return FlagError("health_http_status", statuses.status().message());
  health.probe.http_statuses = *statuses;
  health.passive = FLAGS_health_passive;
  return health;
}

}  // namespace l4lb
