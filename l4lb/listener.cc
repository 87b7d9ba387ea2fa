#include "l4lb/listener.h"

namespace l4lb {

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
