// A worker's part in a live upgrade (--takeover, l4lb/takeover/): in the
// running process, pausing accepts and handing each relaying connection over
// between pumps; in the next process, adopting them. What crosses is only ever
// taken with no request in flight on the connection, so the sockets' and the
// pipes' queued bytes are the whole state of its byte stream: nothing sits in
// user space between pumps (relay/flow.h), and neither process relays it while
// the other might.

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <utility>

#include "glog/logging.h"

#include "l4lb/worker.h"

namespace l4lb {

using relay::Connection;
using ring::Op;
using ring::Tag;

namespace {

void WakeUp(int fd) {
  const uint64_t one = 1;
  (void)!write(fd, &one, sizeof(one));
}

takeover::FlowState ToWire(const relay::Flow& flow) {
  const relay::Flow::Saved saved = flow.Save();
  return {.bytes = saved.bytes,
          .pipe_bytes = flow.holds_pipe() ? saved.pipe_bytes : 0,
          .source_eof = saved.eof,
          .done = saved.done,
          .last = saved.last};
}

// The pipe an adoption brought (its bytes as the kernel counts them: that,
// not the record, is what the pipe holds), or an invalid one.
relay::Pipe AdoptPipe(net::Fd (&fds)[2], relay::Flow::Saved& saved) {
  if (!fds[0].valid() || !fds[1].valid()) {
    saved.pipe_bytes = 0;
    return relay::Pipe();
  }
  int queued = 0;
  if (ioctl(fds[0].get(), FIONREAD, &queued) == 0 && queued >= 0 &&
      static_cast<uint32_t>(queued) != saved.pipe_bytes) {
    LOG_EVERY_T(WARNING, 1.0) << "takeover: a pipe holds " << queued << " bytes, its record says "
                              << saved.pipe_bytes << "; going by the pipe";
    saved.pipe_bytes = static_cast<uint32_t>(queued);
  }
  relay::Pipe pipe{.read_fd = fds[0].Release(), .write_fd = fds[1].Release()};
  pipe.capacity = fcntl(pipe.write_fd, F_GETPIPE_SZ);
  return pipe;
}

}  // namespace

bool Worker::RequestExport(takeover::Outbox* out) {
  std::lock_guard<std::mutex> lock(takeover_mu_);
  if (run_over_) return false;
  out->Expect();
  export_requested_.store(out, std::memory_order_release);
  WakeUp(wake_fd_.get());
  return true;
}

void Worker::RequestExportEnd(bool handed_over) {
  export_end_requested_.store(handed_over ? 1 : 2, std::memory_order_release);
  WakeUp(wake_fd_.get());
}

void Worker::Adopt(std::vector<Adoption> adoptions, std::vector<UdpAdoption> sessions) {
  {
    std::lock_guard<std::mutex> lock(adopt_mu_);
    for (Adoption& a : adoptions) adoptions_.push_back(std::move(a));
    for (UdpAdoption& a : sessions) udp_adoptions_.push_back(std::move(a));
  }
  WakeUp(wake_fd_.get());
}

void Worker::ReleaseAccepts() {
  release_accepts_requested_.store(true, std::memory_order_release);
  WakeUp(wake_fd_.get());
}

void Worker::OnTakeoverWake() {
  if (takeover::Outbox* out = export_requested_.exchange(nullptr, std::memory_order_acq_rel)) {
    exporting_to_ = out;
    export_reported_ = false;
    BeginExport();
  }
  if (const int end = export_end_requested_.exchange(0, std::memory_order_acq_rel); end != 0) {
    EndExport(/*handed_over=*/end == 1);
  }
  std::vector<Adoption> adopted;
  std::vector<UdpAdoption> adopted_sessions;
  {
    std::lock_guard<std::mutex> lock(adopt_mu_);
    adopted.swap(adoptions_);
    adopted_sessions.swap(udp_adoptions_);
  }
  for (Adoption& a : adopted) AdoptOne(a);
  for (UdpAdoption& a : adopted_sessions) AdoptUdpSession(a);
  if (release_accepts_requested_.exchange(false, std::memory_order_acq_rel)) ResumeAccepts();
}

// --- The running process -------------------------------------------------------

void Worker::PauseAccepts() {
  accepts_paused_ = true;
  // The sockets stay open (OnAccept re-arms nothing while paused): clients
  // that connect meanwhile wait in the backlog for whichever process accepts
  // next. UDP alike: a new client's datagram waits in the socket (the next
  // process would otherwise start a session for a client this one still has).
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    if (listeners_[i].accepting) CancelListening(Op::kAccept, i);
  }
  for (uint32_t i = 0; i < udp_listeners_.size(); ++i) {
    if (udp_listeners_[i].receiving) CancelListening(Op::kUdpRecv, i);
  }
}

