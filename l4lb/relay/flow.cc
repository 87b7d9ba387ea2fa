#include "l4lb/relay/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace l4lb::relay {
namespace {

// The sockets are O_NONBLOCK too; SPLICE_F_NONBLOCK makes the pipe side never
// block either. SPLICE_F_MOVE is a hint the kernel may use to move pages.
constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
// One splice-in asks for at most this much; the pipe's free space bounds it anyway.
constexpr size_t kChunk = 1 << 20;
// What a streaming destination socket may hold not yet sent; the rest waits in
// our pipe and is written when the socket reports room. Without a bound the
// socket queues up to its whole send buffer, and the peer's ACKs then transmit
// it from their softirq, on the peer's CPU. Measured (bench/RESULTS.md): one
// stream 11.2 -> 13.0 Gbit/s (mean of 5), CPU per GB unchanged; 64 KiB: 12.1.
constexpr int kNotSentLowat = 128 << 10;

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
  if (!last_) shutdown(to_, SHUT_WR);
  done_ = true;
  return Wait::kDone;
}

Flow Flow::Restore(int from, int to, const Saved& saved, Pipe pipe) {
  Flow flow(from, to);
  flow.bytes_ = saved.bytes;
  flow.pipe_bytes_ = pipe.valid() ? saved.pipe_bytes : 0;
  flow.pipe_ = pipe;
  flow.eof_ = saved.eof;
  flow.done_ = saved.done;
  flow.last_ = saved.last;
  return flow;
}

std::optional<Flow::Wait> Flow::Copy(PipePool& pool, absl::Span<char> buffer) {
  // What a full destination refuses must fit in one pipe, and a pipe can be
  // smaller than the buffer (a failed F_SETPIPE_SZ): read no more than it holds.
  if (const int pipe_holds = pool.NextCapacity(); pipe_holds > 0) {
    buffer = buffer.first(std::min(buffer.size(), static_cast<size_t>(pipe_holds)));
  }
  const ssize_t in = recv(from_, buffer.data(), buffer.size(), 0);
  if (in == 0) {
    eof_ = true;
    return ForwardEof(pool);
  }
  if (in < 0) {
    if (errno == EAGAIN) return Wait::kReadable;
    return Fail(errno, /*on_source=*/true);
  }
  Spend(static_cast<uint64_t>(in));
  // A short read emptied the socket (unless it stopped at an urgent mark); with
  // the FIN already in, these are the last bytes. MSG_MORE holds them for the
  // shutdown below, which sends data and FIN in one segment: one packet and one
  // ACK fewer per connection.
  const bool last = source_hup_ && !urgent_ && static_cast<size_t>(in) < buffer.size();
  ssize_t out =
      send(to_, buffer.data(), static_cast<size_t>(in), MSG_NOSIGNAL | (last ? MSG_MORE : 0));
  if (out < 0) {
    if (errno != EAGAIN) return Fail(errno, /*on_source=*/false);
    out = 0;
  }
  bytes_ += static_cast<uint64_t>(out);
  if (out < in) {
    // The destination is full: park the rest in a pipe (empty, and the one
    // NextCapacity() measured, so one write takes it all) and wait for POLLOUT.
    absl::StatusOr<Pipe> pipe = pool.Acquire();
    if (!pipe.ok()) return Fail(EMFILE, /*on_source=*/false);
    pipe_ = *pipe;
    const size_t rest = static_cast<size_t>(in - out);
    const ssize_t parked = write(pipe_.write_fd, buffer.data() + out, rest);
    if (parked < 0) return Fail(errno, /*on_source=*/false);
    // Short only if a pipe held less than its F_GETPIPE_SZ: lost bytes, so an error.
    if (static_cast<size_t>(parked) != rest) return Fail(EMSGSIZE, /*on_source=*/false);
    pipe_bytes_ = static_cast<uint32_t>(rest);
    return Wait::kWritable;
  }
  if (last) {
    eof_ = true;
    return ForwardEof(pool);
  }
  if (static_cast<size_t>(in) < buffer.size()) {
    // Emptied, or stopped at the urgent mark: the splice rounds get past it.
    if (urgent_) return std::nullopt;
    return Wait::kReadable;
  }
  streaming_ = true;
  return std::nullopt;
}

ssize_t Flow::RecvPastUrgentMark() {
  // A page: every pipe holds at least one, and this one is empty.
  char buffer[4096];
  const ssize_t in = recv(from_, buffer, sizeof(buffer), 0);
  if (in < 0) {
    // EAGAIN: nothing at all to read, so no mark either (already read past).
    if (errno == EAGAIN) urgent_ = false;
    return in;
  }
  urgent_ = false;  // this read took the urgent byte: splice goes on from here
  if (in == 0) return 0;
  const ssize_t parked = write(pipe_.write_fd, buffer, static_cast<size_t>(in));
  if (parked != in) {
    errno = parked < 0 ? errno : EMSGSIZE;
    return -1;
  }
  return in;
}

