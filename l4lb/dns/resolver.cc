#include "l4lb/dns/resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>

#include <algorithm>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "l4lb/dns/expand.h"

namespace l4lb::dns {
namespace {

// What one ares_getaddrinfo call ends with; its callback fills it.
struct Pending {
  bool done = false;
  int status = ARES_SUCCESS;
  Resolver::Answer answer;
};

void OnAddrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  Pending& p = *static_cast<Pending*>(arg);
  p.done = true;
  p.status = status;
  if (result == nullptr) return;
  int ttl = -1;
  for (const ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
    if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
    net::SocketAddress a = net::SocketAddress::FromSockaddr(n->ai_addr, n->ai_addrlen);
    a.set_port(0);
    p.answer.addresses.push_back(a);
    if (ttl < 0 || n->ai_ttl < ttl) ttl = n->ai_ttl;
  }
  p.answer.ttl = absl::Seconds(std::max(ttl, 0));
  Canonicalize(&p.answer.addresses);
  ares_freeaddrinfo(result);
}

absl::Status Error(int status, const std::string& host, absl::Duration bound) {
  switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
      return absl::NotFoundError(absl::StrCat(host, ": no such name"));
    case ARES_ENODATA:
      return absl::NotFoundError(absl::StrCat(host, ": no address (the name has no A or AAAA)"));
    case ARES_ETIMEOUT:
      return absl::UnavailableError(absl::StrCat(host, ": no answer from the DNS server(s) within ",
                                                 absl::FormatDuration(bound)));
    case ARES_ECONNREFUSED:
      return absl::UnavailableError(absl::StrCat(host, ": the DNS server(s) refused"));
    default:
      return absl::UnavailableError(absl::StrCat(host, ": ", ares_strerror(status)));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Resolver>> Resolver::Create(const Options& options) {
  static const int library = ares_library_init(ARES_LIB_INIT_ALL);  // once per process
  if (library != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("c-ares: ", ares_strerror(library)));
  }
  ares_options opts{};
  opts.timeout = static_cast<int>(absl::ToInt64Milliseconds(options.timeout));
  opts.tries = options.tries;
  ares_channel channel = nullptr;
  if (const int st = ares_init_options(&channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
      st != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("c-ares: ", ares_strerror(st)));
  }
  const size_t servers = std::max<size_t>(1, options.servers.size());
  std::unique_ptr<Resolver> resolver(
      new Resolver(channel, options.timeout * options.tries * static_cast<double>(servers)));
  if (!options.servers.empty()) {
    std::vector<ares_addr_port_node> nodes(options.servers.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const net::SocketAddress& s = options.servers[i];
      ares_addr_port_node& n = nodes[i];
      n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      n.family = s.family();
      if (s.is_v4()) {
        n.addr.addr4 = reinterpret_cast<const sockaddr_in*>(s.sockaddr_ptr())->sin_addr;
      } else {
        memcpy(&n.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(s.sockaddr_ptr())->sin6_addr,
               sizeof(n.addr.addr6));
      }
      n.udp_port = n.tcp_port = s.port();
    }
    if (const int st = ares_set_servers_ports(channel, nodes.data()); st != ARES_SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat("c-ares: servers: ", ares_strerror(st)));
    }
  }
  return resolver;
}

Resolver::~Resolver() {
  std::lock_guard<std::mutex> lock(mu_);
  ares_destroy(channel_);
}

absl::StatusOr<Resolver::Answer> Resolver::Resolve(const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  Pending pending;
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;  // we sort: the answer's order must not matter
  ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, OnAddrinfo, &pending);
  // c-ares bounds each query by its tries and timeouts; this bounds the loop
  // should a server keep a TCP connection open without answering.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!pending.done) {
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int mask = ares_getsock(channel_, sockets, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
      if (events != 0) fds.push_back({.fd = sockets[i], .events = events, .revents = 0});
    }
    timeval max{.tv_sec = 1, .tv_usec = 0};
    timeval tv{};
    const timeval* wait = ares_timeout(channel_, &max, &tv);
    const int ms = static_cast<int>(wait->tv_sec * 1000 + wait->tv_usec / 1000);
    const int ready = poll(fds.data(), fds.size(), ms);
    if (ready > 0) {
      for (const pollfd& p : fds) {
        ares_process_fd(channel_,
                        (p.revents & (POLLIN | POLLERR | POLLHUP)) ? p.fd : ARES_SOCKET_BAD,
                        (p.revents & POLLOUT) ? p.fd : ARES_SOCKET_BAD);
      }
    } else {
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts, retries
    }
    if (!pending.done && absl::Now() >= deadline) ares_cancel(channel_);  // calls back ECANCELLED
  }
  if (pending.status != ARES_SUCCESS) return Error(pending.status, host, bound_);
  if (pending.answer.addresses.empty()) return Error(ARES_ENODATA, host, absl::ZeroDuration());
  return pending.answer;
}

}  // namespace l4lb::dns
