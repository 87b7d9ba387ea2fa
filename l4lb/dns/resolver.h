#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/net/address.h"

struct ares_channeldata;

namespace l4lb::dns {

// Resolver turns a host name into its addresses through c-ares (Debian's
// libc-ares2): ares_getaddrinfo for A and AAAA, /etc/hosts first as
// getaddrinfo(3) does, then the DNS servers given (or /etc/resolv.conf's).
// Unlike getaddrinfo(3) it reports each record's TTL, which the refresher
// (refresher.h) honours, and it can ask servers other than the system's
// (split horizon, tests).
//
// Resolve() blocks, bounded by timeout x tries per server: it runs on the DNS
// refresher's thread and on main (start-up, reload), never on a worker.
// Thread safety: any thread; calls are serialised (one c-ares channel).
class Resolver {
 public:
  struct Options {
    std::vector<net::SocketAddress> servers;    // empty: /etc/resolv.conf's
    absl::Duration timeout = absl::Seconds(2);  // per try and server
    int tries = 2;
  };
  struct Answer {
    // Port 0, sorted and unique (expand.h Canonicalize): the same set in
    // another order is the same answer.
    std::vector<net::SocketAddress> addresses;
    // The shortest TTL among them; zero when the source gives none (/etc/hosts).
    absl::Duration ttl = absl::ZeroDuration();
  };

  static absl::StatusOr<std::unique_ptr<Resolver>> Create(const Options& options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // NotFound: no such name, or no address for it; Unavailable: no server
  // answered (timeout, refused); else c-ares's reason. Never an empty answer.
  absl::StatusOr<Answer> Resolve(const std::string& host);

 private:
  Resolver(ares_channeldata* channel, absl::Duration bound) : bound_(bound), channel_(channel) {}

  const absl::Duration bound_;  // what tries and timeouts allow, for messages

  std::mutex mu_;
  ares_channeldata* const channel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace l4lb::dns
