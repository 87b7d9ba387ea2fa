#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "l4lb/admission/acl.h"
#include "l4lb/admission/cidr.h"
#include "l4lb/admission/limits.h"

namespace l4lb::admission {

// What a service lets in, before any backend is picked (README "Access
// control"): the access list, the service's connection bound and the
// per-client limits and bans.
struct AdmissionOptions {
  std::vector<Cidr> allow;       // allow + allow_file; empty: everyone
  std::vector<Cidr> deny;        // deny + deny_file; wins over allow
  uint32_t max_connections = 0;  // the service's live connections; 0: no bound
  // client_max_connections, client_rate (+ client_burst), client_prefix_v4/v6,
  // ban_after, ban_window, ban_time, client_table_size.
  ClientLimits::Options client;
  // PROXY protocol (admission/proxy_protocol.h): the header sent to backends
  // before any client byte, and the peers that must send one (their header's
  // source address is then the client for everything above).
  enum class SendProxy : uint8_t { kOff, kV1, kV2 };
  SendProxy send_proxy = SendProxy::kOff;
  std::vector<Cidr> accept_proxy_from;
  absl::Duration proxy_timeout = absl::Seconds(3);  // a whole header within this
};

// "20/s", "600/m", "3600/h": connections per second. Errors quote the text.
absl::StatusOr<double> ParseRate(absl::string_view text);

// "10MiB/s", "500KB/s", "1G", "1000000": bytes per second (K, M, G are 1000s,
// KiB, MiB, GiB 1024s; "/s" optional). Errors quote the text.
absl::StatusOr<uint64_t> ParseBandwidth(absl::string_view text);

// The default process-wide bound on live TCP connections: what `open_files`
// allows after `reserved_fds` (listeners, rings, logs) and, with UDP services,
// the half they keep for sessions (udp/session_bound.h). A connection holds two
// sockets, and a pipe (two fds) per direction only while bytes wait in it:
// three fds each covers half of them streaming at once. Past that a worker
// meets EMFILE and backs off (worker_tcp.cc) instead of failing.
uint32_t ConnectionBudget(uint64_t open_files, uint64_t reserved_fds, bool udp_services);

// Why a client was turned away; printed in the access log as close=<name>.
enum class Refusal : uint8_t { kNone, kDenied, kLimited, kBanned };
const char* RefusalName(Refusal refusal);

// Admission is one service's gate, shared by its workers (and, for bans, by
// the admin API). Decide() at accept (TCP) or at a new session (UDP) with the
// client's real address; an admitted client's Pass goes back through Leave()
// when it is gone.
//
// Thread safety: every method from any thread. The access list is immutable;
// the service bound is one atomic (a relaxed fetch_add per admitted client,
// like HAProxy's maxconn); per-client state is ClientLimits' sharded table.
class Admission {
 public:
  struct Pass {
    ClientLimits::Ticket ticket;
    bool counted = false;  // holds a place under max_connections
  };

  explicit Admission(const AdmissionOptions& options);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // kNone admits and fills `pass`. Checks in order: deny/allow, the client's
  // ban, rate and concurrency, then the service's bound.
  Refusal Decide(const std::array<uint8_t, 16>& client, int64_t now_ns, Pass* pass);
  // `client`: the address Decide() admitted.
  void Leave(const std::array<uint8_t, 16>& client, Pass& pass);

  // Nothing to check: Decide() would admit everyone (the worker skips it).
  bool open() const { return open_ && !admin_bans_.load(std::memory_order_relaxed); }
  // The admin API's bans (POST /bans/ADDRESS): refused at accept like a ban by
  // rate, with or without client limits configured; they expire on their own.
  void Ban(const std::array<uint8_t, 16>& client, absl::Duration duration, int64_t now_ns);
  // Lifts a ban, by rate or by hand; false if `client` was not banned.
  bool Unban(const std::array<uint8_t, 16>& client, int64_t now_ns);
  // accept_proxy_from is set: peers on it must send a PROXY header, all others
  // must not (the worker screens their first bytes). False: no check at all.
  bool accepts_proxy() const { return !proxy_from_.empty(); }
  // `peer` must send a PROXY header (accept_proxy_from), within proxy_timeout().
  bool ProxyRequired(const std::array<uint8_t, 16>& peer) const {
    return !proxy_from_.empty() && proxy_from_.Contains(peer);
  }
  absl::Duration proxy_timeout() const { return proxy_timeout_; }
  AdmissionOptions::SendProxy send_proxy() const { return send_proxy_; }
  ClientLimits& limits() { return limits_; }
  uint32_t live() const { return live_.load(std::memory_order_relaxed); }

 private:
  const Acl acl_;
  const PrefixSet proxy_from_;
  const absl::Duration proxy_timeout_;
  const AdmissionOptions::SendProxy send_proxy_;
  const uint32_t max_connections_;
  ClientLimits limits_;
  const bool open_;
  // Set by the first admin ban: from then on Decide() looks bans up even
  // without client limits (one relaxed load per accept until then).
  std::atomic<bool> admin_bans_{false};
  std::atomic<uint32_t> live_{0};
};

}  // namespace l4lb::admission
