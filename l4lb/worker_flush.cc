// One side of a relayed connection reset or failed (relay/connection.h,
// kFlushing): what it sent still goes to the other side, which is reset only
// once it has acknowledged those bytes, so it sees what a direct connection
// would have shown: all the bytes, then the reset.

#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "l4lb/worker.h"

namespace l4lb {

using relay::CloseReason;
using relay::Connection;
using relay::Flow;
using ring::Op;

namespace {

// How long a side that outlived its peer's reset may take to accept and ACK
// the peer's last bytes before it is reset anyway (a client that stops reading
// must not hold the connection).
constexpr int64_t kFlushTimeoutNs = 5'000'000'000;

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

// Bytes written to fd that its peer has not ACKed yet (SIOCOUTQ is write_seq -
// snd_una for TCP); 0 once all arrived, or when the socket is gone.
int Unacked(int fd) {
  int n = 0;
  if (ioctl(fd, SIOCOUTQ, &n) != 0 || SocketError(fd) != 0) return 0;
  return n;
}

}  // namespace

void Worker::OnPeerFailed(Connection& c, bool client_failed) {
  const CloseReason reason = client_failed ? CloseReason::kClientReset : CloseReason::kBackendReset;
  if (client_failed && c.proxy_screen) {
    // Its first bytes were never screened (worker_proxy.cc): delivering them
    // could hand the backend a forged PROXY header. The client reset, so it
    // cannot count on their delivery anyway.
    counters_.resets.Add();
    return Close(c, reason);
  }
  Flow& salvage = client_failed ? c.up : c.down;  // from the failed side to the survivor
  // A backend that resets before it sent anything is unwell (or refuses this
  // client); one that spoke first may have been made to reset by its client
  // (bytes after its FIN, a protocol error): never counted.
  if (!client_failed && !salvage.source_spoke()) ReportBackendFailure(c.service, c.backend, c.client);
  counters_.resets.Add();
  c.state = Connection::State::kFlushing;
  c.reason = reason;
  c.flush_up = client_failed;
  c.flush_deadline_ns = now_ns_ + kFlushTimeoutNs;
  ForgetIdle(c);
  ForgetSideTimers(c);  // the flush has a deadline of its own
  // Nothing more is read from the survivor (the failed side cannot take it), and
  // the failed side's reads are done by the flush itself: it sends nothing new.
  if (c.client_reading) Cancel(c, Op::kClientReadable);
  if (c.backend_reading) Cancel(c, Op::kBackendReadable);
  if (client_failed ? c.client_writing : c.backend_writing) {
    Cancel(c, client_failed ? Op::kClientWritable : Op::kBackendWritable);
  }
  (client_failed ? c.down : c.up).ReleasePipe(pipes_);
  // The survivor must not see a FIN: it would take the stream for complete.
  salvage.OtherDirectionDone();
  ContinueFlush(c);
}

void Worker::ContinueFlush(Connection& c) {
  const bool up = c.flush_up;
  Flow& salvage = up ? c.up : c.down;
  if (!salvage.done() && !salvage.failed_at_source()) {
    // Whatever the failed side sent before its reset is still readable (the
    // kernel keeps the receive queue), then the reset or an EOF ends the flow.
    // kReadable: drained without either, and a failed side sends nothing more.
    const Flow::Wait wait = Pump(c, up);  // kWritable arms POLLOUT on the survivor
    if (c.state != Connection::State::kFlushing) return;
    if (wait == Flow::Wait::kWritable || wait == Flow::Wait::kMore ||
        wait == Flow::Wait::kThrottled) {
      return;
    }
  }
  // A reset discards what the survivor has not ACKed: wait for it, bounded.
  const int survivor = up ? c.backend_fd : c.client_fd;
  if (Unacked(survivor) > 0 && now_ns_ < c.flush_deadline_ns) {
    flushing_.emplace_back(c.slot, c.generation);
    return;
  }
  Close(c, c.reason);
}

void Worker::CheckFlushing() {
  std::vector<std::pair<uint32_t, uint32_t>> batch;
  batch.swap(flushing_);
  for (const auto& [slot, generation] : batch) {
    Connection* c = connections_.Find(slot, generation);
    if (c != nullptr && c->state == Connection::State::kFlushing) ContinueFlush(*c);
  }
}

}  // namespace l4lb
