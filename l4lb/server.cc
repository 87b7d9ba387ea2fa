#include "l4lb/server.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

#include "l4lb/net/congestion.h"
#include "l4lb/sni_services.h"
#include "l4lb/net/fast_open.h"
#include "l4lb/net/transparent.h"

namespace l4lb {

namespace {

// For each of `backends`, the index of the backend of `other` with the same name
// (the address as written), or -1: how a reload tells a kept backend from a new
// or a removed one.
std::vector<int> SameBackends(const std::vector<backend::BackendSpec>& backends,
                              const std::vector<backend::BackendSpec>& other) {
  std::vector<int> out;
  for (const backend::BackendSpec& b : backends) {
    const auto same = std::find_if(other.begin(), other.end(),
                                   [&b](const backend::BackendSpec& o) { return o.name == b.name; });
    out.push_back(same == other.end() ? -1 : static_cast<int>(same - other.begin()));
  }
  return out;
}

// What a reload carries over for one service from the config it replaces.
struct Carried {
  std::vector<bool> healthy;                // per new backend
  std::vector<backend::AdminState> admin;   // per new backend
  std::vector<std::optional<health::HealthChecker::BackendReport>> reports;
};

// The backends of `service` that the previous config's service of the same name
// also had (same address as written): their health, admin state and checks.
// Health is carried only when both configs probe (with no checks, all are up).
Carried CarryBackends(const Server::Service& service, const backend::BackendSnapshot* previous,
                      const std::vector<health::HealthChecker::BackendReport>* reports) {
  Carried out;
  const size_t n = service.backends.size();
  out.healthy.assign(n, true);
  out.admin.assign(n, backend::AdminState::kReady);
  out.reports.resize(n);
  if (previous == nullptr) return out;
  const bool probed = service.health.probe.kind != health::ProbeSpec::Kind::kNone;
  const std::vector<int> same = SameBackends(service.backends, previous->backends());
  for (size_t b = 0; b < n; ++b) {
    if (same[b] < 0) continue;
    const size_t o = static_cast<size_t>(same[b]);
    out.admin[b] = previous->admin(o);
    if (probed && reports != nullptr && o < reports->size() && (*reports)[o].probed) {
      out.healthy[b] = previous->healthy(o);
      out.reports[b] = (*reports)[o];
    }
  }
  return out;
}

// Slow start across a reload of a service that stays: a backend of both configs
// goes on with its ramp (none if it had none: an unchanged UP backend keeps its
// full weight); a backend the reload adds ramps from `now`. Both controls run on
// the same monotonic clock.
std::vector<std::optional<absl::Time>> CarryRamps(
    const Server::Service& service, const backend::BackendSnapshot& previous,
    const std::vector<std::optional<absl::Time>>& previous_since, absl::Time now) {
  std::vector<std::optional<absl::Time>> out(service.backends.size());
  const std::vector<int> same = SameBackends(service.backends, previous.backends());
  for (size_t b = 0; b < out.size(); ++b) {
    if (same[b] < 0) {
      out[b] = now;
    } else if (static_cast<size_t>(same[b]) < previous_since.size()) {
      out[b] = previous_since[same[b]];
    }
  }
  return out;
}

// `source`: each address is the host's, and each backend's family has one.
absl::Status CheckSources(const Server::Service& service) {
  if (service.source.empty()) return absl::OkStatus();
  for (const net::SocketAddress& source : service.source) {
    if (absl::Status st = net::CheckSource(source); !st.ok()) return st;
  }
  for (const backend::BackendSpec& b : service.backends) {
    if (std::none_of(service.source.begin(), service.source.end(),
                     [&b](const net::SocketAddress& s) { return s.family() == b.address.family(); })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "source: no ", b.address.is_v4() ? "IPv4" : "IPv6", " address for backend ", b.name));
    }
  }
  return absl::OkStatus();
}

