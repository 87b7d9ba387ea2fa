#include "l4lb/server.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

#include "l4lb/net/congestion.h"

namespace l4lb {

absl::StatusOr<std::unique_ptr<Server>> Server::Create(Options options) {
  if (options.threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  if (options.services.empty()) return absl::InvalidArgumentError("no service configured");
  std::unique_ptr<Server> server(new Server());
  std::vector<std::vector<Worker::Listener>> listeners(options.threads);
  std::vector<Worker::Service> services;
  std::vector<health::HealthChecker::Service> checked;
  for (size_t s = 0; s < options.services.size(); ++s) {
    const Service& service = options.services[s];
    if (service.listen.empty()) return absl::InvalidArgumentError("a service has no listener");
    if (service.connect_retries < 0 || service.connect_retries >= relay::Connection::kMaxAttempts) {
      return absl::InvalidArgumentError(
          absl::StrCat("connect retries must be 0..", relay::Connection::kMaxAttempts - 1));
    }
    absl::StatusOr<std::shared_ptr<const backend::BackendSnapshot>> snapshot =
        backend::BackendSnapshot::Build(service.backends, {},
                                        {.maglev_table_size = service.maglev_table_size});
    if (!snapshot.ok()) return snapshot.status();
    server->publishers_.push_back(
        std::make_unique<backend::SnapshotPublisher>(*std::move(snapshot)));
    server->controls_.push_back(std::make_unique<backend::ServiceControl>(
        server->publishers_.back().get(),
        backend::BackendSnapshot::Options{.maglev_table_size = service.maglev_table_size}));
    server->passive_.push_back(std::make_unique<backend::PassiveHealth>(service.backends.size()));
    server->admission_.push_back(std::make_unique<admission::Admission>(service.admission));
    health::HealthOptions health = service.health;
    const bool port_from_listener =
        std::any_of(service.backends.begin(), service.backends.end(),
                    [](const backend::BackendSpec& b) { return b.address.port() == 0; });
    // Backends that take the client's port are probed on the first listener's.
    if (port_from_listener && health.probe.port == 0) health.probe.port = service.listen[0].port();
    server->names_.push_back(service.name.empty() ? service.listen[0].ToString() : service.name);
    checked.push_back({.name = server->names_.back(),
                       .options = health,
                       .control = server->controls_.back().get(),
                       .passive = server->passive_.back().get()});
    balancer::AffinityTable* affinity = nullptr;
    if (!service.affinity_group.empty()) {
      std::unique_ptr<balancer::AffinityTable>& table = server->affinity_[service.affinity_group];
      if (table == nullptr) {
        table = std::make_unique<balancer::AffinityTable>(
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
    services.push_back({.publisher = server->publishers_.back().get(),
                        .hash_key = service.hash_key,
                        .connect_timeout = service.connect_timeout,
                        .connect_retries = service.connect_retries,
                        .idle_timeout = service.idle_timeout,
                        .passive = service.health.passive ? server->passive_.back().get() : nullptr,
                        .kill_on_down = service.kill_on_down,
                        .affinity = affinity,
                        .udp_idle_timeout = service.udp_idle_timeout,
                        .udp_max_sessions = service.udp_max_sessions,
                        .max_responses = service.max_responses,
                        .admission = server->admission_.back().get()});
    const bool udp = service.protocol == Protocol::kUdp;
    for (const net::SocketAddress& address : service.listen) {
      absl::StatusOr<ListenerSockets> sockets =
          OpenListener(address, static_cast<uint16_t>(s), options.threads, options.backlog, udp);
      if (!sockets.ok()) return sockets.status();
      if (!udp && !options.client_congestion.empty()) {
        // Accepted sockets inherit the listener's: no setsockopt per client.
        for (const net::Fd& fd : sockets->per_worker) {
          if (absl::Status st = net::SetCongestion(fd.get(), options.client_congestion); !st.ok()) {
            return st;
          }
        }
      }
      server->listening_.push_back(sockets->address);
      for (int w = 0; w < options.threads; ++w) {
        listeners[w].push_back({.fd = std::move(sockets->per_worker[w]),
                                .address = sockets->address,
                                .service = static_cast<uint16_t>(s),
                                .udp = udp});
      }
    }
  }
  if (options.max_connections > 0) {
    admission::AdmissionOptions global;
    global.max_connections = options.max_connections;
    server->global_admission_ = std::make_unique<admission::Admission>(global);
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
    }));
  }
  server->checker_ = std::make_unique<health::HealthChecker>(std::move(checked));
  server->started_ = absl::Now();
  if (options.admin) {
    Server* s = server.get();
    std::vector<admin::Actions::Target> targets;
    for (size_t i = 0; i < server->names_.size(); ++i) {
      targets.push_back({.name = server->names_[i],
                         .control = server->controls_[i].get(),
                         .admission = server->admission_[i].get()});
    }
    // The workers' clock: bans are compared with their accept times.
    server->actions_ = std::make_unique<admin::Actions>(std::move(targets), [] {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    });
    admin::AdminServer::Options admin_options = *options.admin;
    admin_options.actions = server->actions_.get();
    absl::StatusOr<std::unique_ptr<admin::AdminServer>> admin = admin::AdminServer::Create(
        admin_options, [s] { return s->AdminView(); },
        [s](const std::string& service, size_t limit) { return s->Connections(service, limit); });
    if (!admin.ok()) return admin.status();
    server->admin_ = *std::move(admin);
  }
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
  // Last: a scrape may come at once, and everything it reads is running now.
  if (status.ok() && admin_) admin_->Start();
  return status;
}

void Server::StopAccepting() {
  draining_.store(true, std::memory_order_relaxed);
  for (auto& worker : workers_) worker->RequestDrain();
}

bool Server::Drained() const {
  for (const auto& worker : workers_) {
    if (!worker->finished()) return false;
  }
  return true;
}

void Server::ForceCloseAndJoin() {
  // First: a scrape must not read what is being torn down.
  if (admin_) admin_->Stop();
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
    const Service& svc = options_.services[s];
    view.services.push_back(svc.name.empty() ? svc.listen[0].ToString() : svc.name);
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
    out.name = service.name.empty() ? service.listen[0].ToString() : service.name;
    out.protocol = service.protocol == Protocol::kUdp ? "udp" : "tcp";
    for (size_t i = 0; i < service.listen.size(); ++i) {
      out.listen.push_back(listening_[listener++].ToString());
    }
    std::vector<const stats::ServiceCounters*> per_worker;
    for (const auto& worker : workers_) per_worker.push_back(worker->counters().services[s].get());
    out.counters = stats::SumService(per_worker);
    const std::shared_ptr<const backend::BackendSnapshot> snapshot = publishers_[s]->Current();
    const std::vector<backend::BackendSpec>& backends = snapshot->backends();
    for (size_t b = 0; b < backends.size(); ++b) {
      admin::BackendView& bv = out.backends.emplace_back();
      bv.name = backends[b].name;
      bv.weight = backends[b].weight;
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
