#include "l4lb/relay/pipe_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "glog/logging.h"

namespace l4lb::relay {

PipePool::~PipePool() {
  for (const Pipe& pipe : idle_) Discard(pipe);
}

absl::StatusOr<Pipe> PipePool::Acquire() {
  if (!idle_.empty()) {
    const Pipe pipe = idle_.back();
    idle_.pop_back();
    peak_in_use_ = std::max(peak_in_use_, ++in_use_);
    return pipe;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  const Pipe pipe{.read_fd = fds[0], .write_fd = fds[1]};
  if (options_.pipe_size > 0) {
    // EPERM past /proc/sys/fs/pipe-max-size for unprivileged users: the default
    // size still works, only with more wakeups per megabyte.
    if (fcntl(pipe.write_fd, F_SETPIPE_SZ, options_.pipe_size) < 0) {
      LOG_EVERY_T(WARNING, 60.0) << "F_SETPIPE_SZ " << options_.pipe_size << ": " << strerror(errno)
                                 << "; using the kernel default";
    }
  }
  const int size = fcntl(pipe.write_fd, F_GETPIPE_SZ);
  if (size > 0) capacity_ = size;
  peak_in_use_ = std::max(peak_in_use_, ++in_use_);
  return pipe;
}

void PipePool::Release(Pipe pipe) {
  if (!pipe.valid()) return;
  --in_use_;
  if (idle_.size() >= options_.max_idle) return Discard(pipe);
  idle_.push_back(pipe);
}

void PipePool::DiscardInUse(Pipe pipe) {
  if (!pipe.valid()) return;
  --in_use_;
  Discard(pipe);
}

void PipePool::Trim() {
  while (idle_.size() > peak_in_use_) {
    Discard(idle_.back());
    idle_.pop_back();
  }
  peak_in_use_ = in_use_;
}

void PipePool::Discard(Pipe pipe) {
  if (!pipe.valid()) return;
  close(pipe.read_fd);
  close(pipe.write_fd);
}

}  // namespace l4lb::relay
