// SNI routing for TLS passthrough on a worker (tls/client_hello.h reads the
// ClientHello, tls/sni_routes.h maps its server name): on a service with
// sni_routes, an admitted client's first bytes are peeked, never consumed,
// until they are a whole ClientHello (or plainly not TLS); its server name
// then picks the service whose backends serve the connection, and the relay
// splices the very bytes that were peeked to that backend, untouched. l4lb
// never decrypts anything.
//
// Bounded by the client: at most tls::kMaxClientHelloBytes peeked (into one
// buffer per worker, not per connection), and sni_timeout for the whole hello;
// a client that sends junk, a huge hello, or trickles is closed (bad_tls). Each
// peek copies the hello from its start, so a peek waits until the record in
// progress is complete (SIOCINQ, tls::ClientHelloBytesWanted), and all peeks
// of one connection copy kSniPeekBudget bytes at most: a hello cut into many
// tiny records cannot make l4lb copy it over and over.

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "glog/logging.h"

#include "l4lb/tls/client_hello.h"
#include "l4lb/worker.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;
using ring::Op;

namespace {

// Real hellos are one or two records: a peek or two of at most ~2 KB. A hello
// fragmented into dozens of small records (legal, and what
// tests/sni_e2e_test sends) still fits; one byte per record does not.
constexpr uint32_t kSniPeekBudget = 4 * tls::kMaxClientHelloBytes;

}  // namespace

void Worker::StartSniPeek(Connection& c) {
  c.sni_pending = true;
  c.sni_deadline_ns =
      now_ns_ + absl::ToInt64Nanoseconds(services_[c.front].options.sni_timeout);
  sni_peeks_.emplace_back(c.slot, c.generation);
  if (sni_buffer_.empty()) sni_buffer_.resize(tls::kMaxClientHelloBytes);
  // Multishot POLLIN reports each arrival once (a hello over several segments
  // waits without a busy loop); the same poll then serves the relay. Arming
  // checks readiness at once: a hello already in gives a CQE right away.
  ArmPoll(c, Op::kClientReadable);
}

void Worker::OnSniReadable(Connection& c, const io_uring_cqe& cqe) {
  if (c.state != Connection::State::kConnecting || !c.sni_pending) return OnSettled(c);
  if (cqe.res < 0) return;  // the poll ended (cancelled); Close handles the rest
  int queued = 0;
  if (c.sni_wanted > 0 && !c.client_hup && ioctl(c.client_fd, SIOCINQ, &queued) == 0 &&
      static_cast<uint32_t>(queued) < c.sni_wanted) {
    return;  // the record in progress is not complete yet
  }
  const ssize_t n = recv(c.client_fd, sni_buffer_.data(), sni_buffer_.size(),
                         MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && errno == EAGAIN) return;
  if (n < 0) return Close(c, CloseReason::kClientReset);
  if (n == 0) return RejectTls(c, "closed before a ClientHello");
  const absl::Span<const uint8_t> peeked(sni_buffer_.data(), static_cast<size_t>(n));
  const tls::ClientHelloResult hello = tls::ParseClientHello(peeked);
  c.sni_peeked += static_cast<uint32_t>(n);
  switch (hello.kind) {
    case tls::ClientHelloResult::Kind::kNeedMore:
      // The client's FIN ends a prefix for good: no more bytes can come.
      if (c.client_hup) return RejectTls(c, "closed before a complete ClientHello");
      if (c.sni_peeked > kSniPeekBudget) {
        return RejectTls(c, "ClientHello in too many pieces (records or segments)");
      }
      c.sni_wanted = static_cast<uint32_t>(tls::ClientHelloBytesWanted(peeked));
      return;  // the next arrival, or sni_timeout, decides
    case tls::ClientHelloResult::Kind::kMalformed:
      return RejectTls(c, hello.reason);
    case tls::ClientHelloResult::Kind::kServerName:
      return RouteBySni(c, hello.server_name);
    case tls::ClientHelloResult::Kind::kNoServerName:
    case tls::ClientHelloResult::Kind::kNotTls:
      return RouteBySni(c, "");
  }
}

void Worker::RouteBySni(Connection& c, const std::string& server_name) {
  c.sni_pending = false;
  const std::optional<int> route = services_[c.front].options.sni->Match(server_name);
  if (!route) {
    counters_.service(c.front).no_route.Add();
    LOG_EVERY_T(WARNING, 1.0) << "client " << c.client.ToString() << ": server name \""
                              << (server_name.empty() ? "(none)" : server_name)
                              << "\" matches no sni_routes entry and the service has no "
                                 "backends of its own (default route)";
    return Close(c, CloseReason::kNoRoute);
  }
  c.service = static_cast<uint16_t>(*route);
  if (c.service != c.front) {
    // Counted by both, like HAProxy's frontend and backend: the front took
    // it, the route's service serves it (OnSettled gives the active one back).
    counters_.service(c.service).accepted.Add();
    counters_.service(c.service).active.Add();
  }
  const ServiceState& service = services_[c.service];
  c.snapshot = service.snapshot;
  c.key = backend::FlowKey(c.client, service.options.hash_key);
  Connect(c);
}

void Worker::RejectTls(Connection& c, absl::string_view why) {
  counters_.service(c.front).bad_tls.Add();
  LOG_EVERY_T(WARNING, 1.0) << "client " << c.client.ToString() << ": " << why
                            << " (sni_routes of " << listeners_[c.listener].listener.address.ToString()
                            << "; closed)";
  Close(c, CloseReason::kBadTls);
}

void Worker::ExpireSniPeeks() {
  // A hello arrives in the first segment or few, so the list is short: a scan
  // per tick. Services may have different timeouts.
  std::vector<std::pair<uint32_t, uint32_t>> waiting;
  for (const auto& [slot, generation] : sni_peeks_) {
    Connection* c = connections_.Find(slot, generation);
    if (c == nullptr || !c->sni_pending) continue;
    if (now_ns_ < c->sni_deadline_ns) {
      waiting.emplace_back(slot, generation);
      continue;
    }
    RejectTls(*c, "no complete ClientHello within sni_timeout");
  }
  sni_peeks_.swap(waiting);
}

}  // namespace l4lb
