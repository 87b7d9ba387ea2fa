// The UDP send path of a worker (worker_udp.cc has the sessions): each
// datagram leaves by a send SQE on the ring straight from the provided buffer
// it arrived in, a session's datagrams still queued in one pass are joined
// into one UDP_SEGMENT send, and a send a backend refuses runs the recovery
// (its ICMP checked, the client moved to another backend).

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

// UDP_SEGMENT joins datagrams of at most this size: one that fits a 1500-byte
// MTU over IPv6 fits most paths. Larger ones (and any on a path that refuses
// the segmented send) go one per send, fragmented as before if need be.
constexpr size_t kGsoMaxSegment = 1452;
constexpr size_t kGsoMaxBytes = 65000;  // below the 65,507 of one IPv4 datagram

}  // namespace

void Worker::QueueUdpSend(Session& s, bool up, uint16_t buffer, const char* data, size_t len) {
  if (up && JoinUdpSend(s, buffer, data, len)) return;
  UdpSend& send = udp_sends_[buffer];
  send.session_slot = s.slot;
  send.session_generation = s.generation;
  send.up = up;
  send.data = data;
  send.len = static_cast<uint32_t>(len);
  send.total = send.len;
  send.segments = 1;
  send.short_tail = false;
  send.buffers[0] = buffer;
  send.iov[0] = {.iov_base = const_cast<char*>(data), .iov_len = len};
  io_uring_sqe* sqe = ring_->GetSqe();
  if (up) {
    io_uring_prep_send(sqe, s.fd, data, len, MSG_DONTWAIT);
  } else if (s.local.family() == 0) {
    // The address is copied when the SQE is submitted; the session, which
    // holds it, lives until this send's CQE (in_flight).
    io_uring_prep_send(sqe, udp_listeners_[s.listener].listener.fd.get(), data, len,
                       MSG_DONTWAIT);
    io_uring_prep_send_set_addr(sqe, s.client.sockaddr_ptr(),
                                static_cast<uint16_t>(s.client.sockaddr_len()));
  } else {
    // A wildcard listener: name the source, or the kernel picks one by route
    // (on a host with several addresses, not necessarily the one the client
    // wrote to, and the client would drop the reply).
    send.msg = msghdr{};
    send.msg.msg_name = const_cast<sockaddr*>(s.client.sockaddr_ptr());
    send.msg.msg_namelen = s.client.sockaddr_len();
    send.msg.msg_iov = send.iov;
    send.msg.msg_iovlen = 1;
    send.msg.msg_control = send.control;
    memset(send.control, 0, sizeof(send.control));
    cmsghdr* c = reinterpret_cast<cmsghdr*>(send.control);
    if (s.local.is_v4()) {
      send.msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      info.ipi_spec_dst = reinterpret_cast<const sockaddr_in*>(s.local.sockaddr_ptr())->sin_addr;
      memcpy(CMSG_DATA(c), &info, sizeof(info));
    } else {
      send.msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo info{};
      info.ipi6_addr = reinterpret_cast<const sockaddr_in6*>(s.local.sockaddr_ptr())->sin6_addr;
      memcpy(CMSG_DATA(c), &info, sizeof(info));
    }
    io_uring_prep_sendmsg(sqe, udp_listeners_[s.listener].listener.fd.get(), &send.msg,
                          MSG_DONTWAIT);
  }
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kUdpSend, 0, buffer));
  ++s.in_flight;  // the fd, the address and the session stay until the CQE
  udp_open_send_ = {.sqe = sqe, .sqe_tail = ring_->raw()->sq.sqe_tail, .buffer = buffer};
}

