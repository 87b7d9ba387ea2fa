// The TCP half of a worker: accept, relay both directions, close
// (relay/connection.h has the state table); picking and connecting are in
// worker_connect.cc. worker.cc runs the loop and dispatches each CQE here or to
// worker_udp.cc.

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "glog/logging.h"

#include "l4lb/net/congestion.h"
#include "l4lb/net/socket.h"
#include "l4lb/worker.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;
using relay::Flow;
using ring::Op;
using ring::Tag;

namespace {

// A pump that moves this much in one go is a stream, not a message: the worker
// then polls before it sleeps (Options::busy_poll).
constexpr uint64_t kBulkBytes = 64 << 10;

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace

// --- Accepting ---------------------------------------------------------------

void Worker::ArmAccept(uint32_t index) {
  ListenerState& l = listeners_[index];
  if (draining_ || accepts_paused_ || l.accepting || !l.listener.fd.valid()) return;
  io_uring_sqe* sqe = ring_->GetSqe();
  // No address buffer: a multishot accept would overwrite one shared buffer for
  // every connection; getpeername() per connection is cheap and exact.
  io_uring_prep_multishot_accept(sqe, l.listener.fd.get(), nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kAccept, 0, index));
  l.accepting = true;
  l.retry_at_ns = 0;
}

void Worker::OnAccept(uint32_t index, const io_uring_cqe& cqe) {
  ListenerState& l = listeners_[index];
  if (cqe.res >= 0) OnNewClient(cqe.res, index);
  if (cqe.flags & IORING_CQE_F_MORE) return;
  l.accepting = false;
  if (draining_) {
    l.listener.fd.Reset();  // closed only now: the accept held the socket open
    return;
  }
  if (cqe.res == -EMFILE || cqe.res == -ENFILE || cqe.res == -ENOBUFS || cqe.res == -ENOMEM) {
    // Re-arming at once would spin on the same error; the backlog holds new
    // clients meanwhile.
    counters_.accept_errors.Add();
    LOG_EVERY_T(ERROR, 1.0) << "accept on " << l.listener.address.ToString() << ": "
                            << strerror(-cqe.res)
                            << " (open-files limit reached? see the start-up line)";
    l.retry_at_ns = now_ns_ + 100'000'000;
    return;
  }
  if (cqe.res < 0 && cqe.res != -ECANCELED) {
    counters_.accept_errors.Add();
    LOG_EVERY_T(WARNING, 1.0) << "accept on " << l.listener.address.ToString() << ": "
                              << strerror(-cqe.res);
  }
  ArmAccept(index);
}

void Worker::OnNewClient(int fd, uint32_t index) {
  // Accepted as the drain began: a shutdown closes it, a handover serves it
  // (the client connected to a listener that never stopped listening).
  if (draining_ && !handover_) {
    close(fd);
    return;
  }
  const ListenerState& l = listeners_[index];
  Connection& c = *connections_.Alloc();
  counters_.accepted.Add();
  counters_.active.Add();
  c.client_fd = fd;
  c.listener = static_cast<uint16_t>(index);
  c.service = c.front = l.listener.service;
  counters_.service(c.front).accepted.Add();
  counters_.service(c.front).active.Add();
  c.start_ns = now_ns_;
  const ServiceState& service = services_[c.service];
  c.snapshot = service.snapshot;
  absl::StatusOr<net::SocketAddress> peer = net::PeerAddress(fd);
  if (!peer.ok()) {  // the client left before we looked
    return Close(c, CloseReason::kClientReset);
  }
  c.client = *peer;
  admission::Admission* gate = service.options.admission;
  if (gate != nullptr && gate->accepts_proxy()) {
    if (gate->ProxyRequired(c.client.IpBytes16())) return StartProxyHandshake(c);
    c.proxy_screen = true;  // a header from here would be forged: StartRelay screens
  }
  AdmitAndConnect(c);
}

