#include "l4lb/worker.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "glog/logging.h"

#include "l4lb/clock/monotonic.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;
using ring::Op;
using ring::Tag;

namespace {

// How often connections flushing to a survivor check its ACKs (worker_tcp.cc).
constexpr absl::Duration kFlushCheck = absl::Milliseconds(2);

}  // namespace

Worker::Worker(Options options)
    : options_(std::move(options)),
      pipes_(options_.pipes),
      copy_buffer_(options_.copy_bytes),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  PCHECK(wake_fd_.valid()) << "eventfd";
  for (const Service& service : options_.services) {
    ServiceState state;
    state.options = service;
    const timespec ts = absl::ToTimespec(service.connect_timeout);
    state.connect_timeout = {.tv_sec = ts.tv_sec, .tv_nsec = ts.tv_nsec};
    state.idle_timeout_ns = absl::ToInt64Nanoseconds(service.idle_timeout);
    state.fin_timeout_ns = absl::ToInt64Nanoseconds(service.client_fin_timeout);
    state.client_timeout_ns = absl::ToInt64Nanoseconds(service.client_timeout);
    state.backend_timeout_ns = absl::ToInt64Nanoseconds(service.backend_timeout);
    // Silent for idle_timeout is too long once half-closed as well.
    if (state.idle_timeout_ns > 0 && state.fin_timeout_ns > state.idle_timeout_ns) {
      state.fin_timeout_ns = state.idle_timeout_ns;
    }
    if (service.admission != nullptr && service.admission->limits().bandwidth() > 0) {
      state.bandwidth = &service.admission->limits();
    }
    const size_t backends = service.publisher->Current()->backends().size();
    state.picker.emplace(service.balance, service.balance_factor, static_cast<uint32_t>(options_.id));
    state.connecting.assign(backends, 0);
    services_.push_back(std::move(state));
    // Backends keep their indices across snapshots (WithHealth): one slot each.
    counters_.services.push_back(std::make_unique<stats::ServiceCounters>(
        service.publisher->Current()->backends().size()));
  }
  for (Listener& listener : options_.listeners) {
    if (listener.udp) {
      udp_listeners_.push_back(UdpListenerState{.listener = std::move(listener)});
    } else {
      listeners_.push_back(ListenerState{.listener = std::move(listener)});
    }
  }
  sessions_ = std::make_unique<udp::SessionTable>(services_.size());
  options_.listeners.clear();
}

Worker::~Worker() = default;

void Worker::Run(std::promise<absl::Status> ready) {
  absl::StatusOr<ring::Ring> ring = ring::Ring::Create({});
  if (!ring.ok()) {
    ready.set_value(ring.status());
    finished_.store(true, std::memory_order_release);
    return;
  }
  ring_.emplace(*std::move(ring));
  now_ns_ = MonotonicNanos();
  RefreshSnapshots();
  accepts_paused_ = options_.hold_accepts;  // before StartUdp arms the UDP listeners
  if (absl::Status udp = StartUdp(); !udp.ok()) {
    udp_buffers_.reset();
    ring_.reset();
    ready.set_value(udp);
    finished_.store(true, std::memory_order_release);
    return;
  }
  ArmWake();
  for (uint32_t i = 0; i < listeners_.size(); ++i) ArmAccept(i);
  ready.set_value(absl::OkStatus());

  const int64_t tick_ns = absl::ToInt64Nanoseconds(options_.tick);
  int64_t next_tick_ns = now_ns_ + tick_ns;
  while (!Drained()) {
    absl::Duration wait =
        queued_.empty() ? absl::Nanoseconds(std::max<int64_t>(0, next_tick_ns - now_ns_))
                        : absl::ZeroDuration();
    // A flush waits for ACKs, which bring no CQE: look again soon.
    if (!flushing_.empty()) wait = std::min(wait, kFlushCheck);
    if (!throttle_.empty()) {
      wait = std::min(wait, absl::Nanoseconds(std::max<int64_t>(0, throttle_.due_ns() - now_ns_)));
    }
    // While bulk data flows the next burst is microseconds away: poll for it
    // rather than sleep and be woken by its sender (an IPI paid on the sender's
    // CPU). bench/RESULTS.md: one stream +30-40 %, CPU per GB about the same.
    // Short connections never spin: they would only burn the CPU they wait on.
    if (bulk_pass_ && queued_.empty() && options_.busy_poll > absl::ZeroDuration()) {
      ring_->PollFor(options_.busy_poll);
    }
    bulk_pass_ = false;
    ring_->SubmitAndWait(wait);
    now_ns_ = MonotonicNanos();
    // Before the completions: a worker that slept through a health change must
    // not pick for the clients that woke it from the snapshot it fell asleep with.
    RefreshSnapshots();
    ring_->DrainCompletions([this](const io_uring_cqe& cqe) { Dispatch(cqe); });
    if (!throttle_.empty() && now_ns_ >= throttle_.due_ns()) {
      for (const auto& [slot, generation] : throttle_.TakeAll(connections_)) {
        Connection* c = connections_.Find(slot, generation);
        if (c == nullptr || c->queued) continue;
        c->queued = true;
        queued_.emplace_back(slot, generation);
      }
    }
    RunQueued();
    if (!flushing_.empty()) CheckFlushing();
    if (exporting_to_ != nullptr && !export_reported_) CheckExportDone();
    if (now_ns_ >= next_tick_ns) {
      OnTick();
      next_tick_ns = now_ns_ + tick_ns;
    }
  }
  LOG(INFO) << "worker " << options_.id << ": drained";
  {
    // A live upgrade asked of a worker with nothing left gets its answer here.
    std::lock_guard<std::mutex> lock(takeover_mu_);
    run_over_ = true;
    if (takeover::Outbox* out = export_requested_.exchange(nullptr)) out->WorkerDone();
    if (exporting_to_ != nullptr && !export_reported_) exporting_to_->WorkerDone();
  }
  udp_buffers_.reset();  // unregistered while the ring is still there
  ring_.reset();         // cancels the eventfd poll and UDP listener receives
  finished_.store(true, std::memory_order_release);
}

