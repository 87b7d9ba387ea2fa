#pragma once

#include <cstdint>

#include "l4lb/relay/pipe_pool.h"

namespace l4lb::relay {

// Flow moves one direction of a relayed TCP connection: socket -> pipe -> socket
// with nonblocking splice(2) on the worker thread, so payload never enters user
// space and no io-wq thread is involved (relay/DESIGN.md says why).
//
// The pipe is the only buffer, so backpressure is natural: when the destination
// does not take bytes, the pipe fills and the flow stops reading the source.
// A pipe is held only while bytes are in it.
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
  };

  Flow() = default;
  Flow(int from, int to) : from_(from), to_(to) {}

  // Splices until the source is drained, the destination is full, or max_rounds.
  Wait Pump(PipePool& pool, int max_rounds);

  // Returns the pipe (empty: to the pool; not empty: closed). Called at close.
  void ReleasePipe(PipePool& pool);

  bool done() const { return done_; }
  bool holds_pipe() const { return pipe_.valid(); }
  uint32_t pipe_bytes() const { return pipe_bytes_; }
  uint64_t bytes() const { return bytes_; }
  // errno of the failed splice, and whether it failed reading the source (true)
  // or writing the destination (false).
  int error() const { return error_; }
  bool error_on_source() const { return error_on_source_; }

 private:
  Wait Fail(int err, bool on_source);
  Wait ForwardEof(PipePool& pool);

  int from_ = -1;
  int to_ = -1;
  Pipe pipe_;
  uint32_t pipe_bytes_ = 0;  // in the pipe, not yet written to `to_`
  bool eof_ = false;         // the source said EOF
  bool done_ = false;        // EOF forwarded
  bool error_on_source_ = false;
  int error_ = 0;
  uint64_t bytes_ = 0;  // written to `to_`
};

}  // namespace l4lb::relay
