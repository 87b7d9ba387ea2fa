#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/dns/resolver.h"
#include "l4lb/net/address.h"
#include "l4lb/server.h"

namespace l4lb::dns {

// Refresher keeps the named backends (BackendSpec::host) of the running config
// resolved, off the workers:
//
//   - Prepare() turns options as loaded (flags, the file) into what a Server
//     runs: each named spec becomes one backend per address (expand.h), from
//     the last good answer for its name. A name it has no answer for yet is
//     resolved there and then; one that fails is an error naming it and where
//     it was written. The reloader calls it at start, at each reload and when
//     this class reports a change (reload/reloader.h Republish).
//   - Its thread resolves each name again when due: its services' dns_refresh
//     (the shortest, if several use it), or the answer's TTL if shorter, at
//     least `ttl_floor` (a TTL 0 record must not make it spin). A name whose
//     addresses changed is logged (old -> new); after a pass with a change,
//     `changed` runs, which builds the next config through the reload path
//     (kept addresses keep health, DRAIN/MAINT and connections; removed ones
//     drain like a reload's). A failure is logged, once per name and refresh,
//     and the last good addresses stay.
//
// Names are keyed by the DNS servers asked (dns_servers) and the name: two
// services may resolve one name in two views.
//
// Thread safety: Prepare(), counts() from any thread; Start()/Stop() from main.
// No lock is held while resolving or while `changed` runs.
class Refresher {
 public:
  using Resolve = std::function<absl::StatusOr<Resolver::Answer>(
      const std::vector<net::SocketAddress>& servers, const std::string& host)>;
  struct Options {
    // Null: c-ares (resolver.h), one Resolver per list of servers.
    Resolve resolve;
    absl::Duration ttl_floor = absl::Seconds(1);
  };
  // Per name resolved again: its addresses changed, stayed, or it failed.
  struct Counts {
    uint64_t changed = 0;
    uint64_t unchanged = 0;
    uint64_t failure = 0;
  };

  explicit Refresher(Options options);
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // Expands every service's named backends in `options` (see above); their
  // names become the ones refreshed, names no longer used are forgotten.
  // InvalidArgument "ORIGIN: backends: \"NAME:PORT\": NAME: why" for a name
  // that cannot be resolved.
  absl::Status Prepare(Server::Options* options);

  // The thread. `changed` runs on it after a pass that changed a name's
  // addresses; false (not applied) makes it run again after the next pass.
  void Start(std::function<bool()> changed);
  void Stop();

  // One pass over the names due at `now` (the thread's step; tests call it
  // without the thread). True if a name's addresses changed.
  bool RefreshDue(absl::Time now);
  // When the next name is due; InfiniteFuture: no name.
  absl::Time NextDue() const;
  Counts counts() const;

 private:
  using Key = std::pair<std::string, std::string>;  // servers ("" : resolv.conf), host
  struct Entry {
    std::vector<net::SocketAddress> servers;
    std::vector<net::SocketAddress> addresses;  // the last good answer, canonical
    absl::Duration refresh = absl::Seconds(30);
    absl::Duration ttl = absl::ZeroDuration();
    absl::Time due;
  };

  absl::StatusOr<Resolver::Answer> Lookup(const std::vector<net::SocketAddress>& servers,
                                          const std::string& host);
  absl::Time Due(const Entry& e, absl::Time now) const;
  absl::Time NextDueLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::map<Key, Entry> entries_ ABSL_GUARDED_BY(mu_);
  Counts counts_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::function<bool()> changed_;
  std::thread thread_;

  std::mutex resolvers_mu_;  // the default Resolve's, by servers
  std::map<std::string, std::unique_ptr<Resolver>> resolvers_ ABSL_GUARDED_BY(resolvers_mu_);
};

}  // namespace l4lb::dns
