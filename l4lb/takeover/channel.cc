#include "l4lb/takeover/channel.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "l4lb/takeover/wire.h"

namespace l4lb::takeover {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::ErrnoToStatus(errno, absl::StrCat("takeover: ", what));
}

// Waits until fd has `events`; DeadlineExceeded after `timeout`.
absl::Status Wait(int fd, short events, absl::Duration timeout, absl::string_view what) {
  pollfd p{.fd = fd, .events = events, .revents = 0};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  int n;
  do {
    n = poll(&p, 1, ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("poll");
  if (n == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("takeover: no ", what, " within ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("takeover: socket path \"", path,
                                                   "\": want 1..", sizeof(addr.sun_path) - 1,
                                                   " bytes"));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

absl::StatusOr<std::pair<Channel, Channel>> Channel::Pair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return Errno("socketpair");
  return std::pair<Channel, Channel>(Channel(net::Fd(fds[0])), Channel(net::Fd(fds[1])));
}

absl::StatusOr<Channel> Channel::Connect(const std::string& path) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  net::Fd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket");
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return Errno(absl::StrCat("connect ", path, " (is the running l4lb listening for a takeover?)"));
  }
  return Channel(std::move(fd));
}

absl::Status Channel::Send(absl::string_view message, absl::Span<const int> fds) {
  if (message.size() > kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat("takeover: message of ", message.size(),
                                                   " bytes (at most ", kMaxMessageBytes, ")"));
  }
  if (fds.size() > kMaxFds) {
    return absl::InvalidArgumentError(
        absl::StrCat("takeover: ", fds.size(), " fds in one message (at most ", kMaxFds, ")"));
  }
  iovec iov{.iov_base = const_cast<char*>(message.data()), .iov_len = message.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(fds.size() * sizeof(int)), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n;
  do {
    n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("send");
  if (static_cast<size_t>(n) != message.size()) {
    return absl::InternalError(absl::StrCat("takeover: sent ", n, " of ", message.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Channel::Received> Channel::Receive(absl::Duration timeout) {
  if (absl::Status st = Wait(fd_.get(), POLLIN, timeout, "message"); !st.ok()) return st;
  Received out;
  std::string buffer(kMaxMessageBytes + 1, '\0');  // one more: a longer message shows as MSG_TRUNC
  std::vector<char> control(CMSG_SPACE(kMaxFds * sizeof(int)), 0);
  iovec iov{.iov_base = buffer.data(), .iov_len = buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("receive");
  // Whatever else is wrong, fds that arrived are ours now: own them first so
  // an error return closes them.
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(fd);
    }
  }
  if (n == 0) return absl::UnavailableError("takeover: the peer closed the channel");
  if (msg.msg_flags & MSG_TRUNC) {
    return absl::InvalidArgumentError(
        absl::StrCat("takeover: a message longer than ", kMaxMessageBytes, " bytes"));
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return absl::InvalidArgumentError("takeover: fds cut off (SCM_RIGHTS truncated)");
  }
  buffer.resize(static_cast<size_t>(n));
  out.message = std::move(buffer);
  return out;
}

absl::StatusOr<ChannelListener> ChannelListener::Listen(const std::string& path) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  net::Fd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Errno("socket");
  // A file left by a process that died: nobody listens on it any more.
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno(absl::StrCat("unlink ", path));
  const mode_t old = umask(0077);  // 0700: the socket hands over every connection
  const int bound = bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  umask(old);
  if (bound != 0) return Errno(absl::StrCat("bind ", path));
  if (listen(fd.get(), 4) != 0) return Errno(absl::StrCat("listen ", path));
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Errno(absl::StrCat("stat ", path));
  ChannelListener listener(std::move(fd), path);
  listener.inode_ = st.st_ino;
  return listener;
}

ChannelListener::~ChannelListener() {
  if (!fd_.valid() || path_.empty()) return;
  // After a takeover the next process listens at the same path (its own
  // socket file, bound after this one's): that one must stay.
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) unlink(path_.c_str());
}

absl::StatusOr<Channel> ChannelListener::Accept(absl::Duration timeout) {
  if (absl::Status st = Wait(fd_.get(), POLLIN, timeout, "new process"); !st.ok()) return st;
  net::Fd fd(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return Errno("accept");
  return Channel(std::move(fd));
}

}  // namespace l4lb::takeover