void Worker::ResumeAccepts() {
  accepts_paused_ = false;
  for (uint32_t i = 0; i < listeners_.size(); ++i) ArmAccept(i);
  for (uint32_t i = 0; i < udp_listeners_.size(); ++i) ArmUdpRecv(i);
}

void Worker::BeginExport() {
  PauseAccepts();
  connections_.ForEachLive([this](Connection& c) {
    if (c.state == Connection::State::kRelaying) BeginExportOf(c);
  });
}

void Worker::BeginExportOf(Connection& c) {
  c.state = Connection::State::kExporting;
  ForgetIdle(c);
  ForgetSideTimers(c);
  // Each cancelled poll's last CQE, and each cancel's, comes back through
  // OnSettled: the connection is still only once in_flight is 0.
  if (c.client_reading) Cancel(c, Op::kClientReadable);
  if (c.backend_reading) Cancel(c, Op::kBackendReadable);
  if (c.client_writing) Cancel(c, Op::kClientWritable);
  if (c.backend_writing) Cancel(c, Op::kBackendWritable);
  OnExportSettled(c);
}

void Worker::OnExportSettled(Connection& c) {
  if (c.in_flight > 0) return;
  if (exporting_to_ == nullptr) return ResumeRelay(c);  // the takeover failed meanwhile
  takeover::Connection r;
  r.service = services_[c.service].options.name;
  r.front = services_[c.front].options.name;
  r.listener = listeners_[c.listener].listener.address.ToString();
  r.backend = services_[c.service].snapshot->backends()[c.backend].name;
  r.client = c.client.ToString();
  r.target = c.target.ToString();
  r.age_ns = now_ns_ - c.start_ns;
  r.worker = static_cast<uint32_t>(options_.id);
  r.proxy_screen = c.proxy_screen;
  r.half_closed = c.half_closed;
  r.up = ToWire(c.up);
  r.down = ToWire(c.down);
  takeover::Outbox::Item item{.record = std::move(r), .fds = {c.client_fd, c.backend_fd}};
  for (const relay::Flow* flow : {&c.up, &c.down}) {
    if (flow->holds_pipe() && flow->pipe_bytes() > 0) {
      item.fds.push_back(flow->pipe().read_fd);
      item.fds.push_back(flow->pipe().write_fd);
    }
  }
  c.state = Connection::State::kExported;
  exporting_to_->Push(std::move(item));
}

void Worker::CheckExportDone() {
  if (stop_accepts_in_flight_ > 0) return;
  for (const ListenerState& l : listeners_) {
    if (l.accepting) return;
  }
  for (const UdpListenerState& l : udp_listeners_) {
    if (l.receiving) return;
  }
  // Connections still connecting (or reading a PROXY header or a ClientHello)
  // go once they relay; those flushing to a survivor or closing stay and end
  // here.
  bool waiting = false;
  connections_.ForEachLive([&waiting](const Connection& c) {
    waiting |= c.state == Connection::State::kConnecting ||
               c.state == Connection::State::kExporting;
  });
  if (waiting) return;
  // No new session can start now: the listeners receive nothing.
  ExportUdpSessions();
  export_reported_ = true;
  exporting_to_->WorkerDone();
}