Flow::Wait Flow::Pump(PipePool& pool, int max_rounds, absl::Span<char> copy_buffer, bool source_hup,
                      bool source_urgent) {
  if (done_) return Wait::kDone;
  source_hup_ |= source_hup;
  urgent_ |= source_urgent;
  if (limited_ && budget_ == 0 && pipe_bytes_ == 0 && !eof_) return Wait::kThrottled;
  if (limited_) copy_buffer = copy_buffer.first(std::min<uint64_t>(copy_buffer.size(), budget_));
  if (!streaming_ && !eof_ && pipe_bytes_ == 0 && !copy_buffer.empty()) {
    // A read that fills a buffer cut to the budget goes on below, which then
    // finds the budget spent: kThrottled, not kReadable (bytes may be waiting).
    if (std::optional<Wait> wait = Copy(pool, copy_buffer)) return *wait;
  }
  uint64_t moved = 0;  // by this call's splices
  if (!lowat_set_) {
    // Past the copy path: flows that only ever copy (short messages, the default
    // --copy_bytes) never pay the syscall; a streaming flow pays it once.
    lowat_set_ = true;
    (void)setsockopt(to_, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowat, sizeof(kNotSentLowat));
  }
  for (int round = 0; round < max_rounds; ++round) {
    bool source_drained = false;
    if (limited_ && budget_ == 0 && !eof_) {
      // Spent: what is in the pipe still goes out; nothing more comes in.
      if (pipe_bytes_ == 0) {
        ReleasePipe(pool);
        return Wait::kThrottled;
      }
    } else if (!eof_) {
      const bool pipe_was_empty = pipe_bytes_ == 0;
      if (!pipe_.valid()) {
        absl::StatusOr<Pipe> pipe = pool.Acquire();
        if (!pipe.ok()) return Fail(EMFILE, /*on_source=*/false);
        pipe_ = *pipe;
      }
      const size_t ask = limited_ ? static_cast<size_t>(std::min<uint64_t>(kChunk, budget_)) : kChunk;
      ssize_t in = splice(from_, nullptr, pipe_.write_fd, nullptr, ask, kSpliceFlags);
      int err = in < 0 ? errno : 0;
      // A 0 at the urgent mark is no EOF. The poll's POLLPRI may still be on its
      // way (this pump came from another wakeup, e.g. the destination's POLLOUT):
      // the socket itself says, once per connection, where a FIN is read.
      if (in == 0 && !urgent_ && sockatmark(from_) == 1) urgent_ = true;
      if (urgent_ && (in == 0 || err == EAGAIN)) {
        // Maybe stopped at the urgent mark, where splice(2) stays. A recv gets
        // past it, into the pipe, so the pipe must be empty first.
        in = pipe_was_empty ? RecvPastUrgentMark() : -1;
        err = in < 0 ? (pipe_was_empty ? errno : EAGAIN) : 0;
      }
      if (in > 0) {
        pipe_bytes_ += static_cast<uint32_t>(in);
        Spend(static_cast<uint64_t>(in));
      } else if (in == 0) {
        eof_ = true;
      } else if (err == EAGAIN) {
        // With an empty pipe this means the source is drained. With bytes in the
        // pipe the pipe may just be full: drain it and ask again, because a
        // multishot poll reports only NEW data and would never wake us for bytes
        // already queued on the socket.
        source_drained = pipe_was_empty;
      } else {
        return Fail(err, /*on_source=*/true);
      }
    }
    if (pipe_bytes_ == 0) {
      if (eof_) return ForwardEof(pool);
      ReleasePipe(pool);
      // A wakeup that brought less than a copy buffer: back to copying.
      if (moved < copy_buffer.size()) streaming_ = false;
      return Wait::kReadable;
    }
    const ssize_t out = splice(pipe_.read_fd, nullptr, to_, nullptr, pipe_bytes_, kSpliceFlags);
    if (out < 0) {
      if (errno == EAGAIN) return Wait::kWritable;
      return Fail(errno, /*on_source=*/false);
    }
    pipe_bytes_ -= static_cast<uint32_t>(out);
    bytes_ += static_cast<uint64_t>(out);
    moved += static_cast<uint64_t>(out);
    if (source_drained && pipe_bytes_ == 0) {
      ReleasePipe(pool);
      if (moved < copy_buffer.size()) streaming_ = false;
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
