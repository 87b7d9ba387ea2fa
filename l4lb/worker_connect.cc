// A worker's backend connects: the pick (affinity pin, then the service's
// balancing policy), the backend socket (congestion control, source address or,
// transparent, the client's own; keepalive), the connect through the ring with
// its linked timeout, and what a failed connect means for the next attempt and
// the backend's health.

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "glog/logging.h"

#include "l4lb/net/congestion.h"
#include "l4lb/net/fast_open.h"
#include "l4lb/net/socket.h"
#include "l4lb/net/transparent.h"
#include "l4lb/worker.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;
using ring::Op;
using ring::Tag;

namespace {

// Errors of l4lb's own making: out of local ports, fds or kernel memory. The
// backend never saw the connect, so they say nothing of its health.
bool IsLocalConnectError(int err) {
  return err == EADDRNOTAVAIL || err == EAGAIN || err == EMFILE || err == ENFILE ||
         err == ENOBUFS || err == ENOMEM;
}

}  // namespace

// --- Connecting --------------------------------------------------------------

void Worker::Connect(Connection& c) {
  ServiceState& service = services_[c.service];
  const int max_attempts = 1 + service.options.connect_retries;
  int backend = backend::BackendSnapshot::kNone;
  if (c.attempts < max_attempts) {
    backend = c.attempts == 0 ? PinnedBackend(c) : backend::BackendSnapshot::kNone;
    if (backend == backend::BackendSnapshot::kNone) {
      backend = PickBackend(c);
    }
  }
  if (backend == backend::BackendSnapshot::kNone) {
    if (c.attempts == 0) {
      LOG_EVERY_T(ERROR, 1.0) << "no healthy backend for " << c.client.ToString() << " on "
                              << listeners_[c.listener].listener.address.ToString()
                              << ": closing the client";
      return Close(c, CloseReason::kNoBackend);
    }
    return Close(c, CloseReason::kConnectFailed);
  }
  if (c.attempts > 0) counters_.connect_retries.Add();
  c.backend = backend;
  c.tried[c.attempts++] = static_cast<uint32_t>(backend);
  const backend::BackendSpec& spec = c.snapshot->backends()[backend];
  // Port 0: the port the client connected to (listeners on port ranges).
  c.target = spec.address;
  if (c.target.port() == 0) c.target.set_port(listeners_[c.listener].listener.address.port());
  absl::StatusOr<net::Fd> fd = net::OpenTcpClientSocket(spec.address.family());
  if (!fd.ok()) {
    counters_.local_errors.Add();
    LOG_EVERY_T(ERROR, 1.0) << "socket for backend " << spec.name << ": " << fd.status().message()
                            << " (l4lb's own limit, not the backend's fault)";
    return Close(c, CloseReason::kError);
  }
  if (!options_.backend_congestion.empty()) {
    // Checked at start-up (main.cc), so this fails only if the module went away.
    if (absl::Status st = net::SetCongestion(fd->get(), options_.backend_congestion); !st.ok()) {
      LOG_EVERY_T(WARNING, 60.0) << "backend " << spec.name << ": " << st.message();
    }
  }
  if (service.options.transparent) {
    // From the client's own address (after a PROXY header, the client it named).
    // A failure here is this client's (another family than the backend's): the
    // backend never saw a packet, so its health is not touched. Closed, not
    // retried: README "Transparent mode" asks for one service per family.
    absl::StatusOr<net::SocketAddress> source =
        net::TransparentSource(c.client, spec.address.family());
    const absl::Status st =
        source.ok() ? net::BindTransparent(fd->get(), *source) : source.status();
    if (!st.ok()) {
      counters_.local_errors.Add();
      c.connect_error = source.ok() ? EADDRNOTAVAIL : EAFNOSUPPORT;
      LOG_EVERY_T(WARNING, 1.0) << "backend " << spec.name << ": transparent: " << st.message()
                                << " (not the backend's fault; closing the client)";
      return Close(c, CloseReason::kConnectFailed);
    }
  } else if (!service.options.source.empty()) {
    // The next source of the backend's family (Server::Create checked one exists).
    const std::vector<net::SocketAddress>& sources = service.options.source;
    for (size_t i = 0; i < sources.size(); ++i) {
      const net::SocketAddress& source = sources[service.next_source++ % sources.size()];
      if (source.family() != spec.address.family()) continue;
      if (absl::Status st = net::BindSource(fd->get(), source); !st.ok()) {
        counters_.local_errors.Add();
        LOG_EVERY_T(ERROR, 1.0) << "backend " << spec.name << ": " << st.message()
                                << " (l4lb's own limit, not the backend's fault)";
        return Close(c, CloseReason::kError);
      }
      break;
    }
  }
  if (service.options.backend_keepalive.enabled()) {
    if (absl::Status st = net::SetKeepalive(fd->get(), service.options.backend_keepalive); !st.ok()) {
      LOG_EVERY_T(WARNING, 60.0) << "backend " << spec.name << ": " << st.message();
    }
  }
  if (service.options.backend_tfo) {
    if (absl::Status st = net::SetFastOpenConnect(fd->get(), service.options.backend_tfo_syn_retries); !st.ok()) {
      LOG_EVERY_T(WARNING, 60.0) << "backend " << spec.name << ": " << st.message();
    }
  }
  c.backend_fd = fd->Release();
  c.connect_started_ns = now_ns_;
  ring_->Reserve(2);
  io_uring_sqe* sqe = ring_->GetSqe();
  // c.target lives until the connection is freed, after the connect's CQE.
  io_uring_prep_connect(sqe, c.backend_fd, c.target.sockaddr_ptr(), c.target.sockaddr_len());
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kConnect, c.generation, c.slot));
  sqe->flags |= IOSQE_IO_LINK;
  sqe = ring_->GetSqe();
  io_uring_prep_link_timeout(sqe, &service.connect_timeout, 0);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kConnectTimeout, c.generation, c.slot));
  c.in_flight += 2;
  c.connect_pending = true;
  ++service.connecting[backend];  // until OnConnect: a load the counters do not show yet
}