void Worker::Dispatch(const io_uring_cqe& cqe) {
  const Tag tag = Tag::Decode(cqe.user_data);
  switch (tag.op) {  // no default: -Wswitch names an Op nobody handles
    case Op::kAccept:
      return OnAccept(tag.slot, cqe);
    case Op::kStopAccept:
      --stop_accepts_in_flight_;
      return;
    case Op::kWake:
      return OnWake(cqe);
    case Op::kUdpRecv:
      return OnUdpRecv(tag.slot, cqe);
    case Op::kUdpSend:
      return OnUdpSent(static_cast<uint16_t>(tag.slot), cqe);
    case Op::kUdpSessionRecv:
    case Op::kUdpCancel: {
      udp::Session* s = sessions_->FindSlot(tag.slot, tag.generation);
      if (s == nullptr) {
        RecycleUdpBuffer(cqe);
        LOG(DFATAL) << "CQE for a freed UDP session: slot " << tag.slot << " res " << cqe.res;
        return;
      }
      if (tag.op == Op::kUdpSessionRecv) return OnUdpSessionRecv(*s, cqe);
      --s->in_flight;
      return OnUdpSessionSettled(*s);
    }
    case Op::kConnect:
    case Op::kConnectTimeout:
    case Op::kClientReadable:
    case Op::kBackendReadable:
    case Op::kClientWritable:
    case Op::kBackendWritable:
    case Op::kCancel:
      break;
  }
  Connection* c = connections_.Find(tag.slot, tag.generation);
  if (c == nullptr) {
    // Every request is counted in in_flight and a slot is freed only at zero, so
    // this is a bookkeeping bug, not a peer's doing.
    LOG(DFATAL) << "CQE for a freed connection: op " << static_cast<int>(tag.op) << " slot "
                << tag.slot << " res " << cqe.res;
    return;
  }
  switch (tag.op) {
    case Op::kConnect:
      return OnConnect(*c, cqe.res);
    case Op::kConnectTimeout:
    case Op::kCancel:
      --c->in_flight;
      return OnSettled(*c);
    case Op::kClientReadable:
    case Op::kBackendReadable:
    case Op::kClientWritable:
    case Op::kBackendWritable:
      return OnReadiness(*c, tag.op, cqe);
    case Op::kAccept:
    case Op::kStopAccept:
    case Op::kWake:
    case Op::kUdpRecv:
    case Op::kUdpSend:
    case Op::kUdpSessionRecv:
    case Op::kUdpCancel:
      break;
  }
}

