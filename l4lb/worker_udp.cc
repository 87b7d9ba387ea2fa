// The UDP half of a worker: sessions keyed by client address on the same ring
// as the TCP connections.
//
// A client datagram arrives through the listener's multishot recvmsg into a
// provided buffer (udp/buffer_ring.h); the first one from a client address
// picks a backend (Maglev on the flow key, like TCP) and opens a session: a UDP
// socket connected to that backend with its own multishot recv. Datagrams are
// forwarded by send SQEs on the same ring, straight from the buffer they were
// received into: every send queued in a pass goes to the kernel in the one
// io_uring_enter that also waits for the next completions, so forwarding costs
// no syscall of its own (bench/RESULTS.md, 2026-12-02 UDP). Each send's CQE
// recycles its buffer. Replies leave through the listener's socket, so the
// client sees them come from the address it sent to. A datagram that cannot be
// sent at once (full socket buffer: MSG_DONTWAIT, so the ring never parks it)
// is dropped and counted, as a router would: UDP promises no more.
//
// Sessions are bounded (udp_max_sessions, which main lowers to what the fds and
// the local port range allow), and when a socket cannot be had all the same
// (other processes hold ports or fds too) the least recently active session
// gives its own back at once, so a flood of new source addresses pushes out old
// sessions instead of locking out new clients.

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "glog/logging.h"

#include "l4lb/udp/refusal.h"
#include "l4lb/worker.h"

namespace l4lb {

using ring::Op;
using ring::Tag;
using udp::Session;

namespace {

// Room for the largest UDP payload (65507 bytes over IPv4, 65527 over IPv6) plus
// the recvmsg header and source address the kernel writes in front of it.
constexpr size_t kUdpBufferSize = 65536 + 128;
// A buffer is out from the receive that fills it until the CQE of the send
// that forwards it, one pass later: these cover a burst received in one pass
// plus the previous pass's sends. Memory is touched only as far as datagrams
// fill it (64-byte datagrams: a page per buffer in use).
constexpr uint32_t kUdpBuffers = 256;
constexpr uint16_t kUdpBufferGroup = 0;
// An ICMP port unreachable comes back one round trip after the datagram it
// answers: one arriving later than this answers nothing l4lb sent (udp/refusal.h).
constexpr int64_t kRefusalWindowNs = 2'000'000'000;
// Sessions evicted for one new session whose socket could not be had. One gives
// back an fd and a port; a second covers a port another process took first.
// More would only empty the table when the shortage is not ours to fix.
constexpr int kEvictionsPerNewSession = 2;

// The destination of a datagram to a wildcard listener (IP_PKTINFO /
// IPV6_PKTINFO, which OpenUdpListener turns on only for those), or an empty
// address.
net::SocketAddress DestinationOf(io_uring_recvmsg_out* out, msghdr* layout,
                                 const net::SocketAddress& listener) {
  for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(out, layout); c != nullptr;
       c = io_uring_recvmsg_cmsg_nexthdr(out, layout, c)) {
    sockaddr_storage ss{};
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      memcpy(&info, CMSG_DATA(c), sizeof(info));
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      sin->sin_addr = info.ipi_addr;
      sin->sin_port = htons(listener.port());
      return net::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(*sin));
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      memcpy(&info, CMSG_DATA(c), sizeof(info));
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = info.ipi6_addr;
      sin6->sin6_port = htons(listener.port());
      return net::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(*sin6));
    }
  }
  return net::SocketAddress();
}

}  // namespace

absl::Status Worker::StartUdp() {
  if (udp_listeners_.empty()) return absl::OkStatus();
  absl::StatusOr<udp::BufferRing> buffers =
      udp::BufferRing::Create(ring_->raw(), kUdpBufferGroup, kUdpBuffers, kUdpBufferSize);
  if (!buffers.ok()) return buffers.status();
  udp_buffers_.emplace(*std::move(buffers));
  udp_sends_.resize(kUdpBuffers);
  // The multishot recvmsg reads only the sizes here: room for any source address
  // and for the destination address of a datagram to a wildcard listener.
  // Rounded up to 8: the control messages follow the name in the buffer, and a
  // cmsghdr must be aligned.
  udp_msghdr_.msg_namelen = (sizeof(sockaddr_in6) + 7) & ~size_t{7};
  udp_msghdr_.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
  for (uint32_t i = 0; i < udp_listeners_.size(); ++i) ArmUdpRecv(i);
  return absl::OkStatus();
}