// `transparent`: not with `source` (which address would it be?), and this
// process may set IP_TRANSPARENT for each family of the service's backends:
// checked once here, at start and at each reload, not at every connect.
absl::Status CheckTransparentService(const Server::Service& service, const std::string& name) {
  if (!service.transparent) return absl::OkStatus();
  if (service.protocol == Server::Protocol::kUdp) {
    return absl::InvalidArgumentError(
        absl::StrCat("transparent: service \"", name, "\": only for tcp services"));
  }
  if (!service.source.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("transparent: service \"", name,
                     "\": not with source (the client's address is the source)"));
  }
  for (const int family : {AF_INET, AF_INET6}) {
    if (std::none_of(
            service.backends.begin(), service.backends.end(),
            [family](const backend::BackendSpec& b) { return b.address.family() == family; })) {
      continue;
    }
    if (absl::Status st = net::CheckTransparent(family); !st.ok()) {
      return absl::Status(st.code(),
                          absl::StrCat("transparent: service \"", name, "\": ", st.message()));
    }
  }
  return absl::OkStatus();
}

// dup(2) of each fd: the next config's own references to the same sockets.
absl::StatusOr<std::vector<net::Fd>> Dup(const std::vector<net::Fd>& fds) {
  std::vector<net::Fd> out;
  for (const net::Fd& fd : fds) {
    const int copy = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return absl::ErrnoToStatus(errno, "dup of a listening socket");
    out.emplace_back(copy);
  }
  return out;
}

}  // namespace

absl::StatusOr<ListenerSockets> Server::TakeOverOrOpen(const Server* previous,
                                                       const net::SocketAddress& requested,
                                                       uint16_t service, bool udp) {
  absl::StatusOr<std::optional<ListenerSockets>> inherited = TakeInherited(requested, service, udp);
  if (!inherited.ok()) return inherited.status();
  if (inherited->has_value()) return **std::move(inherited);
  if (previous != nullptr) {
    // The n-th listener on `requested` takes the previous config's n-th (port 0
    // may stand several times: each keeps its port).
    size_t ordinal = 0;
    for (const KeptListener& k : kept_) ordinal += k.udp == udp && k.requested == requested;
    for (const KeptListener& k : previous->kept_) {
      if (k.udp != udp || !(k.requested == requested) || ordinal-- > 0) continue;
      absl::StatusOr<std::vector<net::Fd>> fds = Dup(k.per_worker);
      if (!fds.ok()) return fds.status();
      return ListenerSockets{.address = k.bound, .service = service, .per_worker = *std::move(fds)};
    }
  }
  // A port this process holds on another address (a reload that moved a
  // listener from 127.0.0.1:80 to 0.0.0.0:80, say) is its own: no probe.
  const auto holds = [&](const auto& listeners) {
    return std::any_of(listeners.begin(), listeners.end(), [&](const auto& l) {
      return l.udp == udp && l.bound.port() == requested.port();
    });
  };
  const bool own = holds(kept_) || (previous != nullptr && holds(previous->kept_)) ||
                   (inherited_ != nullptr && holds(*inherited_));
  if (!own) {
    if (absl::Status st = CheckNotShared(requested, udp); !st.ok()) return st;
  }
  absl::StatusOr<ListenerSockets> sockets =
      OpenListener(requested, service, options_.threads, options_.backlog, udp);
  if (!sockets.ok()) return sockets.status();
  if (!udp && !options_.client_congestion.empty()) {
    // Accepted sockets inherit the listener's: no setsockopt per client.
    for (const net::Fd& fd : sockets->per_worker) {
      if (absl::Status st = net::SetCongestion(fd.get(), options_.client_congestion); !st.ok()) {
        return st;
      }
    }
  }
  return sockets;
}

