#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

#include "health/probe.h"
#include "l4lb/backend/control.h"
#include "l4lb/backend/passive_health.h"
#include "l4lb/backend/snapshot.h"

namespace l4lb::health {

// How one service's backends are checked (--health_* flags, or a service in the
// config file).
struct HealthOptions {
  ProbeSpec probe;  // kind kNone: no checking, every backend stays up
  absl::Duration interval = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(1);
  int rise = 2;         // consecutive passed checks that bring a DOWN backend UP
  int fall = 3;         // consecutive failed checks that take an UP backend DOWN
  bool passive = true;  // connect failures and resets seen by workers count as failed checks
};

// HealthChecker is one thread that probes every backend of every service on its
// own schedule (interval with +-10% jitter, so probes do not fire in lockstep),
// keeps HAProxy's rise/fall state per backend, and on every change publishes a
// new BackendSnapshot (same Maglev table, new health) for the workers to pick up.
//
// Start-up, as in HAProxy: every backend starts UP, but on the edge: the first
// failed check takes it DOWN at once, while a backend that has passed checks
// needs `fall` failures in a row.
//
// Passive failures (workers' reports through PassiveHealth, one per client
// address per interval) count like failed checks but never take the last step:
// they bring an UP backend at most to the edge and make it "suspect", and a
// suspect backend is probed at once (then every kSuspectGap while it stays
// suspect). Only a failed probe takes it DOWN. So no client can eject a backend
// that answers its probes (a client that makes a server reset it, a port scan of
// an FTP passive range), while a dead one is out a probe timeout after the first
// client hits it.
//
// The same thread steps the services' slow-start ramps (ServiceControl::Tick(),
// between probes): each step is one table build, never a wait.
//
// Thread safety: Start()/Stop() from one thread (the server's); everything else
// runs on the checker's own thread, but Report(), which any thread may call (the
// admin endpoint's). It talks to workers only through the ServiceControls and
// PassiveHealth it is given. A backend in maintenance (AdminState::kMaint) is
// not probed: its state stays what it was until enabled.
class HealthChecker {
 public:
  // One backend's checks as the admin endpoint shows them (admin/status.h).
  struct BackendReport {
    bool probed = false;  // the service has probes (check != none)
    uint64_t passed = 0;  // probes that passed, since start
    uint64_t failed = 0;  // probes that failed (timeouts included)
    bool last_ok = false;        // the last probe's result (passed + failed > 0)
    std::string last_reason;     // why it failed ("" when it passed)
    absl::Duration last_duration;  // the last probe's connect + reply time
    absl::Time last_check = absl::InfinitePast();
    // The last UP <-> DOWN change by a check; until then, when the checker was
    // made (l4lb's start).
    absl::Time last_change;
    // The rise/fall state after the last probe: what a reload carries over.
    bool up = true;
    int health = 0;  // HAProxy's counter, 0 .. rise + fall - 1
  };
  struct Service {
    std::string name;  // for the logs: the service's first listen address
    HealthOptions options;
    // Publishes its health changes (beside the admin API's); not owned.
    backend::ServiceControl* control = nullptr;
    backend::PassiveHealth* passive = nullptr;        // not owned; may be null
    // A reload (l4lb/reload/): per backend, what the previous config's checker
    // reported for the same backend (Report()); it goes on from that state (UP
    // stays UP with no rise delay, DOWN stays DOWN) and keeps its counts. Empty,
    // or nullopt for a backend: a fresh start.
    std::vector<std::optional<BackendReport>> carried;
  };

  explicit HealthChecker(std::vector<Service> services);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // True when some service has probes to run or slow-starts its backends
  // (ServiceControl::Tick() runs on this thread); otherwise Start() is a no-op.
  bool active() const;
  void Start();
  void Stop();

  // Services in the order given, each one's backends in snapshot order. A copy
  // under a mutex the checker takes once per probe result: cheap, off the data path.
  std::vector<std::vector<BackendReport>> Report() const;

 private:
  struct BackendState {
    std::string name;  // for the logs: the address probed (port-less: with the probe port)
    bool up = true;
    int health = 0;  // HAProxy's counter: 0 .. rise + fall - 1
    // Passive failures were reported: probe at once, and again every kSuspectGap
    // until a probe passes or the backend is DOWN.
    bool suspect = false;
    uint32_t passive_failures = 0;  // since the last probe that passed, for the log
    int64_t next_probe_ns = 0;
    int64_t probe_started_ns = 0;
    int64_t deadline_ns = 0;
    std::unique_ptr<Probe> probe;  // in flight
  };
  struct ServiceState {
    Service service;
    std::vector<BackendState> backends;
  };

  void Run();
  // Starts due probes and times out late ones; returns when the next one is due.
  int64_t StartAndExpire(ServiceState& s, int64_t now_ns);
  // Applies finished probes and passive reports; true if any backend changed.
  bool Collect(ServiceState& s);
  // Counts passive failures toward fall, never past the edge, and marks the
  // backend suspect.
  void ApplyPassive(ServiceState& s, size_t index, const backend::PassiveHealth::Taken& taken);
  // One check result; true if the backend changed state.
  bool Apply(ServiceState& s, size_t index, bool ok, const std::string& reason);
  void Publish(ServiceState& s);
  int64_t Jittered(absl::Duration d);
  void Record(size_t service, size_t index, bool ok, const std::string& reason,
              int64_t duration_ns, bool changed);

  std::vector<ServiceState> services_;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the poll
  std::atomic<bool> stop_{false};
  std::thread thread_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  mutable std::mutex report_mu_;
  std::vector<std::vector<BackendReport>> report_ ABSL_GUARDED_BY(report_mu_);
};

}  // namespace l4lb::health