// --- Housekeeping ------------------------------------------------------------

void Worker::ArmWake() {
  io_uring_sqe* sqe = ring_->GetSqe();
  io_uring_prep_poll_multishot(sqe, wake_fd_.get(), POLLIN);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kWake, 0, 0));
}

void Worker::RequestDrain() {
  drain_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void Worker::SetPeers(const std::vector<std::vector<const stats::ServiceCounters*>>& peers) {
  for (size_t s = 0; s < services_.size() && s < peers.size(); ++s) services_[s].peers = peers[s];
}

void Worker::RequestHandover() {
  handover_requested_.store(true, std::memory_order_release);
  RequestDrain();
}

void Worker::RequestCut(Removed removed) {
  {
    std::lock_guard<std::mutex> lock(cut_mu_);
    cut_request_ = std::move(removed);
  }
  cut_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void Worker::CutRemoved(const Removed& removed) {
  const auto gone = [&removed](uint16_t service, int backend) {
    if (service < removed.services.size() && removed.services[service]) return true;
    return backend >= 0 && service < removed.backends.size() &&
           static_cast<size_t>(backend) < removed.backends[service].size() &&
           removed.backends[service][backend];
  };
  const auto listener_gone = [&removed](bool udp, const net::SocketAddress& address) {
    return std::find(removed.listeners.begin(), removed.listeners.end(),
                     std::pair<bool, net::SocketAddress>(udp, address)) != removed.listeners.end();
  };
  size_t cut = 0;
  connections_.ForEachLive([&](Connection& c) {
    if (gone(c.service, c.backend) || listener_gone(false, listeners_[c.listener].listener.address)) {
      Close(c, CloseReason::kDrain);
      ++cut;
    }
  });
  sessions_->ForEachLive([&](udp::Session& s) {
    if (gone(s.service, s.backend) ||
        listener_gone(true, udp_listeners_[s.listener].listener.address)) {
      CloseUdpSession(s, "reload");
      ++cut;
    }
  });
  if (cut > 0) {
    LOG(INFO) << "worker " << options_.id << ": drain timeout after a reload: cut " << cut
              << " connection(s) and session(s) of removed services, backends or listeners";
  }
}

void Worker::RequestForceClose() {
  force_close_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

std::optional<std::vector<stats::LiveConnection>> Worker::ListConnections(
    const stats::ConnectionList::Request& request, absl::Duration timeout) {
  if (finished()) return std::nullopt;
  return connection_list_.Ask(request, timeout, [this] {
    const uint64_t one = 1;
    (void)!write(wake_fd_.get(), &one, sizeof(one));
  });
}

void Worker::AnswerConnectionList() {
  const stats::ConnectionList::Request request = connection_list_.request();
  std::vector<stats::LiveConnection> out;
  connections_.ForEachLive([&](const Connection& c) {
    if (out.size() >= request.limit || (request.service >= 0 && c.service != request.service)) {
      return;
    }
    static constexpr const char* kStates[] = {"free",    "connecting", "relaying", "flushing",
                                              "closing", "exporting",  "exported"};
    out.push_back({.service = c.service,
                   .client = c.client.ToString(),
                   .backend = c.backend >= 0 ? c.target.ToString() : std::string(),
                   .state = kStates[static_cast<int>(c.state)],
                   .age = absl::Nanoseconds(now_ns_ - c.start_ns),
                   .bytes_up = c.up.bytes(),
                   .bytes_down = c.down.bytes()});
  });
  connection_list_.Answer(std::move(out));
}

void Worker::OnWake(const io_uring_cqe& cqe) {
  uint64_t value;
  (void)!read(wake_fd_.get(), &value, sizeof(value));
  if (!(cqe.flags & IORING_CQE_F_MORE)) ArmWake();
  // Asked by the admin endpoint (GET /connections): answered here, on this thread.
  if (connection_list_.pending()) AnswerConnectionList();
  OnTakeoverWake();
  if (cut_requested_.exchange(false, std::memory_order_acq_rel)) {
    std::optional<Removed> removed;
    {
      std::lock_guard<std::mutex> lock(cut_mu_);
      removed.swap(cut_request_);
    }
    if (removed) CutRemoved(*removed);
  }
  if (drain_requested_.load(std::memory_order_acquire) && !draining_) {
    handover_ = handover_requested_.load(std::memory_order_acquire);
    StopAccepting();
  }
  if (force_close_requested_.load(std::memory_order_acquire)) {
    const size_t live = connections_.live();
    if (live > 0) {
      LOG(WARNING) << "worker " << options_.id << ": drain timeout: cutting " << live
                   << " connection(s)";
    }
    connections_.ForEachLive([this](Connection& c) { Close(c, CloseReason::kDrain); });
    sessions_->ForEachLive([this](udp::Session& s) { CloseUdpSession(s, "shutdown"); });
  }
}

void Worker::StopAccepting() {
  draining_ = true;
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    ListenerState& l = listeners_[i];
    if (!l.accepting) {
      l.listener.fd.Reset();
      continue;
    }
    CancelListening(Op::kAccept, i);
  }
  // A shutdown's drain keeps receiving for the live sessions (a new client's
  // datagram is dropped). A handover must not: the next config's workers read
  // these sockets now, and a datagram this ring took would be served by the
  // old config. The sockets stay open: sessions send their replies from them.
  if (!handover_) return;
  for (uint32_t i = 0; i < udp_listeners_.size(); ++i) {
    if (udp_listeners_[i].receiving) CancelListening(Op::kUdpRecv, i);
  }
}

void Worker::CancelListening(Op op, uint32_t index) {
  io_uring_sqe* sqe = ring_->GetSqe();
  io_uring_prep_cancel64(sqe, Tag::Encode(op, 0, index), 0);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kStopAccept, 0, index));
  ++stop_accepts_in_flight_;
}