void Worker::PrepUdpRecv(int fd, uint64_t tag) {
  io_uring_sqe* sqe = ring_->GetSqe();
  // recvmsg, not recv, on sessions too: an empty datagram then still completes
  // with a header (res > 0), where a multishot recv would end on res 0 as if at EOF.
  io_uring_prep_recvmsg_multishot(sqe, fd, &udp_msghdr_, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kUdpBufferGroup;
  io_uring_sqe_set_data64(sqe, tag);
}

std::optional<Worker::Datagram> Worker::ReadDatagram(const io_uring_cqe& cqe) {
  const uint16_t id = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  io_uring_recvmsg_out* out =
      io_uring_recvmsg_validate(udp_buffers_->buffer(id), cqe.res, &udp_msghdr_);
  // MSG_TRUNC cannot happen with 64 KiB buffers; never forward a cut datagram.
  if (out == nullptr || (out->flags & MSG_TRUNC)) return std::nullopt;
  return Datagram{.out = out,
                  .data = static_cast<const char*>(io_uring_recvmsg_payload(out, &udp_msghdr_)),
                  .len = io_uring_recvmsg_payload_length(out, cqe.res, &udp_msghdr_)};
}

void Worker::RecycleUdpBuffer(const io_uring_cqe& cqe) {
  if (cqe.flags & IORING_CQE_F_BUFFER) {
    udp_buffers_->Recycle(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
  }
}

// --- Client side: the listener ------------------------------------------------

void Worker::ArmUdpRecv(uint32_t index) {
  UdpListenerState& l = udp_listeners_[index];
  // Paused: a live upgrade (worker_takeover.cc) holds new datagrams in the socket.
  if (l.receiving || accepts_paused_) return;
  PrepUdpRecv(l.listener.fd.get(), Tag::Encode(Op::kUdpRecv, 0, index));
  l.receiving = true;
}

void Worker::OnUdpRecv(uint32_t index, const io_uring_cqe& cqe) {
  UdpListenerState& l = udp_listeners_[index];
  if (cqe.res >= 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    const uint16_t buffer = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    bool taken = false;
    if (const std::optional<Datagram> d = ReadDatagram(cqe)) {
      const net::SocketAddress client = net::SocketAddress::FromSockaddr(
          static_cast<const sockaddr*>(io_uring_recvmsg_name(d->out)), d->out->namelen);
      taken = OnClientDatagram(index, client,
                               DestinationOf(d->out, &udp_msghdr_, l.listener.address), d->data,
                               d->len, buffer);
    } else {
      counters_.udp_dropped.Add();
    }
    if (!taken) RecycleUdpBuffer(cqe);
  }
  if (cqe.flags & IORING_CQE_F_MORE) return;
  l.receiving = false;
  if (handover_) return;  // cancelled: the next config's workers receive here now
  // ENOBUFS: every buffer was out in this pass; they are back by now. Other
  // errors are the socket's (none expected on a bound UDP socket): log and go on.
  if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
    LOG_EVERY_T(WARNING, 1.0) << "udp recvmsg on " << l.listener.address.ToString() << ": "
                              << strerror(-cqe.res);
  }
  ArmUdpRecv(index);
}

bool Worker::OnClientDatagram(uint32_t index, const net::SocketAddress& client,
                              const net::SocketAddress& local, const char* data, size_t len,
                              uint16_t buffer) {
  const uint16_t service_index = udp_listeners_[index].listener.service;
  ServiceState& service = services_[service_index];
  Session* s = sessions_->Find(service_index, client);
  uint32_t tried[2];
  size_t tried_count = 0;
  // The client's place under the service's limits: a moving session keeps it.
  admission::Admission::Pass pass;
  if (s != nullptr && !service.snapshot->healthy(s->backend)) {
    // Its backend went DOWN: the session moves on this datagram.
    tried[tried_count++] = static_cast<uint32_t>(s->backend);
    std::swap(pass, s->pass);
    CloseUdpSession(*s, "backend_down");
    s = nullptr;
  } else if (s == nullptr && !(draining_ && !handover_) &&
             Admit(service_index, client, &pass, /*global=*/nullptr) !=
                 admission::Refusal::kNone) {
    counters_.udp_dropped.Add();  // denied, limited or banned: no session
    return false;
  }
  if (s == nullptr) {
    // A shutdown's drain keeps sessions and takes no new ones; a datagram a
    // handover's ring still took is served like a TCP client accepted then.
    if (draining_ && !handover_) {
      counters_.udp_dropped.Add();
      return false;
    }
    s = NewUdpSession(index, client, local, absl::MakeConstSpan(tried, tried_count), pass);
    if (s == nullptr) {
      counters_.udp_dropped.Add();
      return false;
    }
  }
  // A client writing to another of our addresses gets its replies from that one.
  if (local.family() != 0) s->local = local;
  QueueUdpSend(*s, /*up=*/true, buffer, data, len);
  CountUdpForwarded(*s, /*up=*/true, len, 1);
  sessions_->Touch(*s, now_ns_);
  return true;
}

Session* Worker::NewUdpSession(uint32_t index, const net::SocketAddress& client,
                               const net::SocketAddress& local, absl::Span<const uint32_t> tried,
                               admission::Admission::Pass& pass) {
  const Listener& listener = udp_listeners_[index].listener;
  ServiceState& service = services_[listener.service];
  const int backend =
      service.snapshot->Pick(backend::FlowKey(client, service.options.hash_key), tried);
  if (backend == backend::BackendSnapshot::kNone) {
    LOG_EVERY_T(ERROR, 1.0) << "no healthy backend for udp client " << client.ToString() << " on "
                            << listener.address.ToString() << ": datagram dropped";
    Leave(listener.service, client, &pass, nullptr);  // no session: the client's place goes back
    return nullptr;
  }
  const uint32_t max = std::max<uint32_t>(1, service.options.udp_max_sessions);
  if (sessions_->live(listener.service) >= max) {
    LOG_EVERY_T(WARNING, 5.0) << "udp " << listener.address.ToString() << ": " << max
                              << " sessions (udp_max_sessions) on worker " << options_.id
                              << ": the least recently active ones make room";
    EvictUdpSession(*sessions_->Oldest(listener.service));
  }
  net::SocketAddress target = service.snapshot->backends()[backend].address;
  if (target.port() == 0) target.set_port(listener.address.port());
  absl::StatusOr<net::Fd> fd = net::OpenUdpClientSocket(target);
  for (int i = 0; i < kEvictionsPerNewSession && !fd.ok() && absl::IsResourceExhausted(fd.status());
       ++i) {
    // Out of fds or local ports: the least recently active session's socket is
    // worth less than a new client's. Any service's: fds are the process's and
    // ports the host's.
    Session* oldest = OldestUdpSession();
    if (oldest == nullptr) break;
    if (i == 0) counters_.udp_no_socket.Add();
    LOG_EVERY_T(WARNING, 1.0) << "udp backend " << target.ToString() << ": "
                              << fd.status().message() << ": the least recently active session ("
                              << oldest->client.ToString() << ") makes room; "
                              << counters_.udp_no_socket.Get()
                              << " new session(s) found no socket so far on worker " << options_.id;
    EvictUdpSession(*oldest);
    fd = net::OpenUdpClientSocket(target);
  }
  if (!fd.ok()) {
    LOG_EVERY_T(ERROR, 1.0) << "udp backend " << target.ToString() << ": " << fd.status().message();
    Leave(listener.service, client, &pass, nullptr);
    return nullptr;
  }
  Session* s = sessions_->Create(listener.service, client, now_ns_);
  s->listener = static_cast<uint16_t>(index);
  s->backend = backend;
  s->target = target;
  s->local = local;
  s->fd = fd->Release();
  std::swap(s->pass, pass);  // the session holds the client's place now
  counters_.udp_sessions.Add();
  counters_.backend(s->service, s->backend).udp_sessions.Add();
  counters_.backend(s->service, s->backend).udp_active.Add();
  ArmUdpSessionRecv(*s);
  return s;
}

// --- Backend side: the session's socket --------------------------------------

void Worker::ArmUdpSessionRecv(Session& s) {
  PrepUdpRecv(s.fd, Tag::Encode(Op::kUdpSessionRecv, s.generation, s.slot));
  s.receiving = true;
  ++s.in_flight;
}

void Worker::OnUdpSessionRecv(Session& s, const io_uring_cqe& cqe) {
  const bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) {
    s.receiving = false;
    --s.in_flight;
  }
  if (s.state != Session::State::kLive) {
    RecycleUdpBuffer(cqe);
    return OnUdpSessionSettled(s);
  }
  if (cqe.res >= 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    if (const std::optional<Datagram> d = ReadDatagram(cqe)) {
      QueueUdpSend(s, /*up=*/false, static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT),
                   d->data, d->len);
      CountUdpForwarded(s, /*up=*/false, d->len, 1);
    } else {
      RecycleUdpBuffer(cqe);
      counters_.udp_dropped.Add();
    }
    s.last_sent.OnReply();
    sessions_->Touch(s, now_ns_);
    const uint32_t max_responses = services_[s.service].options.max_responses;
    if (max_responses > 0 && ++s.responses >= max_responses) {
      return CloseUdpSession(s, "max_responses");
    }
  }
  if (more) return;
  if (cqe.res < 0 && cqe.res != -ENOBUFS) {
    switch (SessionSocketError(s, -cqe.res)) {
      case udp::SocketError::kRefused:
        // An ICMP port unreachable for what we sent: nothing serves there now.
        ReportBackendFailure(s.service, s.backend, s.client);
        return CloseUdpSession(s, "backend_refused");
      case udp::SocketError::kIcmp:
        return ArmUdpSessionRecv(s);  // forged, stale or about the path: the session goes on
      case udp::SocketError::kLocal:
        break;
    }
    LOG_EVERY_T(WARNING, 1.0) << "udp recv from backend " << s.target.ToString() << ": "
                              << strerror(-cqe.res);
    return CloseUdpSession(s, "error");
  }
  ArmUdpSessionRecv(s);  // ENOBUFS, or a multishot the kernel ended
}

