#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/types/span.h"

#include "l4lb/relay/pipe_pool.h"

namespace l4lb::relay {

// Flow moves one direction of a relayed TCP connection on the worker thread, with
// no io-wq thread involved (relay/DESIGN.md says why), two ways:
//  - small messages: one recv(2) into the worker's copy buffer and one send(2).
//    A read that does not fill the buffer emptied the socket, so no third call
//    is needed to learn that; this beats splice below a few KiB (bench/RESULTS.md);
//  - streams: socket -> pipe -> socket with nonblocking splice(2), payload never
//    enters user space. A read that fills the copy buffer switches the flow to
//    splice until a wakeup finds less than a buffer's worth again.
//
// The pipe is the only buffer held across wakeups, so backpressure is natural:
// when the destination does not take bytes, the pipe fills and the flow stops
// reading the source. A pipe is held only while bytes are in it.
//
// Thread safety: none; owned by a Connection, driven by its worker.
class Flow {
 public:
  // What the flow needs before it can make progress again.
  enum class Wait : uint8_t {
    kReadable,  // source drained; pipe returned to the pool
    kWritable,  // destination full with bytes still in the pipe
    kMore,      // made progress for max_rounds; call again after other work
    kDone,      // source at EOF, pipe empty, EOF forwarded with shutdown(SHUT_WR)
    kError,     // see error() and error_on_source()
    kThrottled,  // read budget spent (LimitReads), pipe empty: AddReadBudget, pump again
  };

  Flow() = default;
  Flow(int from, int to) : from_(from), to_(to) {}

  // Moves bytes until the source is drained, the destination is full, or
  // max_rounds. `copy_buffer` is the worker's (empty: always splice); a copied
  // read takes at most what the pool's next pipe holds (PipePool::NextCapacity),
  // since bytes the destination refuses are parked in that pipe, and a pipe can
  // be smaller than asked for (a failed F_SETPIPE_SZ).
  // `source_hup`: the source's poll reported POLLRDHUP (its peer's FIN is in),
  // so the last bytes and the FIN can leave in one segment. Remembered: a FIN
  // stays in, and a later pump (POLLOUT, a queued round) must not wait for a
  // poll that already reported it.
  // `source_urgent`: the poll reported POLLPRI, urgent data (MSG_OOB) is pending
  // on the source. Remembered until the flow has read past it: splice(2) stops at
  // the urgent mark whatever SO_OOBINLINE says, and a recv() stops before it, so
  // neither an EAGAIN nor a short read then means the source is drained, nor a 0
  // from splice an EOF. A recv() (the sockets are SO_OOBINLINE) reads past it.
  Wait Pump(PipePool& pool, int max_rounds, absl::Span<char> copy_buffer = {},
            bool source_hup = false, bool source_urgent = false);

  // From now on the flow reads from its source only what AddReadBudget() allows
  // (client_bandwidth). The payload still goes through the pipe untouched: the
  // budget bounds each splice's length, it never makes the flow copy.
  // The recv past an urgent mark (a page at most) may overrun it by that much.
  void LimitReads() {
    limited_ = true;
    budget_ = 0;
  }
  void AddReadBudget(uint64_t bytes) { budget_ += bytes; }
  bool limited() const { return limited_; }
  uint64_t read_budget() const { return budget_; }

  // Returns the pipe (empty: to the pool; not empty: closed). Called at close.
  void ReleasePipe(PipePool& pool);

  // The other direction is done: this one's EOF ends the connection, whose
  // close() sends the FIN (both receive queues are empty, so a FIN, not a RST),
  // so the shutdown(SHUT_WR) is skipped: one syscall less per connection.
  void OtherDirectionDone() { last_ = true; }

  // What a live upgrade (l4lb/takeover/) carries of a flow to the next
  // process, taken between pumps with no request in flight: bytes delivered,
  // the pipe with the bytes still in it, how far the flow's end went. The rest
  // is re-learned there: the next poll reports a FIN or urgent data again, the
  // copy buffer holds nothing between pumps (a refused copy is parked in the
  // pipe), TCP_NOTSENT_LOWAT is set again at the first splice, the bandwidth budget
  // starts over.
  struct Saved {
    uint64_t bytes = 0;
    uint32_t pipe_bytes = 0;
    bool eof = false;   // the source's EOF was read
    bool done = false;  // ... and forwarded
    bool last = false;  // OtherDirectionDone()
  };
  Saved Save() const {
    return {.bytes = bytes_, .pipe_bytes = pipe_bytes_, .eof = eof_, .done = done_, .last = last_};
  }
  // The flow between `from` and `to` as saved; `pipe` holds saved.pipe_bytes
  // (an invalid pipe when it holds none).
  static Flow Restore(int from, int to, const Saved& saved, Pipe pipe);
  // Gives up the pipe without closing it (its fds went to the next process,
  // which owns them now, or the flow goes on from Restore with the same pipe).
  Pipe TakePipe() {
    Pipe p = pipe_;
    pipe_ = Pipe();
    return p;
  }
  const Pipe& pipe() const { return pipe_; }

  bool done() const { return done_; }
  // The source sent something: a byte, or its FIN. A reset before that is the
  // source host's failure; after it, possibly its peer's doing (health).
  bool source_spoke() const { return bytes_ > 0 || pipe_bytes_ > 0 || eof_; }
  bool holds_pipe() const { return pipe_.valid(); }
  uint32_t pipe_bytes() const { return pipe_bytes_; }
  uint64_t bytes() const { return bytes_; }
  // errno of the failed splice, and whether it failed reading the source (true)
  // or writing the destination (false).
  int error() const { return error_; }
  bool error_on_source() const { return error_on_source_; }
  // Reading the source failed (its reset): nothing more will come from it.
  bool failed_at_source() const { return error_ != 0 && error_on_source_; }

 private:
  // Spends `n` bytes read from the source out of the budget.
  void Spend(uint64_t n) {
    if (limited_) budget_ -= std::min(budget_, n);
  }
  Wait Fail(int err, bool on_source);
  Wait ForwardEof(PipePool& pool);
  // One recv + send through `buffer`; nullopt when the read filled the buffer
  // and the rest should be spliced.
  std::optional<Wait> Copy(PipePool& pool, absl::Span<char> buffer);
  // With the source at its urgent mark and the pipe empty: one recv() (which
  // reads the urgent byte inline) into the pipe. Returns like recv().
  ssize_t RecvPastUrgentMark();

  int from_ = -1;
  int to_ = -1;
  Pipe pipe_;
  uint32_t pipe_bytes_ = 0;  // in the pipe, not yet written to `to_`
  bool eof_ = false;         // the source said EOF
  bool done_ = false;        // EOF forwarded
  bool source_hup_ = false;  // the source's FIN is in (POLLRDHUP seen)
  bool urgent_ = false;      // urgent data pending on the source (POLLPRI seen)
  bool streaming_ = false;   // the last wakeup brought at least a copy buffer's worth
  bool last_ = false;        // OtherDirectionDone()
  bool lowat_set_ = false;   // TCP_NOTSENT_LOWAT set on `to_` (first splice)
  bool error_on_source_ = false;
  bool limited_ = false;     // LimitReads()
  int error_ = 0;
  uint64_t budget_ = 0;      // limited_: bytes the flow may still read
  uint64_t bytes_ = 0;  // written to `to_`
};

}  // namespace l4lb::relay