void Worker::TouchIdle(Connection& c) {
  ServiceState& service = services_[c.service];
  if (c.half_closed && service.fin_timeout_ns > 0) {
    service.half_closed.Touch(c, now_ns_);
  } else if (service.idle_timeout_ns > 0) {
    service.idle.Touch(c, now_ns_);
  }
}

void Worker::ForgetIdle(Connection& c) {
  ServiceState& service = services_[c.service];
  // Each list only ever holds its own: the links are shared.
  (c.half_closed && service.fin_timeout_ns > 0 ? service.half_closed : service.idle).Remove(c);
}

void Worker::OnHalfClosed(Connection& c) {
  if (c.half_closed) return;
  ForgetIdle(c);
  c.half_closed = true;
  TouchIdle(c);
}

void Worker::OnTick() {
  for (ServiceState& service : services_) {
    if (service.idle_timeout_ns > 0) {
      while (Connection* c = service.idle.Oldest()) {
        if (now_ns_ - service.idle.LastNs(*c) < service.idle_timeout_ns) break;
        Close(*c, CloseReason::kIdleTimeout);
      }
    }
    if (service.fin_timeout_ns > 0) {
      while (Connection* c = service.half_closed.Oldest()) {
        if (now_ns_ - service.half_closed.LastNs(*c) < service.fin_timeout_ns) break;
        Close(*c, CloseReason::kFinTimeout);
      }
    }
  }
  ExpireSideTimers();
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    if (listeners_[i].retry_at_ns > 0 && now_ns_ >= listeners_[i].retry_at_ns) ArmAccept(i);
  }
  ExpireUdpSessions();
  if (!proxy_handshakes_.empty()) ExpireProxyHandshakes();
  if (!sni_peeks_.empty()) ExpireSniPeeks();
  if (now_ns_ - last_pipe_trim_ns_ >= 1'000'000'000) {
    pipes_.Trim();
    last_pipe_trim_ns_ = now_ns_;
  }
}

void Worker::RefreshSnapshots() {
  for (uint16_t s = 0; s < services_.size(); ++s) {
    ServiceState& service = services_[s];
    const uint64_t generation = service.options.publisher->generation();
    if (generation == service.generation) continue;
    service.snapshot = service.options.publisher->Current();
    service.generation = generation;
    if (service.options.kill_on_down) CloseConnectionsToDownBackends(s);
  }
}

bool Worker::Drained() const {
  // UDP sessions live on through a drain until they idle out (or are cut).
  if (!draining_ || connections_.live() > 0 || stop_accepts_in_flight_ > 0 ||
      sessions_->allocated() > 0) {
    return false;
  }
  return std::none_of(listeners_.begin(), listeners_.end(),
                      [](const ListenerState& l) { return l.accepting; });
}

}  // namespace l4lb