int Worker::PickBackend(const Connection& c) {
  ServiceState& service = services_[c.service];
  const auto load = [&service](uint32_t b) {
    // Relaxed loads of the workers' own counters: a view a few events old is
    // good enough to balance by, and nobody writes a shared line per accept.
    uint64_t active = service.connecting[b];
    for (const stats::ServiceCounters* peer : service.peers) active += peer->backends[b].active.Get();
    return active;
  };
  return service.picker->Pick(*c.snapshot, c.key, absl::MakeConstSpan(c.tried, c.attempts), load);
}

int Worker::PinnedBackend(const Connection& c) {
  balancer::AffinityTable* affinity = services_[c.service].options.affinity;
  if (affinity == nullptr) return backend::BackendSnapshot::kNone;
  const std::optional<balancer::AffinityTable::Ip> pinned =
      affinity->Lookup(c.client.IpBytes16(), now_ns_);
  if (!pinned) return backend::BackendSnapshot::kNone;
  // Pins name hosts, not indices: the group's services may list their backends
  // in another order or with other ports. A down pin, or one in maintenance,
  // is not honoured (the client moves, and its next connection pins it anew),
  // as in HAProxy; a drained one is: an FTP session's data connections follow
  // their control connection to the backend being drained.
  const std::vector<backend::BackendSpec>& backends = c.snapshot->backends();
  for (size_t i = 0; i < backends.size(); ++i) {
    if (backends[i].address.IpBytes16() == *pinned && c.snapshot->takes_pinned(i)) {
      counters_.affinity_hits.Add();
      return static_cast<int>(i);
    }
  }
  return backend::BackendSnapshot::kNone;
}

void Worker::OnConnect(Connection& c, int res) {
  --c.in_flight;
  c.connect_pending = false;
  --services_[c.service].connecting[c.backend];
  if (c.state != Connection::State::kConnecting) return OnSettled(c);
  if (res == 0) return StartRelay(c);
  // -ECANCELED here means the linked timeout fired (a close would have moved the
  // state to kClosing first).
  c.connect_error = res == -ECANCELED ? ETIMEDOUT : -res;
  const int max_attempts = 1 + services_[c.service].options.connect_retries;
  if (IsLocalConnectError(c.connect_error)) {
    counters_.local_errors.Add();
    LOG_EVERY_T(ERROR, 1.0) << "backend " << c.target.ToString()
                            << ": connect: " << strerror(c.connect_error)
                            << ": l4lb is out of local ports, fds or buffers (not the "
                               "backend's fault; not counted against its health)";
  } else {
    LOG_EVERY_T(WARNING, 1.0) << "backend " << c.target.ToString()
                              << ": connect: " << strerror(c.connect_error) << " (client "
                              << c.client.ToString() << ", attempt " << int{c.attempts} << " of "
                              << max_attempts << ")";
    // Refused, timed out, unreachable: the backend (or the way to it) is unwell.
    stats::BackendCounters& backend = counters_.backend(c.service, c.backend);
    (c.connect_error == ETIMEDOUT ? backend.connect_timeouts : backend.connect_errors).Add();
    ReportBackendFailure(c.service, c.backend, c.client);
  }
  // Free to retry: the client's bytes wait unread in its socket, nothing was
  // sent to the failed backend.
  close(c.backend_fd);
  c.backend_fd = -1;
  Connect(c);
}

void Worker::ReportBackendFailure(uint16_t service, int backend,
                                  const net::SocketAddress& client) {
  backend::PassiveHealth* passive = services_[service].options.passive;
  if (passive == nullptr || backend < 0) return;
  // By host, not port: one client must not outvote the probes by opening many
  // connections (PassiveHealth counts each client once per window).
  passive->Report(static_cast<size_t>(backend), backend::FlowKey(client, backend::HashKey::kSrcIp));
}

}  // namespace l4lb