// --- Ending sessions ---------------------------------------------------------

void Worker::CloseUdpSession(Session& s, const char* reason) {
  if (s.state != Session::State::kLive) return;
  s.reason = reason;
  counters_.backend(s.service, s.backend).udp_active.Sub();
  sessions_->Unlink(s);
  Leave(s.service, s.client, &s.pass, nullptr);
  if (options_.access_log) {
    // Queued for the logging thread: one line per session is one per DNS query
    // or per spoofed source in a flood, and must not stall this worker.
    log::AccessLine(*options_.access_log, counters_.access_log_dropped)
        << "udp session client=" << s.client.ToString()
        << " listener=" << udp_listeners_[s.listener].listener.address.ToString()
        << " backend=" << s.target.ToString() << " datagrams_up=" << s.datagrams_up
        << " bytes_up=" << s.bytes_up << " datagrams_down=" << s.datagrams_down
        << " bytes_down=" << s.bytes_down << " duration_ms=" << (now_ns_ - s.start_ns) / 1'000'000
        << " close=" << reason;
  }
  if (s.receiving) {
    io_uring_sqe* sqe = ring_->GetSqe();
    io_uring_prep_cancel64(sqe, Tag::Encode(Op::kUdpSessionRecv, s.generation, s.slot), 0);
    io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kUdpCancel, s.generation, s.slot));
    ++s.in_flight;
  }
  OnUdpSessionSettled(s);
}

