#include "health/checker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

#include "l4lb/balancer/flow_hash.h"
#include "l4lb/clock/monotonic.h"

namespace l4lb::health {
namespace {


// Passive reports are picked up at least this often between probes.
constexpr int64_t kPassivePollNs = 100'000'000;
// A suspect backend (passive failures) is probed at most this often: a client
// that keeps making a healthy backend fail costs it five probes a second.
constexpr int64_t kSuspectGapNs = 200'000'000;
// The passes over every backend (collect results, start what is due, expire
// what is late) run at most this often; between them the thread only moves
// probes whose sockets are ready. A pass is O(backends): run at every probe's
// wakeup, a 1,000-backend farm probed each second cost 7 % of a core
// (bench/health_cpu.py); results and starts are at most this much later.
constexpr int64_t kPassGapNs = 10'000'000;

}  // namespace

HealthChecker::HealthChecker(std::vector<Service> services) {
  const absl::Time now = absl::Now();
  for (Service& service : services) {
    const bool probed = service.options.probe.kind != ProbeSpec::Kind::kNone;
    BackendReport initial;
    initial.probed = probed;
    initial.last_change = now;
    report_.emplace_back(service.control->Current()->backends().size(), initial);
    std::vector<BackendReport>& reports = report_.back();
    ServiceState state{.service = std::move(service), .backends = {}};
    const auto& specs = state.service.control->Current()->backends();
    state.backends.resize(specs.size());
    const HealthOptions& options = state.service.options;
    for (size_t i = 0; i < specs.size(); ++i) {
      BackendState& b = state.backends[i];
      b.health = options.rise;
      const std::vector<std::optional<BackendReport>>& carried = state.service.carried;
      if (probed && i < carried.size() && carried[i] && carried[i]->probed) {
        // Probed before the reload: its state goes on. The counter is clamped to
        // this config's rise/fall, keeping which side of rise it is on.
        reports[i] = *carried[i];
        b.up = carried[i]->up;
        b.health = b.up ? std::clamp(carried[i]->health, options.rise,
                                     options.rise + options.fall - 1)
                        : std::clamp(carried[i]->health, 0, options.rise - 1);
      }
      reports[i].up = b.up;
      reports[i].health = b.health;
      net::SocketAddress address = specs[i].address;
      // A port-less backend (clients keep the port they dialled) is probed on the
      // service's probe port: name that, not ":0".
      if (address.port() == 0) address.set_port(state.service.options.probe.port);
      b.name = address.ToString();
    }
    services_.push_back(std::move(state));
  }
}

HealthChecker::~HealthChecker() { Stop(); }

bool HealthChecker::active() const {
  for (const ServiceState& s : services_) {
    if (s.service.options.probe.kind != ProbeSpec::Kind::kNone) return true;
    if (s.service.control->slow_start()) return true;  // its ramps step on this thread
  }
  return false;
}

void HealthChecker::Start() {
  if (!active() || thread_.joinable()) return;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK_GE(wake_fd_, 0) << "eventfd for the health checker";
  // The first round goes out at once (spread over a few ms), so a backend that
  // is dead at start-up is found within one timeout.
  const int64_t now = MonotonicNanos();
  for (ServiceState& s : services_) {
    for (BackendState& b : s.backends) b.next_probe_ns = now + Jittered(absl::Milliseconds(20)) / 2;
  }
  thread_ = std::thread([this] { Run(); });
}

void HealthChecker::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  close(wake_fd_);
  wake_fd_ = -1;
}

int64_t HealthChecker::Jittered(absl::Duration d) {
  // +-10%: probes of many backends (and of several l4lb instances) drift apart.
  rng_ = balancer::Mix64(rng_ + 1);
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  const int64_t spread = ns / 5;
  return ns - spread / 2 + (spread > 0 ? static_cast<int64_t>(rng_ % uint64_t(spread)) : 0);
}

