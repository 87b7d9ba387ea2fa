// The PROXY protocol on a worker (admission/proxy_protocol.h has the wire format):
//  - accept: a peer in the service's accept_proxy_from (an upstream balancer)
//    must start with a v1 or v2 header. Its client address is the one that
//    admission, hashing, affinity and the access log use. The header is read
//    before any backend is picked, bounded in bytes (the parser says how many
//    at most) and in time (proxy_timeout).
//  - refuse: on such a service every other peer must NOT send one (a backend
//    that accepts PROXY itself would believe the forged source). Its connection
//    is made and the backend's bytes flow to it at once (FTP, SSH and SMTP
//    servers speak first), but its own bytes flow only once a peek at the first
//    of them shows no PROXY signature. Services without accept_proxy_from skip
//    this: not a syscall more per connection.
//  - send: with send_proxy, the backend gets a header naming the client before
//    any client byte, so it can accept connections from l4lb alone and still
//    see, log and police the real client.

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "glog/logging.h"

#include "l4lb/admission/proxy_protocol.h"
#include "l4lb/worker.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;
using ring::Op;

void Worker::StartProxyHandshake(Connection& c) {
  c.proxy_pending = true;
  c.proxy_deadline_ns =
      now_ns_ + absl::ToInt64Nanoseconds(services_[c.front].options.admission->proxy_timeout());
  proxy_handshakes_.emplace_back(c.slot, c.generation);
  // Multishot POLLIN reports each arrival once, so a partial header waits for
  // more bytes without a busy loop; the same poll then serves the relay.
  ArmPoll(c, Op::kClientReadable);
}

void Worker::OnProxyReadable(Connection& c, const io_uring_cqe& cqe) {
  if (c.state != Connection::State::kConnecting || !c.proxy_pending) return OnSettled(c);
  if (cqe.res < 0) return;  // the poll ended (cancelled); Close handles the rest
  // Peek: bytes past the header belong to the backend and must stay queued.
  uint8_t buf[admission::kProxyMaxHeaderBytes];
  const ssize_t n = recv(c.client_fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && errno == EAGAIN) return;
  const char* what = nullptr;
  absl::StatusOr<admission::ProxyParse> parse = absl::InternalError("");
  if (n <= 0) {
    what = n == 0 ? "closed before a complete PROXY header" : strerror(errno);
  } else {
    parse = admission::ParseProxyHeader(absl::MakeConstSpan(buf, static_cast<size_t>(n)));
    if (!parse.ok()) {
      what = "malformed PROXY header";
    } else if (!parse->header) {
      if (static_cast<size_t>(n) < sizeof(buf)) return;  // more is on its way
      what = "PROXY header longer than the protocol allows";
    }
  }
  if (what != nullptr) {
    counters_.bad_proxy.Add();
    counters_.service(c.front).bad_proxy.Add();
    LOG_EVERY_T(WARNING, 1.0) << "peer " << c.client.ToString() << ": " << what
                              << (parse.ok() || n <= 0
                                      ? std::string()
                                      : ": " + std::string(parse.status().message()))
                              << " (" << counters_.bad_proxy.Get()
                              << " bad or late PROXY headers on worker " << options_.id << ")";
    return Close(c, CloseReason::kBadProxy);
  }
  const admission::ProxyHeader& header = *parse->header;
  // Strip exactly the header; what follows is the client's first bytes.
  if (recv(c.client_fd, buf, header.consumed, MSG_DONTWAIT) !=
      static_cast<ssize_t>(header.consumed)) {
    counters_.bad_proxy.Add();
    counters_.service(c.front).bad_proxy.Add();
    return Close(c, CloseReason::kBadProxy);
  }
  c.proxy_pending = false;
  // LOCAL (an upstream balancer's health check) and UNKNOWN keep the peer.
  if (header.command == admission::ProxyCommand::kProxy && header.source.family() != 0) {
    c.client = header.source;
  }
  AdmitAndConnect(c);
}

