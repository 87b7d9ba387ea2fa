#include "l4lb/relay/pipe_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "glog/logging.h"

namespace l4lb::relay {

PipePool::~PipePool() {
  for (const Pipe& pipe : idle_) Discard(pipe);
}

absl::StatusOr<Pipe> PipePool::Acquire() {
  if (idle_.empty()) {
    absl::StatusOr<Pipe> pipe = Create();
    if (!pipe.ok()) return pipe.status();
    idle_.push_back(*pipe);
  }
  const Pipe pipe = idle_.back();
  idle_.pop_back();
  peak_in_use_ = std::max(peak_in_use_, ++in_use_);
  return pipe;
}

int PipePool::NextCapacity() {
  if (idle_.empty()) {
    absl::StatusOr<Pipe> pipe = Create();
    if (!pipe.ok()) return 0;
    idle_.push_back(*pipe);
  }
  return idle_.back().capacity;
}

absl::StatusOr<Pipe> PipePool::Create() {
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  Pipe pipe{.read_fd = fds[0], .write_fd = fds[1]};
  // EPERM past /proc/sys/fs/pipe-max-size, or past pipe-user-pages-soft, for
  // unprivileged users: the pipe works at the size it has, with more wakeups per
  // megabyte. Only the log says so; every user sizes by Pipe::capacity.
  int set_errno = 0;
  if (options_.pipe_size > 0 && fcntl(pipe.write_fd, F_SETPIPE_SZ, options_.pipe_size) < 0) {
    set_errno = errno;
  }
  pipe.capacity = fcntl(pipe.write_fd, F_GETPIPE_SZ);
  if (pipe.capacity <= 0) {
    const int err = errno;
    Discard(pipe);
    return absl::ErrnoToStatus(err, "F_GETPIPE_SZ");
  }
  if (set_errno != 0) {
    LOG_EVERY_T(WARNING, 60.0) << "F_SETPIPE_SZ " << options_.pipe_size << ": "
                               << strerror(set_errno) << "; this pipe holds " << pipe.capacity
                               << " bytes";
  }
  capacity_ = pipe.capacity;
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