std::string Server::ServiceName(const Service& service) {
  if (!service.name.empty()) return service.name;
  return service.listen.empty() ? std::string() : service.listen[0].ToString();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(Options options, const Server* previous,
                                                       std::vector<InheritedListener>* inherited) {
  if (options.threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  if (options.services.empty()) return absl::InvalidArgumentError("no service configured");
  if (previous != nullptr && previous->options_.threads != options.threads) {
    return absl::InvalidArgumentError("threads cannot change at runtime");
  }
  std::unique_ptr<Server> server(new Server());
  // What TakeOverOrOpen reads; the whole of options lands at the end.
  server->options_.threads = options.threads;
  server->options_.backlog = options.backlog;
  server->options_.client_congestion = options.client_congestion;
  server->inherited_ = inherited;
  const std::vector<std::vector<health::HealthChecker::BackendReport>> previous_reports =
      previous != nullptr ? previous->checker_->Report()
                          : std::vector<std::vector<health::HealthChecker::BackendReport>>();
  std::vector<std::vector<Worker::Listener>> listeners(options.threads);
  std::vector<Worker::Service> services;
  std::vector<health::HealthChecker::Service> checked;
  absl::StatusOr<std::vector<std::shared_ptr<const tls::SniRoutes>>> sni = BuildSniRoutes(options.services);
  if (!sni.ok()) return sni.status();
  for (size_t s = 0; s < options.services.size(); ++s) {
    const Service& service = options.services[s];
    if (service.connect_retries < 0 || service.connect_retries >= relay::Connection::kMaxAttempts) {
      return absl::InvalidArgumentError(
          absl::StrCat("connect retries must be 0..", relay::Connection::kMaxAttempts - 1));
    }
    const std::string name = ServiceName(service);
    for (const backend::BackendSpec& b : service.backends) {
      // main resolves names before any Server is made (dns/refresher.h).
      if (!b.resolved()) return absl::InvalidArgumentError(absl::StrCat(b.name, ": not resolved"));
    }
    if (absl::Status st = CheckSources(service); !st.ok()) return st;
    if (absl::Status st = CheckTransparentService(service, name); !st.ok()) return st;
    if (service.protocol == Protocol::kUdp && (service.defer_accept || service.backend_tfo)) {
      return absl::InvalidArgumentError(
          absl::StrCat(service.defer_accept ? "defer_accept" : "backend_tfo", ": service \"",
                       name, "\": only for tcp services"));
    }
    // Not an error: the service works, one round trip slower.
    if (absl::Status st = service.backend_tfo ? net::CheckFastOpenClient() : absl::OkStatus();
        !st.ok()) {
      LOG(WARNING) << "backend_tfo: service \"" << name << "\": " << st.message();
    }
    std::shared_ptr<const backend::BackendSnapshot> before;
    const std::vector<health::HealthChecker::BackendReport>* reports = nullptr;
    const backend::ServiceControl* before_control = nullptr;
    if (previous != nullptr) {
      if (absl::StatusOr<size_t> p = previous->FindService(name); p.ok()) {
        before = previous->publishers_[*p]->Current();
        before_control = previous->controls_[*p].get();
        if (*p < previous_reports.size()) reports = &previous_reports[*p];
      }
    }
    Carried carried = CarryBackends(service, before.get(), reports);
    absl::StatusOr<std::shared_ptr<const backend::BackendSnapshot>> snapshot =
        backend::BackendSnapshot::Build(service.backends, carried.healthy,
                                        {.maglev_table_size = service.maglev_table_size});
    if (!snapshot.ok()) return snapshot.status();
    if (std::any_of(carried.admin.begin(), carried.admin.end(),
                    [](backend::AdminState a) { return a != backend::AdminState::kReady; })) {
      *snapshot = (*snapshot)->WithAdmin(carried.admin);
    }
    server->publishers_.push_back(
        std::make_unique<backend::SnapshotPublisher>(*std::move(snapshot)));
    server->controls_.push_back(std::make_unique<backend::ServiceControl>(
        server->publishers_.back().get(),
        backend::BackendSnapshot::Options{.maglev_table_size = service.maglev_table_size},
        backend::ServiceControl::Ramp{
            .duration = service.slow_start, .service = name, .clock = {}}));
    if (before_control != nullptr) {
      server->controls_.back()->StartRamps(
          CarryRamps(service, *before, before_control->RampsSince(), before_control->Now()));
    }
    server->passive_.push_back(std::make_unique<backend::PassiveHealth>(service.backends.size()));
    server->admission_.push_back(std::make_unique<admission::Admission>(service.admission));
    health::HealthOptions health = service.health;
    const bool port_from_listener =
        std::any_of(service.backends.begin(), service.backends.end(),
                    [](const backend::BackendSpec& b) { return b.address.port() == 0; });
    // Backends that take the client's port are probed on the first listener's.
    if (port_from_listener && health.probe.port == 0) {
      if (service.listen.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "service \"", name, "\": backends without a port need a listener (or health.port)"));
      }
      health.probe.port = service.listen[0].port();
    }
    server->names_.push_back(name);
    checked.push_back({.name = server->names_.back(),
                       .options = health,
                       .control = server->controls_.back().get(),
                       .passive = server->passive_.back().get(),
                       .carried = std::move(carried.reports)});
    balancer::AffinityTable* affinity = nullptr;
    if (!service.affinity_group.empty()) {
      std::shared_ptr<balancer::AffinityTable>& table = server->affinity_[service.affinity_group];
      if (table == nullptr && previous != nullptr) {
        // A reload keeps the group's pins (an FTP session's next data
        // connection must find its backend), unless its ttl changed.
        const auto old = previous->affinity_.find(service.affinity_group);
        if (old != previous->affinity_.end() && old->second->ttl() == service.affinity_ttl) {
          table = old->second;
        }
      }
      if (table == nullptr) {
        table = std::make_shared<balancer::AffinityTable>(
            balancer::AffinityTable::Options{.ttl = service.affinity_ttl});
      } else if (table->ttl() != service.affinity_ttl) {
        // One table, one expiry: which service's ttl would hold is not for us to guess.
        return absl::InvalidArgumentError(absl::StrCat(
            "affinity group \"", service.affinity_group,
            "\": its services disagree on affinity_ttl (", absl::FormatDuration(table->ttl()),
            " vs ", absl::FormatDuration(service.affinity_ttl), ")"));
      }
      affinity = table.get();
    }
    services.push_back({.name = name,
                        .publisher = server->publishers_.back().get(),
                        .hash_key = service.hash_key,
                        .balance = service.balance,
                        .balance_factor = service.balance_factor,
                        .connect_timeout = service.connect_timeout,
                        .connect_retries = service.connect_retries,
                        .idle_timeout = service.idle_timeout,
                        .passive = service.health.passive ? server->passive_.back().get() : nullptr,
                        .kill_on_down = service.kill_on_down,
                        .backend_keepalive = service.backend_keepalive,
                        .source = service.source,
                        .transparent = service.transparent,
                        .backend_tfo = service.backend_tfo,
                        .backend_tfo_syn_retries = net::SynRetriesWithin(service.connect_timeout),
                        .client_fin_timeout = service.client_fin_timeout,
                        .client_timeout = service.client_timeout,
                        .backend_timeout = service.backend_timeout,
                        .affinity = affinity,
                        .udp_idle_timeout = service.udp_idle_timeout,
                        .udp_max_sessions = service.udp_max_sessions,
                        .max_responses = service.max_responses,
                        .admission = server->admission_.back().get(),
                        .sni = (*sni)[s],
                        .sni_timeout = service.sni_timeout});
    const bool udp = service.protocol == Protocol::kUdp;
    for (const net::SocketAddress& address : service.listen) {
      absl::StatusOr<ListenerSockets> sockets =
          server->TakeOverOrOpen(previous, address, static_cast<uint16_t>(s), udp);
      if (!sockets.ok()) return sockets.status();
      if (!udp) {
        // Every time, taken over or not: a reload may have changed it.
        for (const net::Fd& fd : sockets->per_worker) {
          absl::Status st = service.client_keepalive.enabled()
                                ? net::SetKeepalive(fd.get(), service.client_keepalive)
                                : net::ClearKeepalive(fd.get());
          if (st.ok()) st = net::SetDeferAccept(fd.get(), service.defer_accept);
          if (!st.ok()) return st;
        }
      }
      server->listening_.push_back(
          {.service = static_cast<uint16_t>(s), .udp = udp, .address = sockets->address});
      // The workers get copies; the server keeps these for the next config.
      absl::StatusOr<std::vector<net::Fd>> copies = Dup(sockets->per_worker);
      if (!copies.ok()) return copies.status();
      server->kept_.push_back({.udp = udp,
                               .requested = address,
                               .bound = sockets->address,
                               .per_worker = std::move(sockets->per_worker)});
      for (int w = 0; w < options.threads; ++w) {
        listeners[w].push_back({.fd = std::move((*copies)[w]),
                                .address = sockets->address,
                                .service = static_cast<uint16_t>(s),
                                .udp = udp});
      }
    }
  }
  if (previous != nullptr) {
    // --max_connections is the process's: connections of both configs count.
    server->global_admission_ = previous->global_admission_;
  } else if (options.max_connections > 0) {
    admission::AdmissionOptions global;
    global.max_connections = options.max_connections;
    server->global_admission_ = std::make_shared<admission::Admission>(global);
  }
  if (options.access_log) {
    server->access_log_ = std::make_unique<log::AccessLog>(
        options.threads, log::AccessLog::Options{
                             .queue_bytes = options.access_log_buffer,
                         });
  }
  for (int w = 0; w < options.threads; ++w) {
    server->workers_.push_back(std::make_unique<Worker>(Worker::Options{
        .id = w,
        .services = services,
        .listeners = std::move(listeners[w]),
        .access_log = server->access_log_ ? server->access_log_->queue(w) : nullptr,
        .pipes = {.pipe_size = options.pipe_size},
        .copy_bytes = options.copy_bytes,
        .backend_congestion = options.backend_congestion,
        .busy_poll = options.busy_poll,
        .global_admission = server->global_admission_.get(),
        .hold_accepts = options.hold_accepts,
    }));
  }
  // Each worker weighs backends by every worker's counters (balancer/policy.h).
  std::vector<std::vector<const stats::ServiceCounters*>> peers(services.size());
  for (size_t s = 0; s < services.size(); ++s) {
    for (const auto& worker : server->workers_) peers[s].push_back(worker->counters().services[s].get());
  }
  for (const auto& worker : server->workers_) worker->SetPeers(peers);
  server->checker_ = std::make_unique<health::HealthChecker>(std::move(checked));
  server->started_ = absl::Now();
  server->inherited_ = nullptr;
  server->options_ = std::move(options);
  return server;
}

