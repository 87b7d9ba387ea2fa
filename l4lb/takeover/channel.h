#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

#include "l4lb/net/socket.h"

namespace l4lb::takeover {

// Channel is one end of the takeover socket (wire.h has what travels on it):
// an AF_UNIX SOCK_SEQPACKET connection, so each send is one message on the
// other side (no framing of our own), and file descriptors ride beside a
// message (SCM_RIGHTS): the kernel gives the receiver its own fd for the very
// same socket or pipe, with its queued bytes, while the sender keeps its copy
// until it closes it. That is what lets a connection change process without
// a byte being read or lost.
//
//   ChannelListener listener = *ChannelListener::Listen("/run/l4lb/takeover.sock");
//   Channel old_side = *listener.Accept(absl::Seconds(5));   // the running l4lb
//   Channel new_side = *Channel::Connect(path);                // --takeover
//   old_side.Send(Encode(listener_record), fds);
//   absl::StatusOr<Channel::Received> r = new_side.Receive(absl::Seconds(5));
//
// Every failure is a Status naming what went wrong ("takeover: the peer closed
// the channel", "... message of 70000 bytes (at most 65536)", "... 3 fds cut
// off (SCM_RIGHTS truncated)"); fds that did arrive with a bad message are
// closed, never leaked.
//
// Thread safety: one thread per Channel.
class Channel {
 public:
  // At most this many fds travel with one message (the kernel's SCM_MAX_FD).
  static constexpr size_t kMaxFds = 253;

  explicit Channel(net::Fd fd) : fd_(std::move(fd)) {}
  // Both ends of a new connected pair (tests, and a process talking to itself).
  static absl::StatusOr<std::pair<Channel, Channel>> Pair();
  // The running process's listener at `path`. A unix connect does not wait for
  // the accept (the backlog holds it): the first Receive's timeout bounds that.
  static absl::StatusOr<Channel> Connect(const std::string& path);

  // One message and its fds (still the caller's: send does not close them).
  absl::Status Send(absl::string_view message, absl::Span<const int> fds);

  struct Received {
    std::string message;
    std::vector<net::Fd> fds;  // close-on-exec, the receiver's own
  };
  // The next message, waiting up to `timeout`.
  absl::StatusOr<Received> Receive(absl::Duration timeout);

  int fd() const { return fd_.get(); }

 private:
  net::Fd fd_;
};

// The running process's end: a SOCK_SEQPACKET listener at a filesystem path,
// mode 0700 (only root, or l4lb's own user, can take its connections over).
class ChannelListener {
 public:
  // Replaces a stale socket file at `path` (a process that died left it).
  static absl::StatusOr<ChannelListener> Listen(const std::string& path);
  ChannelListener(ChannelListener&&) = default;
  ChannelListener& operator=(ChannelListener&&) = default;
  ~ChannelListener();

  // The next new process, waiting up to `timeout`.
  absl::StatusOr<Channel> Accept(absl::Duration timeout);
  int fd() const { return fd_.get(); }

 private:
  ChannelListener(net::Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  net::Fd fd_;
  std::string path_;  // unlinked at destruction, if still this socket's file
  ino_t inode_ = 0;
};

}  // namespace l4lb::takeover