void Worker::EndExport(bool handed_over) {
  exporting_to_ = nullptr;
  export_reported_ = false;
  size_t n = 0;
  connections_.ForEachLive([&](Connection& c) {
    if (c.state != Connection::State::kExported) return;
    ++n;
    if (handed_over) {
      ReleaseHandedOver(c);
    } else {
      ResumeRelay(c);
    }
  });
  // UDP sessions went on here meanwhile (still receiving): the next process
  // has them now, or this one simply keeps them.
  if (handed_over) sessions_->ForEachLive([this](udp::Session& s) { ReleaseHandedOverSession(s); });
  if (handed_over) {
    LOG(INFO) << "worker " << options_.id << ": handed over " << n << " connection(s)";
  } else {
    LOG(WARNING) << "worker " << options_.id << ": takeover failed: relaying " << n
                 << " connection(s) here again, accepting again";
    ResumeAccepts();
  }
}

void Worker::ReleaseHandedOver(Connection& c) {
  // The next process holds the same sockets and pipes: closing this process's
  // fds sends nothing (no FIN, no reset: the files stay open there), and the
  // connection ends in its access log, not in this one's.
  close(c.client_fd);
  close(c.backend_fd);
  pipes_.DiscardInUse(c.up.TakePipe());
  pipes_.DiscardInUse(c.down.TakePipe());
  Leave(c.front, c.client, &c.pass, &c.global_pass);
  if (c.affinity_token != 0) {
    services_[c.service].options.affinity->Release(c.client.IpBytes16(), c.affinity_token, now_ns_);
  }
  counters_.active.Sub();
  counters_.service(c.front).active.Sub();
  if (c.service != c.front) counters_.service(c.service).active.Sub();
  if (c.relayed) counters_.backend(c.service, c.backend).active.Sub();
  counters_.handed_over.Add();
  connections_.Free(&c);
}

void Worker::ResumeRelay(Connection& c) {
  c.state = Connection::State::kRelaying;
  // As StartRelay: arming a poll checks readiness, so bytes that arrived while
  // nothing polled produce a CQE at once; the pumps move what the pipes hold.
  ArmPoll(c, Op::kClientReadable);
  ArmPoll(c, Op::kBackendReadable);
  TouchIdle(c);
  UpdateSideTimers(c, /*client_moved=*/true, /*backend_moved=*/true);
  if (!c.proxy_screen) Pump(c, /*up=*/true);
  if (c.state == Connection::State::kRelaying) Pump(c, /*up=*/false);
}

void Worker::ExportUdpSessions() {
  sessions_->ForEachLive([this](udp::Session& s) {
    takeover::Outbox::Item item;
    item.udp = true;
    takeover::UdpSession& r = item.udp_record;
    r.service = services_[s.service].options.name;
    r.listener = udp_listeners_[s.listener].listener.address.ToString();
    r.backend = services_[s.service].snapshot->backends()[s.backend].name;
    r.client = s.client.ToString();
    r.target = s.target.ToString();
    r.local = s.local.family() == 0 ? std::string() : s.local.ToString();
    r.age_ns = now_ns_ - s.start_ns;
    r.idle_ns = now_ns_ - s.last_active_ns;
    r.responses = s.responses;
    r.worker = static_cast<uint32_t>(options_.id);
    item.fds = {s.fd};
    exporting_to_->Push(std::move(item));
  });
}