void Worker::AdmitAndConnect(Connection& c) {
  const ServiceState& service = services_[c.service];
  switch (Admit(c.front, c.client, &c.pass, &c.global_pass)) {
    case admission::Refusal::kNone:
      break;
    case admission::Refusal::kDenied:
      return Close(c, CloseReason::kDenied);
    case admission::Refusal::kLimited:
      return Close(c, CloseReason::kLimited);
    case admission::Refusal::kBanned:
      return Close(c, CloseReason::kBanned);
  }
  if (service.options.sni != nullptr) return StartSniPeek(c);
  c.key = backend::FlowKey(c.client, service.options.hash_key);
  // TCP_NODELAY comes from the listening socket (accepted sockets inherit it).
  Connect(c);
}

void Worker::StartRelay(Connection& c) {
  if (services_[c.service].options.admission != nullptr &&
      services_[c.service].options.admission->send_proxy() !=
          admission::AdmissionOptions::SendProxy::kOff &&
      !SendProxyHeader(c)) {
    return Close(c, CloseReason::kBackendReset);
  }
  c.state = Connection::State::kRelaying;
  counters_.relayed.Add();
  c.relayed = true;
  stats::BackendCounters& backend = counters_.backend(c.service, c.backend);
  backend.connections.Add();
  backend.active.Add();
  backend.connect_time.Observe(now_ns_ - c.connect_started_ns);
  if (balancer::AffinityTable* affinity = services_[c.service].options.affinity) {
    c.affinity_token = affinity->Acquire(c.client.IpBytes16(), c.target.IpBytes16(), now_ns_);
  }
  c.up = Flow(c.client_fd, c.backend_fd);
  c.down = Flow(c.backend_fd, c.client_fd);
  if (services_[c.front].bandwidth != nullptr) {  // the entry point's limit
    c.up.LimitReads();
    c.down.LimitReads();
  }
  // Arming checks readiness at once: bytes the client sent while we connected
  // produce a CQE right away.
  ArmPoll(c, Op::kClientReadable);
  ArmPoll(c, Op::kBackendReadable);
  TouchIdle(c);
  UpdateSideTimers(c, /*client_moved=*/true, /*backend_moved=*/true);  // both clocks start now
  // Most clients spoke while we connected (HTTP, TLS): relay that at once rather
  // than a ring round trip later when the poll reports it. The poll is armed
  // after this read, and arming checks readiness, so nothing is missed.
  if (c.proxy_screen) {
    ScreenFirstBytes(c, c.client_hup, /*urgent=*/false);
  } else {
    Pump(c, /*up=*/true, /*source_hup=*/c.client_hup);
  }
  // Connected while a live upgrade hands connections over: this one goes too.
  if (exporting_to_ != nullptr && c.state == Connection::State::kRelaying) BeginExportOf(c);
}

// --- Relaying ----------------------------------------------------------------

void Worker::ArmPoll(Connection& c, Op op) {
  int fd = -1;
  bool* armed = nullptr;
  bool multishot = false;
  switch (op) {
    case Op::kClientReadable:
      fd = c.client_fd, armed = &c.client_reading, multishot = true;
      break;
    case Op::kBackendReadable:
      fd = c.backend_fd, armed = &c.backend_reading, multishot = true;
      break;
    case Op::kClientWritable:
      fd = c.client_fd, armed = &c.client_writing;
      break;
    case Op::kBackendWritable:
      fd = c.backend_fd, armed = &c.backend_writing;
      break;
    default:
      LOG(DFATAL) << "ArmPoll with op " << static_cast<int>(op);
      return;
  }
  if (*armed) return;
  io_uring_sqe* sqe = ring_->GetSqe();
  if (multishot) {
    // POLLRDHUP: the CQE then tells when the peer's FIN is in; POLLPRI: urgent
    // data, which splice(2) stops at (Flow::Pump).
    io_uring_prep_poll_multishot(sqe, fd, POLLIN | POLLRDHUP | POLLPRI);
  } else {
    io_uring_prep_poll_add(sqe, fd, POLLOUT);
  }
  io_uring_sqe_set_data64(sqe, Tag::Encode(op, c.generation, c.slot));
  *armed = true;
  ++c.in_flight;
}