void Worker::OnUdpSessionSettled(Session& s) {
  if (s.state != Session::State::kClosing || s.in_flight > 0) return;
  if (s.fd >= 0) close(s.fd);
  sessions_->Free(s);
}

udp::SocketError Worker::SessionSocketError(Session& s, int err) {
  const udp::SocketError why =
      udp::ClassifySocketError(s.fd, err, s.last_sent, now_ns_, kRefusalWindowNs);
  if (err != ECONNREFUSED || why == udp::SocketError::kRefused) return why;
  counters_.udp_refusals_ignored.Add();
  LOG_EVERY_T(WARNING, 1.0) << "udp backend " << s.target.ToString() << " (client "
                            << s.client.ToString()
                            << "): an ICMP port unreachable that answers no datagram l4lb sent "
                               "there: not counted against the backend; "
                            << counters_.udp_refusals_ignored.Get() << " so far on worker "
                            << options_.id;
  return why;
}

Session* Worker::OldestUdpSession() const {
  Session* oldest = nullptr;
  for (uint16_t i = 0; i < services_.size(); ++i) {
    Session* s = sessions_->Oldest(i);
    if (s != nullptr && (oldest == nullptr || s->last_active_ns < oldest->last_active_ns)) {
      oldest = s;
    }
  }
  return oldest;
}

void Worker::EvictUdpSession(Session& s) {
  counters_.udp_evicted.Add();
  CloseUdpSession(s, "evicted");
  if (s.state != Session::State::kClosing || s.fd < 0) return;  // freed already
  // Its receive and the cancel just queued hold the socket until their CQEs are
  // back, a pass or more from now; the new client should not wait for that.
  // Submit first, so no queued SQE still names the fd number (the kernel looks
  // it up at submission); the requests in flight hold their own reference to the
  // socket, which no longer has a port or an fd number.
  io_uring_submit(ring_->raw());
  net::ReleaseUdpPort(s.fd);
  close(s.fd);
  s.fd = -1;
}

void Worker::ExpireUdpSessions() {
  for (uint16_t i = 0; i < services_.size(); ++i) {
    const int64_t timeout_ns = absl::ToInt64Nanoseconds(services_[i].options.udp_idle_timeout);
    if (timeout_ns <= 0) continue;
    while (Session* s = sessions_->Oldest(i)) {
      if (now_ns_ - s->last_active_ns < timeout_ns) break;
      counters_.udp_idle_expired.Add();
      CloseUdpSession(*s, "idle");
    }
  }
}

}  // namespace l4lb