Server::~Server() {
  if (!threads_.empty()) ForceCloseAndJoin();
}

absl::Status Server::Start() {
  if (access_log_) {
    std::vector<const stats::Counter*> dropped;
    for (const auto& worker : workers_) dropped.push_back(&worker->counters().access_log_dropped);
    access_log_->Start(std::move(dropped));
  }
  std::vector<std::future<absl::Status>> ready;
  for (auto& worker : workers_) {
    std::promise<absl::Status> promise;
    ready.push_back(promise.get_future());
    threads_.emplace_back(
        [w = worker.get(), p = std::move(promise)]() mutable { w->Run(std::move(p)); });
  }
  absl::Status status;
  for (auto& f : ready) status.Update(f.get());
  if (status.ok()) checker_->Start();
  return status;
}

void Server::HandOver() {
  draining_.store(true, std::memory_order_relaxed);
  // Closed now, not at the drain's end: a listener the next config dropped
  // stops listening once its workers' accepts are cancelled.
  kept_.clear();
  // The next config's checker probes the same backends.
  checker_->Stop();
  for (auto& worker : workers_) worker->RequestHandover();
}

void Server::CutRemoved(const Server& running) {
  Worker::Removed removed;
  static const std::vector<backend::BackendSpec> kNone;
  for (size_t s = 0; s < options_.services.size(); ++s) {
    const absl::StatusOr<size_t> kept = running.FindService(names_[s]);
    removed.services.push_back(!kept.ok());
    const std::vector<backend::BackendSpec>& now =
        kept.ok() ? running.options_.services[*kept].backends : kNone;
    std::vector<bool>& backends = removed.backends.emplace_back();
    for (int o : SameBackends(options_.services[s].backends, now)) backends.push_back(o < 0);
  }
  for (const BoundListener& l : listening_) {
    if (std::none_of(running.listening_.begin(), running.listening_.end(),
                     [&l](const BoundListener& r) { return r.udp == l.udp && r.address == l.address; })) {
      removed.listeners.emplace_back(l.udp, l.address);
    }
  }
  for (auto& worker : workers_) worker->RequestCut(removed);
}

