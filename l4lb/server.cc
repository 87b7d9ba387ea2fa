#include "l4lb/server.h"

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

void Server::StopAccepting() {
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

}  // namespace l4lb