void Worker::ReleaseHandedOverSession(udp::Session& s) {
  // As CloseUdpSession, without its log line: the session goes on there.
  counters_.backend(s.service, s.backend).udp_active.Sub();
  sessions_->Unlink(s);
  Leave(s.service, s.client, &s.pass, nullptr);
  counters_.handed_over.Add();
  if (s.receiving) {
    io_uring_sqe* sqe = ring_->GetSqe();
    io_uring_prep_cancel64(sqe, Tag::Encode(Op::kUdpSessionRecv, s.generation, s.slot), 0);
    io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kUdpCancel, s.generation, s.slot));
    ++s.in_flight;
  }
  OnUdpSessionSettled(s);  // closes this process's copy of the socket once nothing is in flight
}

// --- The next process ------------------------------------------------------------

void Worker::AdoptUdpSession(UdpAdoption& a) {
  if (sessions_->Find(a.service, a.client) != nullptr) return;  // cannot be: receiving is held
  udp::Session* s = sessions_->Create(a.service, a.client, now_ns_ - a.idle_ns);
  s->start_ns = now_ns_ - a.age_ns;
  s->listener = a.listener;
  s->backend = a.backend;
  s->target = a.target;
  s->local = a.local;
  s->responses = a.responses;
  s->fd = a.fd.Release();
  if (admission::Admission* gate = services_[s->service].options.admission;
      gate != nullptr && !gate->open()) {
    if (gate->Decide(s->client.IpBytes16(), now_ns_, &s->pass) != admission::Refusal::kNone) {
      s->pass = {};
    }
  }
  counters_.backend(s->service, s->backend).udp_active.Add();
  counters_.adopted.Add();
  ArmUdpSessionRecv(*s);
}

void Worker::AdoptOne(Adoption& a) {
  ServiceState& service = services_[a.service];
  Connection& c = *connections_.Alloc();
  c.client_fd = a.client_fd.Release();
  c.backend_fd = a.backend_fd.Release();
  c.service = a.service;
  c.front = a.front;
  c.listener = a.listener;
  c.backend = a.backend;
  c.client = a.client;
  c.target = a.target;
  c.start_ns = now_ns_ - a.age_ns;
  c.snapshot = service.snapshot;
  c.key = backend::FlowKey(c.client, service.options.hash_key);
  c.proxy_screen = a.proxy_screen;
  c.half_closed = a.half_closed;
  counters_.active.Add();
  counters_.service(c.front).active.Add();
  if (c.service != c.front) counters_.service(c.service).active.Add();
  counters_.adopted.Add();
  // A place under the entry point's limits, as any connection holds; one this
  // config would refuse goes on all the same (a reload keeps such ones too).
  if (admission::Admission* gate = services_[c.front].options.admission;
      gate != nullptr && !gate->open()) {
    if (gate->Decide(c.client.IpBytes16(), now_ns_, &c.pass) != admission::Refusal::kNone) {
      c.pass = {};
    }
  }
  if (options_.global_admission != nullptr &&
      options_.global_admission->Decide(c.client.IpBytes16(), now_ns_, &c.global_pass) !=
          admission::Refusal::kNone) {
    c.global_pass = {};
  }
  c.relayed = true;
  counters_.backend(c.service, c.backend).active.Add();
  if (balancer::AffinityTable* affinity = service.options.affinity) {
    c.affinity_token = affinity->Acquire(c.client.IpBytes16(), c.target.IpBytes16(), now_ns_);
  }
  const relay::Pipe up_pipe = AdoptPipe(a.up_pipe, a.up);
  const relay::Pipe down_pipe = AdoptPipe(a.down_pipe, a.down);
  pipes_.Adopt(up_pipe);
  pipes_.Adopt(down_pipe);
  c.up = relay::Flow::Restore(c.client_fd, c.backend_fd, a.up, up_pipe);
  c.down = relay::Flow::Restore(c.backend_fd, c.client_fd, a.down, down_pipe);
  if (services_[c.front].bandwidth != nullptr) {
    c.up.LimitReads();
    c.down.LimitReads();
  }
  ResumeRelay(c);
}

}  // namespace l4lb