void Server::StopAccepting() {
  draining_.store(true, std::memory_order_relaxed);
  // The listeners close once the workers' accepts are cancelled: new connects
  // are refused from then on.
  kept_.clear();
  for (auto& worker : workers_) worker->RequestDrain();
}

bool Server::Drained() const {
  for (const auto& worker : workers_) {
    if (!worker->finished()) return false;
  }
  return true;
}

void Server::ForceCloseAndJoin() {
  checker_->Stop();
  for (auto& worker : workers_) {
    worker->RequestDrain();
    worker->RequestForceClose();
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // After the workers: their last lines (connections cut just now) are queued.
  if (access_log_) access_log_->Stop();
}

std::vector<admin::Actions::Target> Server::ActionTargets() {
  std::vector<admin::Actions::Target> targets;
  for (size_t i = 0; i < names_.size(); ++i) {
    targets.push_back(
        {.name = names_[i], .control = controls_[i].get(), .admission = admission_[i].get()});
  }
  return targets;
}

absl::StatusOr<size_t> Server::FindService(absl::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  return absl::NotFoundError(absl::StrCat("no service \"", name, "\""));
}

stats::Totals Server::Totals() const {
  std::vector<const stats::WorkerCounters*> counters;
  for (const auto& worker : workers_) counters.push_back(&worker->counters());
  return stats::Sum(counters);
}

namespace {

// Open fds (entries of /proc/self/fd, less the directory's own) and the limit;
// -1 when unknown.
std::pair<int64_t, int64_t> ProcessFds() {
  int64_t open = -1;
  if (DIR* dir = opendir("/proc/self/fd")) {
    open = 0;
    while (const dirent* e = readdir(dir)) open += e->d_name[0] != '.';
    closedir(dir);
    --open;  // the fd opendir itself holds
  }
  rlimit limit{};
  const int64_t max = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                          ? static_cast<int64_t>(limit.rlim_cur)
                          : -1;
  return {open, max};
}

}  // namespace

absl::StatusOr<admin::ConnectionsView> Server::Connections(const std::string& service,
                                                          size_t limit) const {
  admin::ConnectionsView view;
  int index = -1;
  for (size_t s = 0; s < options_.services.size(); ++s) {
    view.services.push_back(names_[s]);
    if (view.services.back() == service) index = static_cast<int>(s);
  }
  if (!service.empty() && index < 0) {
    return absl::NotFoundError(absl::StrCat("service \"", service, "\": no such service"));
  }
  for (const auto& worker : workers_) {
    // One more than asked: the extra one tells that there are more.
    const size_t room = limit + 1 - view.connections.size();
    if (room == 0) break;
    std::optional<std::vector<stats::LiveConnection>> listed =
        worker->ListConnections({.service = index, .limit = room}, absl::Seconds(1));
    if (!listed) {
      ++view.workers_silent;
      continue;
    }
    for (stats::LiveConnection& c : *listed) view.connections.push_back(std::move(c));
  }
  if (view.connections.size() > limit) {
    view.connections.resize(limit);
    view.truncated = true;
  }
  return view;
}

admin::View Server::AdminView() const {
  admin::View view;
  view.now = absl::Now();
  view.started = started_;
  view.draining = draining_.load(std::memory_order_relaxed);
  view.totals = Totals();
  std::tie(view.open_fds, view.max_fds) = ProcessFds();
  const std::vector<std::vector<health::HealthChecker::BackendReport>> health = checker_->Report();
  size_t listener = 0;
  for (size_t s = 0; s < options_.services.size(); ++s) {
    const Service& service = options_.services[s];
    admin::ServiceView& out = view.services.emplace_back();
    out.name = names_[s];
    out.protocol = service.protocol == Protocol::kUdp ? "udp" : "tcp";
    for (size_t i = 0; i < service.listen.size(); ++i) {
      out.listen.push_back(listening_[listener++].address.ToString());
    }
    std::vector<const stats::ServiceCounters*> per_worker;
    for (const auto& worker : workers_) per_worker.push_back(worker->counters().services[s].get());
    out.counters = stats::SumService(per_worker);
    const std::shared_ptr<const backend::BackendSnapshot> snapshot = publishers_[s]->Current();
    const std::vector<backend::BackendSpec>& backends = snapshot->backends();
    for (size_t b = 0; b < backends.size(); ++b) {
      admin::BackendView& bv = out.backends.emplace_back();
      bv.name = backends[b].name;
      bv.dns_name = backends[b].host;
      bv.weight = backends[b].weight;
      bv.backup = backends[b].backup;
      switch (snapshot->admin(b)) {
        case backend::AdminState::kMaint:
          bv.state = admin::BackendState::kMaint;
          break;
        case backend::AdminState::kDrain:
          bv.state = admin::BackendState::kDrain;
          break;
        case backend::AdminState::kReady:
          bv.state = snapshot->healthy(b) ? admin::BackendState::kUp : admin::BackendState::kDown;
          break;
      }
      if (b < out.counters.backends.size()) bv.counters = out.counters.backends[b];
      if (s < health.size() && b < health[s].size()) bv.health = health[s][b];
    }
  }
  return view;
}

}  // namespace l4lb
