// The Server's part in a live upgrade (--takeover, l4lb/takeover/): in the
// new process, listeners from the inherited sockets and connections placed in
// this config; in the running one, what it hands over. The workers do the
// connection work (worker_takeover.cc).

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

#include "l4lb/server.h"

namespace l4lb {

absl::StatusOr<std::optional<ListenerSockets>> Server::TakeInherited(
    const net::SocketAddress& requested, uint16_t service, bool udp) {
  if (inherited_ == nullptr) return std::nullopt;
  // The n-th listener on `requested` takes the n-th inherited one (port 0 may
  // stand several times: each keeps its port), like a reload's.
  size_t ordinal = 0;
  for (const KeptListener& k : kept_) ordinal += k.udp == udp && k.requested == requested;
  for (InheritedListener& in : *inherited_) {
    if (in.udp != udp || !(in.requested == requested) || in.per_worker.empty()) continue;
    if (ordinal-- > 0) continue;
    if (in.per_worker.size() != static_cast<size_t>(options_.threads)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "takeover: the running l4lb has ", in.per_worker.size(), " worker(s) on ",
          in.bound.ToString(), ", this one ", options_.threads, " (--threads must match)"));
    }
    ListenerSockets sockets{.address = in.bound, .service = service,
                            .per_worker = std::move(in.per_worker)};
    in.per_worker.clear();
    return std::optional<ListenerSockets>(std::move(sockets));
  }
  return std::nullopt;
}

std::vector<Server::TakeoverListener> Server::TakeoverListeners() const {
  std::vector<TakeoverListener> out;
  size_t i = 0;
  for (const KeptListener& k : kept_) {
    TakeoverListener l{.service = i < listening_.size() ? names_[listening_[i].service] : "",
                       .udp = k.udp,
                       .requested = k.requested,
                       .bound = k.bound};
    for (const net::Fd& fd : k.per_worker) l.fds.push_back(fd.get());
    out.push_back(std::move(l));
    ++i;
  }
  return out;
}

void Server::BeginExport(takeover::Outbox* out) {
  for (auto& worker : workers_) worker->RequestExport(out);
}

void Server::EndExport(bool handed_over) {
  for (auto& worker : workers_) worker->RequestExportEnd(handed_over);
}

absl::StatusOr<int> Server::FindBackend(size_t service, const std::string& name) const {
  const std::vector<backend::BackendSpec>& backends = publishers_[service]->Current()->backends();
  for (size_t b = 0; b < backends.size(); ++b) {
    if (backends[b].name == name) return static_cast<int>(b);
  }
  return absl::NotFoundError(absl::StrCat("service \"", names_[service], "\" has no backend ", name));
}

absl::StatusOr<uint16_t> Server::WorkerListener(bool udp, size_t service,
                                                const std::string& address) const {
  // A worker's TCP listeners (and its UDP ones) are the config's, in order.
  uint16_t index = 0;
  for (const BoundListener& l : listening_) {
    if (l.udp != udp) continue;
    if (l.service == service && l.address.ToString() == address) return index;
    ++index;
  }
  return absl::NotFoundError(absl::StrCat("service \"", names_[service], "\" does not listen on ",
                                          udp ? "udp " : "", address));
}