void Worker::OnReadiness(Connection& c, Op op, const io_uring_cqe& cqe) {
  const bool client_side = op == Op::kClientReadable || op == Op::kClientWritable;
  const bool readable = op == Op::kClientReadable || op == Op::kBackendReadable;
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    --c.in_flight;
    bool& armed = client_side ? (readable ? c.client_reading : c.client_writing)
                              : (readable ? c.backend_reading : c.backend_writing);
    armed = false;
  }
  if (c.state == Connection::State::kConnecting && client_side && readable && cqe.res > 0 &&
      (cqe.res & POLLRDHUP)) {
    c.client_hup = true;  // the client's poll is armed early only for a PROXY header or SNI
  }
  if (c.proxy_pending && client_side && readable) return OnProxyReadable(c, cqe);
  if (c.sni_pending && client_side && readable) return OnSniReadable(c, cqe);
  if (c.state == Connection::State::kFlushing) {
    // Only the surviving side's POLLOUT matters now: the failed side's last
    // bytes wait for room there. The reads were cancelled.
    const bool survivor = client_side != c.flush_up;  // flush_up: the backend survived
    if (survivor && !readable && cqe.res >= 0) {
      if (cqe.res & POLLERR) return Close(c, c.reason);  // gone too: nothing to deliver to
      ContinueFlush(c);
    }
    return OnSettled(c);
  }
  if (c.state != Connection::State::kRelaying) return OnSettled(c);
  if (cqe.res < 0) {
    if (cqe.res != -ECANCELED) {
      LOG_EVERY_T(WARNING, 1.0) << "poll on " << (client_side ? "client " : "backend ")
                                << "socket: " << strerror(-cqe.res);
    }
  } else if (cqe.res & POLLERR) {
    // A reset seen here also covers a side whose flow already finished, where no
    // splice would ever report it.
    const int err = SocketError(client_side ? c.client_fd : c.backend_fd);
    if (err != 0) return OnPeerFailed(c, /*client_failed=*/client_side);
  }
  // Readable: pump the flow this socket feeds. Writable: the flow feeding it.
  const bool up = client_side == readable;
  const bool hup = readable && cqe.res > 0 && (cqe.res & POLLRDHUP);
  const bool urgent = readable && cqe.res > 0 && (cqe.res & POLLPRI);
  if (c.proxy_screen && up) {
    // The up flow starts only once the client's first bytes are not a PROXY header.
    if (readable && cqe.res > 0) ScreenFirstBytes(c, hup, urgent);
  } else {
    Pump(c, up, hup, urgent);
  }
  if (c.state != Connection::State::kRelaying) return;
  // A multishot poll can end (the kernel says so by clearing F_MORE): re-arm it
  // while its flow still reads.
  if (!c.up.done() && !c.client_reading) ArmPoll(c, Op::kClientReadable);
  if (!c.down.done() && !c.backend_reading) ArmPoll(c, Op::kBackendReadable);
}

