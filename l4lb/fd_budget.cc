#include "l4lb/fd_budget.h"

#include <sys/resource.h>

#include <cstdint>

#include "absl/status/status.h"
#include "glog/logging.h"

#include "l4lb/udp/session_bound.h"

namespace l4lb {

// Each TCP client holds two sockets, plus a pipe (two fds) per direction while
// bytes are in flight: the open-files limit is the connection limit.
void RaiseOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  const uint64_t idle_connections = limit.rlim_cur > 100 ? (limit.rlim_cur - 100) / 2 : 0;
  if (limit.rlim_cur < 200000) {
    LOG(WARNING) << "open-files limit is " << limit.rlim_cur << ": room for about "
                 << idle_connections
                 << " concurrent TCP connections (2 sockets each, 2 more fds per busy "
                    "direction) or twice as many UDP sessions (1 socket each); raise it "
                    "(ulimit -n, LimitNOFILE=) for more";
  } else {
    LOG(INFO) << "open-files limit " << limit.rlim_cur << ": about " << idle_connections
              << " concurrent TCP connections";
  }
}

void BoundUdpSessions(Server::Options& options) {
  l4lb::udp::SessionBoundInputs in{.reserved_fds = 100,  // as above, plus the listeners
                                   .workers = static_cast<uint32_t>(options.threads),
                                   .udp_services = 0};
  for (const Server::Service& service : options.services) {
    in.reserved_fds += service.listen.size() * options.threads;
    if (service.protocol == Server::Protocol::kUdp) {
      ++in.udp_services;
    } else {
      in.tcp_services = true;
    }
  }
  if (in.udp_services == 0) return;
  if (absl::Status range = l4lb::udp::ReadHostLimits(in); !range.ok()) {
    LOG(WARNING) << range.message() << ": udp sessions bounded by fds alone";
  }
  const l4lb::udp::SessionBound bound = l4lb::udp::DeriveSessionBound(in);
  for (Server::Service& service : options.services) {
    if (service.protocol != Server::Protocol::kUdp) continue;
    const uint32_t configured = service.udp_max_sessions;
    service.udp_max_sessions = bound.Apply(configured);
    LOG(INFO) << "udp sessions of "
              << (service.name.empty() ? service.listen[0].ToString() : service.name)
              << ": at most " << service.udp_max_sessions << " per worker (udp_max_sessions "
              << configured << "; " << bound.ToString(in)
              << "); past it, or when no socket can be had, the least recently active "
                 "session makes room";
  }
}

}  // namespace l4lb