absl::StatusOr<Worker::Adoption> Server::Place(const takeover::Connection& record,
                                               std::vector<net::Fd>* fds_in, size_t* worker) const {
  std::vector<net::Fd>& fds = *fds_in;
  absl::StatusOr<size_t> service = FindService(record.service);
  if (!service.ok()) return service.status();
  absl::StatusOr<size_t> front = FindService(record.front);
  if (!front.ok()) return front.status();
  absl::StatusOr<int> backend = FindBackend(*service, record.backend);
  if (!backend.ok()) return backend.status();
  absl::StatusOr<uint16_t> listener = WorkerListener(/*udp=*/false, *front, record.listener);
  if (!listener.ok()) return listener.status();
  absl::StatusOr<net::SocketAddress> client = net::SocketAddress::Parse(record.client);
  if (!client.ok()) return client.status();
  absl::StatusOr<net::SocketAddress> target = net::SocketAddress::Parse(record.target);
  if (!target.ok()) return target.status();
  if (fds.size() != record.fd_count()) {
    return absl::InvalidArgumentError(absl::StrCat("takeover: ", fds.size(), " fds, ",
                                                   record.fd_count(), " expected"));
  }
  Worker::Adoption a;
  a.service = static_cast<uint16_t>(*service);
  a.front = static_cast<uint16_t>(*front);
  a.listener = *listener;
  a.backend = *backend;
  a.client = *client;
  a.target = *target;
  a.age_ns = record.age_ns;
  a.proxy_screen = record.proxy_screen;
  a.half_closed = record.half_closed;
  const auto saved = [](const takeover::FlowState& f) {
    return relay::Flow::Saved{
        .bytes = f.bytes, .pipe_bytes = f.pipe_bytes, .eof = f.source_eof, .done = f.done, .last = f.last};
  };
  a.up = saved(record.up);
  a.down = saved(record.down);
  size_t next = 0;
  a.client_fd = std::move(fds[next++]);
  a.backend_fd = std::move(fds[next++]);
  if (record.up.pipe_bytes > 0) {
    a.up_pipe[0] = std::move(fds[next++]);
    a.up_pipe[1] = std::move(fds[next++]);
  }
  if (record.down.pipe_bytes > 0) {
    a.down_pipe[0] = std::move(fds[next++]);
    a.down_pipe[1] = std::move(fds[next++]);
  }
  // The same worker index as before: the kernel's SO_REUSEPORT choice for the
  // connection's listener socket went there too.
  *worker = record.worker % workers_.size();
  return a;
}

absl::StatusOr<Worker::UdpAdoption> Server::PlaceUdp(const takeover::UdpSession& record,
                                                     std::vector<net::Fd>* fds,
                                                     size_t* worker) const {
  absl::StatusOr<size_t> service = FindService(record.service);
  if (!service.ok()) return service.status();
  absl::StatusOr<int> backend = FindBackend(*service, record.backend);
  if (!backend.ok()) return backend.status();
  absl::StatusOr<uint16_t> listener = WorkerListener(/*udp=*/true, *service, record.listener);
  if (!listener.ok()) return listener.status();
  absl::StatusOr<net::SocketAddress> client = net::SocketAddress::Parse(record.client);
  if (!client.ok()) return client.status();
  absl::StatusOr<net::SocketAddress> target = net::SocketAddress::Parse(record.target);
  if (!target.ok()) return target.status();
  Worker::UdpAdoption a;
  if (!record.local.empty()) {
    absl::StatusOr<net::SocketAddress> local = net::SocketAddress::Parse(record.local);
    if (!local.ok()) return local.status();
    a.local = *local;
  }
  if (fds->size() != 1) return absl::InvalidArgumentError("takeover: a UDP session without its socket");
  a.service = static_cast<uint16_t>(*service);
  a.listener = *listener;
  a.backend = *backend;
  a.client = *client;
  a.target = *target;
  a.age_ns = record.age_ns;
  a.idle_ns = record.idle_ns;
  a.responses = record.responses;
  a.fd = std::move((*fds)[0]);
  *worker = record.worker % workers_.size();
  return a;
}

void Server::Adopt(std::vector<std::vector<Worker::Adoption>> per_worker,
                   std::vector<std::vector<Worker::UdpAdoption>> sessions_per_worker) {
  for (size_t w = 0; w < workers_.size(); ++w) {
    std::vector<Worker::Adoption> tcp;
    std::vector<Worker::UdpAdoption> udp;
    if (w < per_worker.size()) tcp = std::move(per_worker[w]);
    if (w < sessions_per_worker.size()) udp = std::move(sessions_per_worker[w]);
    if (!tcp.empty() || !udp.empty()) workers_[w]->Adopt(std::move(tcp), std::move(udp));
  }
}

void Server::ReleaseAccepts() {
  for (auto& worker : workers_) worker->ReleaseAccepts();
}

}  // namespace l4lb
