#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace l4lb::relay {

// A pipe carries one direction of a relayed connection between two splice(2) calls.
struct Pipe {
  int read_fd = -1;   // splice out of the pipe from here
  int write_fd = -1;  // splice into the pipe here
  int capacity = 0;   // bytes it holds, as the kernel reports it (F_GETPIPE_SZ)
  bool valid() const { return read_fd >= 0; }
};

// PipePool hands out nonblocking pipes and takes back EMPTY ones, so a busy worker
// does not pay pipe2() + fcntl() + close() per burst and an idle connection holds
// no pipe at all (two fds and a page ring each).
//
// Thread safety: none; owned by one worker.
class PipePool {
 public:
  struct Options {
    // F_SETPIPE_SZ; the kernel rounds up to a power-of-two number of pages. 0 keeps
    // the kernel default (64 KiB). What a pipe really holds may be less (see
    // NextCapacity()): callers size by Pipe::capacity, never by this.
    int pipe_size = 0;
    // Empty pipes kept for reuse; beyond that they are closed.
    size_t max_idle = 256;
  };

  explicit PipePool(const Options& options) : options_(options) {}
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;
  ~PipePool();

  // A pooled pipe or a new one. Fails when the process is out of fds (EMFILE).
  absl::StatusOr<Pipe> Acquire();
  // The pipe must be empty: a pipe with bytes in it would hand them to another
  // connection.
  void Release(Pipe pipe);
  // Closes an acquired pipe that may still hold bytes (a connection cut mid-transfer).
  void DiscardInUse(Pipe pipe);
  // Counts a pipe made elsewhere (a live upgrade's: the previous process's,
  // with its bytes) as acquired, so Release and DiscardInUse take it like any.
  void Adopt(const Pipe& pipe) {
    if (pipe.valid()) peak_in_use_ = std::max(peak_in_use_, ++in_use_);
  }

  // Closes idle pipes beyond the most that were in use at once since the last
  // Trim(): the pool follows demand, and an l4lb with no traffic goes back to
  // the fds it started with. The worker calls it about once a second.
  void Trim();

  size_t idle() const { return idle_.size(); }
  size_t in_use() const { return in_use_; }
  // Bytes one pipe holds, as the kernel reports it (F_GETPIPE_SZ of the last new pipe).
  int capacity() const { return capacity_; }

  // Bytes the pipe that the next Acquire() returns holds: a caller that must fit
  // what it has read into that pipe (the copy path) reads at most this much.
  // With no idle pipe it creates that pipe now and keeps it idle, because a new
  // pipe can be smaller than the last one: past /proc/sys/fs/pipe-user-pages-soft
  // an unprivileged user's new pipes get 2 pages and F_SETPIPE_SZ fails (EPERM).
  // 0 if no pipe can be created (EMFILE): the next Acquire() fails too.
  int NextCapacity();

 private:
  absl::StatusOr<Pipe> Create();
  static void Discard(Pipe pipe);

  Options options_;
  std::vector<Pipe> idle_;
  size_t in_use_ = 0;
  size_t peak_in_use_ = 0;  // since the last Trim()
  int capacity_ = 65536;
};

}  // namespace l4lb::relay