Flow::Wait Worker::Pump(Connection& c, bool up, bool source_hup, bool source_urgent) {
  Flow& flow = up ? c.up : c.down;
  if (flow.limited()) relay::Throttle::Refill(*services_[c.front].bandwidth, c, up, now_ns_);
  const uint64_t before = flow.bytes();
  const uint64_t read_before = before + flow.pipe_bytes();  // delivered or in the pipe
  const Flow::Wait wait = flow.Pump(pipes_, options_.pump_rounds, absl::MakeSpan(copy_buffer_),
                                    source_hup, source_urgent);
  const uint64_t moved = flow.bytes() - before;
  if (c.state == Connection::State::kRelaying) {
    // The source spoke if bytes came in; the destination took some if any left.
    const bool read = flow.bytes() + flow.pipe_bytes() != read_before;
    (up ? c.up_blocked : c.down_blocked) = wait == Flow::Wait::kWritable;
    UpdateSideTimers(c, up ? read : moved > 0, up ? moved > 0 : read);
  }
  if (moved >= kBulkBytes) bulk_pass_ = true;
  if (moved > 0) {
    (up ? counters_.bytes_up : counters_.bytes_down).Add(moved);
    stats::BackendCounters& backend = counters_.backend(c.service, c.backend);
    (up ? backend.bytes_up : backend.bytes_down).Add(moved);
    if (c.state == Connection::State::kRelaying) TouchIdle(c);
  }
  switch (wait) {
    case Flow::Wait::kReadable:
      break;  // the multishot POLLIN on the source is still armed
    case Flow::Wait::kWritable:
      ArmPoll(c, up ? Op::kBackendWritable : Op::kClientWritable);
      break;
    case Flow::Wait::kThrottled:
      throttle_.Park(c, now_ns_);  // the multishot POLLIN stays armed
      break;
    case Flow::Wait::kMore:
      if (!c.queued) {
        c.queued = true;
        queued_.emplace_back(c.slot, c.generation);
      }
      break;
    case Flow::Wait::kDone:
      if (c.state == Connection::State::kFlushing) break;  // ContinueFlush goes on
      if (c.up.done() && c.down.done()) {
        Close(c, CloseReason::kDone);
        break;
      }
      (up ? c.down : c.up).OtherDirectionDone();
      OnHalfClosed(c);
      break;
    case Flow::Wait::kError: {
      // The side that failed: the source of a read error, the destination of a
      // write error.
      const bool client_failed = up == flow.error_on_source();
      if (flow.error() == EMFILE || flow.error() == ENFILE) {
        counters_.local_errors.Add();
        LOG_EVERY_T(ERROR, 1.0) << "no pipe for a relayed connection: " << strerror(flow.error());
        Close(c, CloseReason::kError);
      } else if (c.state == Connection::State::kFlushing) {
        // The flow being delivered failed at its source (the side that already
        // failed: all it had is delivered; ContinueFlush goes on) or at its
        // destination (the survivor failed too: nothing can be delivered).
        if (!flow.error_on_source()) Close(c, c.reason);
      } else {
        OnPeerFailed(c, client_failed);
      }
      break;
    }
  }
  return wait;
}

void Worker::RunQueued() {
  if (queued_.empty()) return;
  std::vector<std::pair<uint32_t, uint32_t>> batch;
  batch.swap(queued_);
  for (const auto& [slot, generation] : batch) {
    Connection* c = connections_.Find(slot, generation);
    if (c == nullptr) continue;
    c->queued = false;
    if (c->state == Connection::State::kFlushing) {
      ContinueFlush(*c);
      continue;
    }
    if (c->state == Connection::State::kRelaying && !c->up.done() && !c->proxy_screen) {
      Pump(*c, /*up=*/true);
    }
    if (c->state == Connection::State::kRelaying && !c->down.done()) Pump(*c, /*up=*/false);
  }
}

// --- Closing -----------------------------------------------------------------

