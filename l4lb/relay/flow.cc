#include "l4lb/relay/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

namespace l4lb::relay {
namespace {

// The sockets are O_NONBLOCK too; SPLICE_F_NONBLOCK makes the pipe side never
// block either. SPLICE_F_MOVE is a hint the kernel may use to move pages.
constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
// One splice-in asks for at most this much; the pipe's free space bounds it anyway.
constexpr size_t kChunk = 1 << 20;

}  // namespace

Flow::Wait Flow::Fail(int err, bool on_source) {
  error_ = err;
  error_on_source_ = on_source;
  return Wait::kError;
}

Flow::Wait Flow::ForwardEof(PipePool& pool) {
  ReleasePipe(pool);
  // ENOTCONN: the destination is already gone; the connection closes on its own
  // error path, nothing is lost here.
  shutdown(to_, SHUT_WR);
  done_ = true;
  return Wait::kDone;
}

Flow::Wait Flow::Pump(PipePool& pool, int max_rounds) {
  if (done_) return Wait::kDone;
  for (int round = 0; round < max_rounds; ++round) {
    bool source_drained = false;
    if (!eof_) {
      const bool pipe_was_empty = pipe_bytes_ == 0;
      if (!pipe_.valid()) {
        absl::StatusOr<Pipe> pipe = pool.Acquire();
        if (!pipe.ok()) return Fail(EMFILE, /*on_source=*/false);
        pipe_ = *pipe;
      }
      const ssize_t in = splice(from_, nullptr, pipe_.write_fd, nullptr, kChunk, kSpliceFlags);
      if (in > 0) {
        pipe_bytes_ += static_cast<uint32_t>(in);
      } else if (in == 0) {
        eof_ = true;
      } else if (errno == EAGAIN) {
        // With an empty pipe this means the source is drained. With bytes in the
        // pipe the pipe may just be full: drain it and ask again, because a
        // multishot poll reports only NEW data and would never wake us for bytes
        // already queued on the socket.
        source_drained = pipe_was_empty;
      } else {
        return Fail(errno, /*on_source=*/true);
      }
    }
    if (pipe_bytes_ == 0) {
      if (eof_) return ForwardEof(pool);
      ReleasePipe(pool);
      return Wait::kReadable;
    }
    const ssize_t out = splice(pipe_.read_fd, nullptr, to_, nullptr, pipe_bytes_, kSpliceFlags);
    if (out < 0) {
      if (errno == EAGAIN) return Wait::kWritable;
      return Fail(errno, /*on_source=*/false);
    }
    pipe_bytes_ -= static_cast<uint32_t>(out);
    bytes_ += static_cast<uint64_t>(out);
    if (source_drained && pipe_bytes_ == 0) {
      ReleasePipe(pool);
      return Wait::kReadable;
    }
  }
  return Wait::kMore;
}

void Flow::ReleasePipe(PipePool& pool) {
  if (!pipe_.valid()) return;
  if (pipe_bytes_ == 0) {
    pool.Release(pipe_);
  } else {
    pool.DiscardInUse(pipe_);
    pipe_bytes_ = 0;
  }
  pipe_ = Pipe{};
}

}  // namespace l4lb::relay