bool Worker::JoinUdpSend(Session& s, uint16_t buffer, const char* data, size_t len) {
  io_uring* raw = ring_->raw();
  // Only the SQE queued last, and only before it is submitted: the kernel
  // reads the header and the datagrams when it takes the SQE.
  if (udp_open_send_.sqe == nullptr || raw->sq.sqe_tail != udp_open_send_.sqe_tail ||
      io_uring_sq_ready(raw) == 0) {
    return false;
  }
  UdpSend& head = udp_sends_[udp_open_send_.buffer];
  // UDP_SEGMENT cuts the bytes into datagrams of the first one's size, the last
  // may be shorter: only that keeps every datagram's boundaries.
  if (!head.up || head.session_slot != s.slot || head.session_generation != s.generation ||
      s.no_gso || len == 0 || len > head.len || head.len > kGsoMaxSegment || head.short_tail ||
      head.segments == kUdpMaxSegments || head.total + len > kGsoMaxBytes) {
    return false;
  }
  if (head.segments == 1) {
    // The first datagram's plain send becomes a sendmsg naming the segment size.
    head.msg = msghdr{};
    head.msg.msg_iov = head.iov;
    head.msg.msg_control = head.control;
    head.msg.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    memset(head.control, 0, sizeof(head.control));
    cmsghdr* c = reinterpret_cast<cmsghdr*>(head.control);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t segment = static_cast<uint16_t>(head.len);
    memcpy(CMSG_DATA(c), &segment, sizeof(segment));
    const uint64_t tag = udp_open_send_.sqe->user_data;
    io_uring_prep_sendmsg(udp_open_send_.sqe, s.fd, &head.msg, MSG_DONTWAIT);
    io_uring_sqe_set_data64(udp_open_send_.sqe, tag);
  }
  head.iov[head.segments] = {.iov_base = const_cast<char*>(data), .iov_len = len};
  head.buffers[head.segments] = buffer;
  ++head.segments;
  head.total += static_cast<uint32_t>(len);
  head.short_tail = len < head.len;
  head.msg.msg_iovlen = head.segments;
  return true;
}

void Worker::OnUdpSent(uint16_t buffer, const io_uring_cqe& cqe) {
  const UdpSend& send = udp_sends_[buffer];
  Session* s = sessions_->FindSlot(send.session_slot, send.session_generation);
  if (s == nullptr) {
    udp_buffers_->Recycle(buffer);
    LOG(DFATAL) << "send CQE for a freed UDP session: slot " << send.session_slot;
    return;
  }
  if (cqe.res >= 0) {
    // Only what left counts as the last datagram an ICMP may answer; of joined
    // ones the first, whose refusal comes back first.
    if (send.up) s->last_sent.OnSent(send.data, send.len, now_ns_);
  } else if (send.up && s->state == Session::State::kLive) {
    RecoverUpstreamSend(*s, -cqe.res, send);  // may close s: in_flight keeps it
  } else {
    for (uint16_t i = 0; i < send.segments; ++i) {
      CountUdpForwarded(*s, send.up, send.iov[i].iov_len, -1);
      counters_.udp_dropped.Add();
    }
  }
  for (uint16_t i = 0; i < send.segments; ++i) udp_buffers_->Recycle(send.buffers[i]);
  --s->in_flight;
  OnUdpSessionSettled(*s);
}

void Worker::RecoverUpstreamSend(Session& first, int err, const UdpSend& send) {
  for (uint16_t i = 0; i < send.segments; ++i) {
    CountUdpForwarded(first, /*up=*/true, send.iov[i].iov_len, -1);  // counted when queued
  }
  if (send.segments > 1 && (err == EINVAL || err == EIO || err == EMSGSIZE)) {
    // The path cannot take them segmented: one by one, now and from now on.
    first.no_gso = true;
    LOG_EVERY_T(WARNING, 1.0) << "udp backend " << first.target.ToString()
                              << ": a send of " << send.segments
                              << " datagrams joined (UDP_SEGMENT) failed (" << strerror(err)
                              << "): this session sends them one by one";
    err = 0;
  }
  const net::SocketAddress client = first.client;
  const uint16_t service_index = first.service;
  Session* s = &first;
  for (uint16_t i = 0; i < send.segments; ++i) {
    // A session that moved off a refusing backend takes the rest.
    if (s == nullptr || s->state != Session::State::kLive) s = sessions_->Find(service_index, client);
    if (s == nullptr) {
      counters_.udp_dropped.Add();
      continue;
    }
    s = RecoverUpstream(*s, i == 0 ? err : 0, static_cast<const char*>(send.iov[i].iov_base),
                        send.iov[i].iov_len);
  }
}