void HealthChecker::Run() {
  std::vector<pollfd> fds;
  std::vector<Probe*> polled;
  while (!stop_.load(std::memory_order_acquire)) {
    int64_t now = MonotonicNanos();
    int64_t next_ns = now + kPassivePollNs;
    for (ServiceState& s : services_) {
      // Slow-start steps: a table build (milliseconds) when one is due, else nothing.
      if (const absl::Duration until = s.service.control->Tick();
          until < absl::InfiniteDuration()) {
        next_ns = std::min(next_ns, now + absl::ToInt64Nanoseconds(until));
      }
      if (s.service.options.probe.kind == ProbeSpec::Kind::kNone) continue;
      if (Collect(s)) Publish(s);
      next_ns = std::min(next_ns, StartAndExpire(s, now));
      if (Collect(s)) Publish(s);  // probes that finished while starting
    }
    fds.assign(1, pollfd{.fd = wake_fd_, .events = POLLIN, .revents = 0});
    polled.assign(1, nullptr);
    for (ServiceState& s : services_) {
      for (BackendState& b : s.backends) {
        if (b.probe && !b.probe->done()) {
          fds.push_back(pollfd{.fd = b.probe->fd(), .events = b.probe->events(), .revents = 0});
          polled.push_back(b.probe.get());
        }
      }
    }
    // Until the next pass, probes in flight move on as their sockets become
    // ready; one that is done leaves the poll set, and the next pass (no
    // sooner than kPassGapNs after this one) collects it.
    const int64_t pass_ns = MonotonicNanos();
    int64_t until_ns = std::max(next_ns, pass_ns + kPassGapNs);
    for (now = pass_ns; now < until_ns;) {
      const int timeout_ms =
          static_cast<int>(std::max<int64_t>(0, (until_ns - now + 999'999) / 1'000'000));
      const int ready = poll(fds.data(), fds.size(), timeout_ms);
      if (ready < 0 && errno != EINTR) {
        PLOG(ERROR) << "health checker: poll";
        absl::SleepFor(absl::Milliseconds(100));
        break;
      }
      if (fds[0].revents != 0 || stop_.load(std::memory_order_acquire)) break;
      for (size_t i = 1; ready > 0 && i < fds.size(); ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        polled[i]->OnReady(fds[i].revents);
        fds[i].revents = 0;
        if (polled[i]->done()) {
          fds[i].fd = -1;  // poll(2) skips it
          until_ns = std::min(until_ns, pass_ns + kPassGapNs);
        } else {
          fds[i].events = polled[i]->events();
          fds[i].fd = polled[i]->fd();
        }
      }
      now = MonotonicNanos();
    }
  }
}

int64_t HealthChecker::StartAndExpire(ServiceState& s, int64_t now_ns) {
  const HealthOptions& options = s.service.options;
  const std::shared_ptr<const backend::BackendSnapshot> snapshot = s.service.control->Current();
  const auto& backends = snapshot->backends();
  int64_t next_ns = INT64_MAX;
  for (size_t i = 0; i < s.backends.size(); ++i) {
    BackendState& b = s.backends[i];
    if (b.probe && !b.probe->done() && now_ns >= b.deadline_ns) b.probe->TimeOut();
    if (!b.probe && snapshot->admin(i) == backend::AdminState::kMaint) {
      // Paused: looked at again every interval, probed at the first after enable.
      b.suspect = false;
      if (now_ns >= b.next_probe_ns) b.next_probe_ns = now_ns + Jittered(options.interval);
      next_ns = std::min(next_ns, b.next_probe_ns);
      continue;
    }
    const bool due = now_ns >= b.next_probe_ns;
    const int64_t suspect_at_ns = b.probe_started_ns + kSuspectGapNs;
    if (!b.probe && (due || (b.suspect && now_ns >= suspect_at_ns))) {
      b.probe = std::make_unique<Probe>(options.probe, backends[i].address);
      b.probe_started_ns = now_ns;
      b.deadline_ns = now_ns + absl::ToInt64Nanoseconds(options.timeout);
      if (due) {
        b.next_probe_ns = now_ns + Jittered(options.interval);
        // One interval, one vote per client address.
        if (s.service.passive != nullptr) s.service.passive->NewWindow(i);
      }
    }
    int64_t wake_ns = b.probe ? b.deadline_ns : b.next_probe_ns;
    if (!b.probe && b.suspect) wake_ns = std::min(wake_ns, suspect_at_ns);
    next_ns = std::min(next_ns, wake_ns);
  }
  return next_ns;
}

bool HealthChecker::Collect(ServiceState& s) {
  bool changed = false;
  const size_t service = static_cast<size_t>(&s - services_.data());
  for (size_t i = 0; i < s.backends.size(); ++i) {
    BackendState& b = s.backends[i];
    if (b.probe && b.probe->done()) {
      std::unique_ptr<Probe> probe = std::move(b.probe);
      const bool flipped = Apply(s, i, probe->ok(), probe->reason());
      Record(service, i, probe->ok(), probe->reason(), MonotonicNanos() - b.probe_started_ns, flipped);
      changed |= flipped;
    }
    if (s.service.passive != nullptr && s.service.options.passive) {
      const backend::PassiveHealth::Taken taken = s.service.passive->Take(i);
      if (taken.reports > 0) ApplyPassive(s, i, taken);
    }
  }
  return changed;
}

void HealthChecker::ApplyPassive(ServiceState& s, size_t index,
                                 const backend::PassiveHealth::Taken& taken) {
  BackendState& b = s.backends[index];
  if (!b.up) return;  // no traffic is sent to it; its probes bring it back
  const int rise = s.service.options.rise;
  for (uint32_t f = 0; f < taken.failures && b.health > rise; ++f) --b.health;
  b.passive_failures += taken.failures;
  if (!b.suspect) {
    // Once per suspicion (a passing probe clears it): bounded by the probes.
    LOG(INFO) << "backend " << b.name << " (" << s.service.name << "): " << taken.reports
              << " connect failure(s) or early reset(s) on client traffic; probing now";
  }
  b.suspect = true;
}

bool HealthChecker::Apply(ServiceState& s, size_t index, bool ok, const std::string& reason) {
  const HealthOptions& options = s.service.options;
  BackendState& b = s.backends[index];
  const int max = options.rise + options.fall - 1;
  const std::string& name = b.name;
  if (ok) {
    b.suspect = false;
    b.passive_failures = 0;
    if (b.health < max) ++b.health;
    if (!b.up && b.health >= options.rise) {
      b.up = true;
      b.health = max;
      LOG(INFO) << "backend " << name << " (" << s.service.name << ") is UP: " << options.rise
                << " check(s) passed";
      return true;
    }
    return false;
  }
  if (!b.up) {
    if (b.health != 0) VLOG(1) << "backend " << name << " still DOWN: " << reason;
    b.health = 0;
    return false;
  }
  if (b.health > options.rise) {
    --b.health;
    VLOG(1) << "backend " << name << ": check failed (" << reason << "), still UP";
    return false;
  }
  b.up = false;
  b.health = 0;
  LOG(WARNING) << "backend " << name << " (" << s.service.name << ") is DOWN: " << reason
               << (b.suspect ? absl::StrCat(" (probed after ", b.passive_failures,
                                            " failure(s) on client traffic)")
                             : std::string());
  b.suspect = false;
  b.passive_failures = 0;
  return true;
}

void HealthChecker::Record(size_t service, size_t index, bool ok, const std::string& reason,
                           int64_t duration_ns, bool changed) {
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(report_mu_);
  BackendReport& r = report_[service][index];
  ++(ok ? r.passed : r.failed);
  r.last_ok = ok;
  r.last_reason = ok ? std::string() : reason;
  r.last_duration = absl::Nanoseconds(duration_ns);
  r.last_check = now;
  if (changed) r.last_change = now;
  const BackendState& b = services_[service].backends[index];
  r.up = b.up;
  r.health = b.health;
}

std::vector<std::vector<HealthChecker::BackendReport>> HealthChecker::Report() const {
  std::lock_guard<std::mutex> lock(report_mu_);
  return report_;
}

void HealthChecker::Publish(ServiceState& s) {
  std::vector<bool> healthy;
  for (const BackendState& b : s.backends) healthy.push_back(b.up);
  const std::shared_ptr<const backend::BackendSnapshot> next = s.service.control->SetHealth(healthy);
  const size_t up = std::count(healthy.begin(), healthy.end(), true);
  const size_t taking = next->healthy_count();  // healthy and neither drained nor in maintenance
  if (next->serving_backups() && taking > 0) {
    LOG(WARNING) << s.service.name << ": no primary backend takes new clients; " << taking
                 << " backup(s) do until one comes back (" << up << " of " << healthy.size()
                 << " backend(s) healthy)";
  } else if (up == 0) {
    LOG(ERROR) << s.service.name << ": no healthy backend; new clients are closed until one "
               << "comes back";
  } else if (taking == 0) {
    LOG(ERROR) << s.service.name << ": no backend takes new clients (" << up << " of "
               << healthy.size() << " healthy, all drained or in maintenance); new clients are "
               << "closed until one is enabled";
  } else {
    LOG(INFO) << s.service.name << ": " << up << " of " << healthy.size() << " backend(s) healthy"
              << (taking != up ? absl::StrCat(", ", taking, " taking new clients") : "");
  }
}

}  // namespace l4lb::health
