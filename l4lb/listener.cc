#include "l4lb/listener.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"

namespace l4lb {

absl::Status CheckNotShared(const net::SocketAddress& address, bool udp) {
  if (address.port() == 0) return absl::OkStatus();
  net::Fd probe(socket(address.family(), (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
  if (!probe.valid()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("socket for ", address.ToString()));
  }
  const int on = 1;
  if (!udp && setsockopt(probe.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("setsockopt on ", address.ToString()));
  }
  if (bind(probe.get(), address.sockaddr_ptr(), address.sockaddr_len()) == 0) {
    return absl::OkStatus();
  }
  const int err = errno;
  if (err != EADDRINUSE) return absl::OkStatus();  // the real bind will say what is wrong
  // The same words as a bind that failed outright, then why it failed here.
  return absl::FailedPreconditionError(absl::StrCat(
      "bind ", address.ToString(), ": ", strerror(err), " (another process ",
      udp ? "is bound" : "listens",
      " there; l4lb does not share a port with another process: an l4lb already running? "
      "--takeover replaces one)"));
}

absl::StatusOr<ListenerSockets> OpenListener(const net::SocketAddress& requested, uint16_t service,
                                             int workers, int backlog, bool udp) {
  ListenerSockets out;
  out.service = service;
  out.address = requested;
  for (int i = 0; i < workers; ++i) {
    absl::StatusOr<net::Fd> fd =
        udp ? net::OpenUdpListener(out.address, /*reuse_port=*/true)
            : net::OpenTcpListener(out.address, /*reuse_port=*/true, backlog);
    if (!fd.ok()) return fd.status();
    if (i == 0 && requested.port() == 0) {
      absl::StatusOr<net::SocketAddress> bound = net::LocalAddress(fd->get());
      if (!bound.ok()) return bound.status();
      out.address = *bound;
    }
    out.per_worker.push_back(*std::move(fd));
  }
  return out;
}

}  // namespace l4lb