Session* Worker::RecoverUpstream(Session& first, int err, const char* data, size_t len) {
  Session* s = &first;
  // Copies: a session closed below may be freed before the loop is done.
  const net::SocketAddress client = first.client;
  const net::SocketAddress local = first.local;
  const uint32_t index = first.listener;
  const uint16_t service_index = first.service;
  uint32_t tried[2];
  size_t tried_count = 0;
  admission::Admission::Pass pass;
  bool resent = false;
  if (err == 0 && send(s->fd, data, len, MSG_DONTWAIT) < 0) err = errno;
  for (; err != 0; err = send(s->fd, data, len, MSG_DONTWAIT) >= 0 ? 0 : errno) {
    // A full buffer is only that; any other error may be an ICMP's, pending.
    const udp::SocketError why =
        err == EAGAIN || err == ENOBUFS ? udp::SocketError::kLocal : SessionSocketError(*s, err);
    if (why == udp::SocketError::kIcmp && !resent) {
      // Forged, stale or about the path: not the backend refusing. Reading the
      // error queue cleared the socket's error, so this datagram can go out.
      resent = true;
    } else if (why == udp::SocketError::kRefused && tried_count < 2) {
      // An ICMP port unreachable quoting this session's last datagram: the
      // backend is not serving. Tell the checker and try this one elsewhere.
      ReportBackendFailure(service_index, s->backend, client);
      tried[tried_count++] = static_cast<uint32_t>(s->backend);
      std::swap(pass, s->pass);
      CloseUdpSession(*s, "backend_refused");
      s = NewUdpSession(index, client, local, absl::MakeConstSpan(tried, tried_count), pass);
      if (s == nullptr) {
        counters_.udp_dropped.Add();
        return nullptr;
      }
    } else {
      counters_.udp_dropped.Add();
      if (err != EAGAIN) {
        LOG_EVERY_T(WARNING, 1.0) << "udp send to backend " << s->target.ToString()
                                  << " (client " << client.ToString() << "): " << strerror(err);
      }
      return nullptr;
    }
    // Sent again by the loop: synchronous on this rare path, so its error is known at once.
  }
  s->last_sent.OnSent(data, len, now_ns_);
  CountUdpForwarded(*s, /*up=*/true, len, 1);
  sessions_->Touch(*s, now_ns_);
  return s;
}

void Worker::CountUdpForwarded(Session& s, bool up, size_t len, int sign) {
  stats::BackendCounters& backend = counters_.backend(s.service, s.backend);
  if (up) {
    s.datagrams_up += sign;
    s.bytes_up += sign * static_cast<int64_t>(len);
  } else {
    s.datagrams_down += sign;
    s.bytes_down += sign * static_cast<int64_t>(len);
  }
  stats::Counter& datagrams = up ? counters_.udp_datagrams_up : counters_.udp_datagrams_down;
  stats::Counter& bytes = up ? counters_.bytes_up : counters_.bytes_down;
  stats::Counter& backend_datagrams = up ? backend.udp_datagrams_up : backend.udp_datagrams_down;
  stats::Counter& backend_bytes = up ? backend.bytes_up : backend.bytes_down;
  if (sign > 0) {
    datagrams.Add();
    bytes.Add(len);
    backend_datagrams.Add();
    backend_bytes.Add(len);
  } else {
    datagrams.Sub();
    bytes.Sub(len);
    backend_datagrams.Sub();
    backend_bytes.Sub(len);
  }
}

}  // namespace l4lb