void Worker::Close(Connection& c, CloseReason reason) {
  if (c.state == Connection::State::kClosing || c.state == Connection::State::kFree) return;
  // A flush cut short (drain timeout, the survivor failed too) keeps its cause.
  if (c.state != Connection::State::kFlushing) c.reason = reason;
  c.state = Connection::State::kClosing;
  c.proxy_pending = false;
  c.proxy_screen = false;
  c.sni_pending = false;
  ForgetIdle(c);
  ForgetSideTimers(c);
  Leave(c.front, c.client, &c.pass, &c.global_pass);
  if (c.affinity_token != 0) {
    services_[c.service].options.affinity->Release(c.client.IpBytes16(), c.affinity_token, now_ns_);
    c.affinity_token = 0;
  }
  if (c.reason != CloseReason::kDone && c.reason != CloseReason::kConnectFailed &&
      c.reason != CloseReason::kNoBackend) {
    // Cut, not finished: both sides get a reset, never a FIN that could pass for
    // the end of a complete transfer. (Connect failures relayed nothing: the
    // client gets a plain close. A refused client gets a reset: no TIME_WAIT
    // socket on l4lb for each connection of a flood.)
    net::SetResetOnClose(c.client_fd);
    if (c.backend_fd >= 0) net::SetResetOnClose(c.backend_fd);
  }
  switch (c.reason) {
    case CloseReason::kClientReset:
    case CloseReason::kBackendReset:
      break;  // counted when the side failed
    case CloseReason::kBackendDown:
      counters_.killed_on_down.Add();
      break;
    case CloseReason::kFinTimeout:
      counters_.fin_timeouts.Add();
      break;
    case CloseReason::kClientTimeout:
      counters_.client_timeouts.Add();
      break;
    case CloseReason::kBackendTimeout:
      counters_.backend_timeouts.Add();
      break;
    case CloseReason::kIdleTimeout:
      counters_.idle_timeouts.Add();
      break;
    case CloseReason::kConnectFailed:
      counters_.connect_failed.Add();
      break;
    case CloseReason::kNoBackend:
      counters_.no_backend.Add();
      counters_.service(c.service).no_backend.Add();
      break;
    case CloseReason::kDrain:
      counters_.cut_at_drain.Add();
      break;
    case CloseReason::kNone:
    case CloseReason::kDone:
    case CloseReason::kError:
    case CloseReason::kDenied:  // counted in Admit
    case CloseReason::kLimited:
    case CloseReason::kBanned:
    case CloseReason::kBadProxy:  // counted where it was found
    case CloseReason::kBadTls:
    case CloseReason::kNoRoute:
      break;
  }
  c.up.ReleasePipe(pipes_);
  c.down.ReleasePipe(pipes_);
  // Closing an fd does not end io_uring requests on it (they hold the file), so
  // cancel each one by its tag: an exact cancel is a hash lookup, where
  // cancel-by-fd walks every armed poll of the ring (perf showed 7% of the CPU of
  // a short connection in io_poll_cancel). The fds close when the last CQE is back
  // (OnSettled). The connect's link timeout ends with its connect.
  if (c.connect_pending) Cancel(c, Op::kConnect);
  if (c.client_reading) Cancel(c, Op::kClientReadable);
  if (c.backend_reading) Cancel(c, Op::kBackendReadable);
  if (c.client_writing) Cancel(c, Op::kClientWritable);
  if (c.backend_writing) Cancel(c, Op::kBackendWritable);
  OnSettled(c);
}

void Worker::Cancel(Connection& c, Op op) {
  io_uring_sqe* sqe = ring_->GetSqe();
  io_uring_prep_cancel64(sqe, Tag::Encode(op, c.generation, c.slot), 0);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kCancel, c.generation, c.slot));
  ++c.in_flight;
}

void Worker::OnSettled(Connection& c) {
  if (c.state == Connection::State::kExporting) return OnExportSettled(c);
  if (c.state != Connection::State::kClosing || c.in_flight > 0) return;
  if (options_.access_log) LogClose(c);
  if (c.client_fd >= 0) close(c.client_fd);
  if (c.backend_fd >= 0) close(c.backend_fd);
  counters_.active.Sub();
  stats::ServiceCounters& service = counters_.service(c.front);
  service.active.Sub();
  if (c.service != c.front) counters_.service(c.service).active.Sub();  // an SNI route's
  if (c.relayed) {
    counters_.backend(c.service, c.backend).active.Sub();
    service.duration.Observe(now_ns_ - c.start_ns);
  }
  connections_.Free(&c);
}

void Worker::LogClose(const Connection& c) {
  // Queued for the logging thread: a slow log must not stall this worker.
  log::AccessLine(*options_.access_log, counters_.access_log_dropped)
      << "conn client=" << c.client.ToString()
      << " listener=" << listeners_[c.listener].listener.address.ToString()
      << " backend=" << (c.backend >= 0 ? c.target.ToString() : std::string("-"))
      << " up=" << c.up.bytes() << " down=" << c.down.bytes()
      << " duration_ms=" << (now_ns_ - c.start_ns) / 1'000'000
      << " close=" << relay::CloseReasonName(c.reason)
      << (c.reason == CloseReason::kConnectFailed
              ? std::string(" error=\"") + strerror(c.connect_error) + "\""
              : std::string());
}

void Worker::CloseConnectionsToDownBackends(uint16_t service_index) {
  const backend::BackendSnapshot& snapshot = *services_[service_index].snapshot;
  connections_.ForEachLive([&](Connection& c) {
    // Indices agree across snapshots of a service: health changes keep the list.
    if (c.service != service_index || c.backend < 0 || snapshot.healthy(c.backend)) return;
    if (c.state == Connection::State::kRelaying || c.state == Connection::State::kConnecting) {
      Close(c, CloseReason::kBackendDown);
    }
  });
}

}  // namespace l4lb