void Worker::ScreenFirstBytes(Connection& c, bool hup, bool urgent) {
  // Peek: the bytes are the backend's if they pass. A signature is 12 bytes at most.
  uint8_t buf[admission::kProxySignatureMaxBytes];
  const ssize_t n = recv(c.client_fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  // Nothing yet: the client may be waiting for the server's banner. The
  // multishot POLLIN reports its first bytes.
  if (n < 0 && errno == EAGAIN) return;
  // EOF or an error: no header can come; the flow's pump reports which.
  const admission::ProxySignature signature =
      n > 0 ? admission::MatchProxySignature(absl::MakeConstSpan(buf, static_cast<size_t>(n)))
            : admission::ProxySignature::kAbsent;
  if (signature == admission::ProxySignature::kPresent) {
    counters_.bad_proxy.Add();
    LOG_EVERY_T(WARNING, 1.0) << "peer " << c.client.ToString()
                              << ": PROXY header from outside accept_proxy_from ("
                              << counters_.bad_proxy.Get()
                              << " bad or late PROXY headers on worker " << options_.id << ")";
    return Close(c, CloseReason::kBadProxy);
  }
  // A FIN ends a prefix ("PRO", then EOF): it can never become a header. Not so
  // with urgent data pending: the peek stops at its mark, and bytes past it may
  // complete the signature.
  if (signature == admission::ProxySignature::kPrefix && !(hup && !urgent)) {
    if (c.proxy_deadline_ns == 0) {
      c.proxy_deadline_ns = now_ns_ + absl::ToInt64Nanoseconds(
                                          services_[c.front].options.admission->proxy_timeout());
      proxy_handshakes_.emplace_back(c.slot, c.generation);
    }
    return;  // the next arrival decides
  }
  c.proxy_screen = false;
  Pump(c, /*up=*/true, hup, urgent);
}

void Worker::ExpireProxyHandshakes() {
  // Handshakes are short and few (a header arrives in the first segment), so a
  // scan per tick is cheap; services may have different timeouts.
  std::vector<std::pair<uint32_t, uint32_t>> waiting;
  for (const auto& [slot, generation] : proxy_handshakes_) {
    Connection* c = connections_.Find(slot, generation);
    if (c == nullptr || !(c->proxy_pending || c->proxy_screen)) continue;
    if (now_ns_ < c->proxy_deadline_ns) {
      waiting.emplace_back(slot, generation);
      continue;
    }
    counters_.bad_proxy.Add();
    counters_.service(c->front).bad_proxy.Add();
    LOG_EVERY_T(WARNING, 1.0) << "peer " << c->client.ToString()
                              << (c->proxy_pending
                                      ? ": no complete PROXY header within proxy_timeout"
                                      : ": the start of a PROXY signature from outside "
                                        "accept_proxy_from, undecided within proxy_timeout");
    Close(*c, CloseReason::kBadProxy);
  }
  proxy_handshakes_.swap(waiting);
}

bool Worker::SendProxyHeader(Connection& c) {
  // The address the client connected to: the listener's, or on a wildcard
  // listener the one getsockname() reports for this connection.
  net::SocketAddress local = listeners_[c.listener].listener.address;
  if (local.is_wildcard()) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(c.client_fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      local = net::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    }
  }
  const std::string header = services_[c.service].options.admission->send_proxy() ==
                                     admission::AdmissionOptions::SendProxy::kV1
                                 ? admission::BuildProxyV1(c.client, local)
                                 : admission::BuildProxyV2(c.client, local);
  // A fresh socket's send buffer takes a few dozen bytes at once; anything
  // else means the backend is already gone.
  const ssize_t sent =
      send(c.backend_fd, header.data(), header.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (sent == static_cast<ssize_t>(header.size())) return true;
  LOG_EVERY_T(WARNING, 1.0) << "backend " << c.target.ToString()
                            << ": PROXY header: " << (sent < 0 ? strerror(errno) : "short write");
  return false;
}

}  // namespace l4lb
