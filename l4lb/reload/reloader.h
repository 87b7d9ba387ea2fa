#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/admin/actions.h"
#include "l4lb/admin/admin_server.h"
#include "l4lb/admin/view.h"
#include "l4lb/server.h"
#include "l4lb/stats/counters.h"

namespace l4lb::reload {

// Reloader runs l4lb's config and replaces it at a reload (SIGHUP, POST
// /reload) without dropping a connection, the way HAProxy's seamless reload
// hands its listeners to the new process, but inside one process:
//
//   1. The file is read again (Options::load); any error (FILE:LINE:COL, a
//      port that cannot be bound, something that cannot change at runtime)
//      rejects the reload and the running config goes on untouched.
//   2. The next Server is made from the running one (Server::Create(next,
//      current)): listeners on the same addresses are the same sockets (dup),
//      new ones are bound; backends kept by name keep their health, checks and
//      admin state; then its workers start, accepting on those sockets.
//   3. The admin actions point at the new services (bans set again), the new
//      Server becomes the running one, and the old one hands over
//      (Server::HandOver): it stops accepting and receiving, closes the
//      listeners the new config dropped, and drains. Connections and UDP
//      sessions of services, backends and listeners the new config still has
//      go on until they end (a long download outlives any number of reloads);
//      those of removed ones are cut after drain_timeout (Retire()). The old
//      Server is freed once its last connection is gone.
//
// The admin endpoint lives here, across configs: its view is the running
// config's, with the draining and retired configs' counters added by name
// (merge.h), so counters never go backwards across a reload.
//
// Thread safety: Reload() from any thread (main on SIGHUP, the admin thread on
// POST /reload), one at a time; AdminView() and Connections() from any thread;
// the rest from main.
class Reloader {
 public:
  // Configs draining at once, at most: each holds its workers' threads, rings
  // and a few fds (about 650 KiB with 2 workers). A reload past it cuts the
  // oldest one's connections, logged (HAProxy's hard-stop-after, by count).
  static constexpr size_t kMaxDrainingConfigs = 16;

  struct Options {
    // Shutdown's drain and a replaced config's: how long live connections may
    // go on before they are cut.
    absl::Duration drain_timeout = absl::Seconds(30);
    // Reads the config again, flags applied as at start-up; null: l4lb runs
    // from flags alone, nothing to reload.
    std::function<absl::StatusOr<Server::Options>()> load;
    // The file `load` reads: it prefixes what only the new Server finds (a
    // bind error), as at start-up: "FILE: bind 127.0.0.1:80: ...".
    std::string file;
    // After start and after each reload that took: the running server (ready
    // file, log lines). An error fails Start(); after a reload it is logged
    // (the reload took).
    std::function<absl::Status(const Server&)> serving;
    // Options as loaded (flags, the file) -> what a Server runs: named
    // backends expanded to their addresses (dns/refresher.h Prepare). At
    // Create, each Reload and each Republish; an error rejects that config.
    // Null: options run as loaded.
    std::function<absl::Status(Server::Options*)> prepare;
    // For /metrics: the DNS refreshes so far (dns/refresher.h); null: none.
    std::function<admin::DnsRefreshes()> dns_refreshes;
    // A live upgrade's new process (--takeover): the first config takes these
    // listening sockets (Server::Create's `inherited`; not owned, read during
    // Create only) and holds its accepts until ReleaseAccepts().
    std::vector<Server::InheritedListener>* inherited = nullptr;
    bool hold_accepts = false;
  };

  // Binds everything (Server::Create) and the admin endpoint (first.admin).
  static absl::StatusOr<std::unique_ptr<Reloader>> Create(Server::Options first, Options options);
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Starts the workers, the checker, then the admin endpoint.
  absl::Status Start();

  struct Result {
    absl::Status status;  // not ok: rejected, the running config stays
    uint64_t generation = 0;
    size_t services = 0;
    size_t listeners = 0;
  };
  Result Reload();
  // The next config from the options last loaded (no file read), prepared
  // again: how a DNS change (new addresses for a named backend) is published.
  // Everything else is a reload's: kept backends keep health, DRAIN/MAINT and
  // connections, removed ones drain. Not counted as a reload; logged as
  // "dns: serving ..." or "dns: ... not applied: ...".
  Result Republish();

  // Earlier configs that have drained are freed and their counts kept; those
  // past their drain_timeout have their removed parts cut. Main calls it a few
  // times a second.
  void Retire();

  // A live upgrade (l4lb/takeover/), on the running process's donor thread:
  // the running config's listeners; every config's workers (the running one's
  // and those a reload replaced that still drain) hand their connections to
  // `out`, until EndExport. No reload runs in between (Reload() waits).
  std::vector<Server::TakeoverListener> TakeoverListeners();
  void BeginExport(takeover::Outbox* out);
  void EndExport(bool handed_over);
  // In the new process, on main's thread before any reload: the running
  // config places and adopts what the previous process handed over, then
  // accepts.
  Server& running();

  // Shutdown: every config stops accepting; no reload from then on.
  // `handed_over` (after a live upgrade): the next process receives on the UDP
  // listeners too, so this one stops receiving as well (Server::HandOver); its
  // sessions still send their replies.
  void StopAccepting(bool handed_over = false);
  bool Drained() const;
  void ForceCloseAndJoin();
  stats::Totals Totals() const;
  // Where the admin endpoint listens (port 0 resolved); null when it is off.
  const net::SocketAddress* admin_address() const {
    return admin_ ? &admin_->address() : nullptr;
  }

  admin::View AdminView() const;
  absl::StatusOr<admin::ConnectionsView> Connections(const std::string& service,
                                                     size_t limit) const;

 private:
  struct Retiring {
    std::unique_ptr<Server> server;
    absl::Time deadline;  // of its removed services', backends' and listeners' connections
    bool cut = false;     // Server::CutRemoved() was called
    bool force = false;   // past kMaxDrainingConfigs: cut everything now
  };

  explicit Reloader(Options options) : options_(std::move(options)) {}
  // `reload`: a Reload() (counted as one), else a Republish().
  Result Fail(std::string error, bool reload = true);
  // The part both share, under reload_mu_: `next` prepared, made from the
  // running config, started and swapped in.
  Result Replace(Server::Options next, bool reload);

  const Options options_;
  // std:: mutexes, not absl::Mutex: Debian's Abseil is not built with TSan,
  // which then cannot see the ordering an absl::Mutex gives.
  std::mutex reload_mu_;  // one reload at a time; held across the whole of one
  // Holds reload_mu_ from BeginExport to EndExport (both on the donor's thread).
  std::unique_lock<std::mutex> export_lock_;
  // What `load` (or Create) gave last before `prepare`, for Republish().
  Server::Options loaded_ ABSL_GUARDED_BY(reload_mu_);
  mutable std::shared_mutex mu_;
  std::unique_ptr<Server> current_ ABSL_GUARDED_BY(mu_);
  std::vector<Retiring> retiring_ ABSL_GUARDED_BY(mu_);
  // What the configs gone before counted (ZeroGauges'd), by name.
  admin::View retired_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t reloads_success_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reloads_failure_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_reload_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time started_;
  std::unique_ptr<admin::Actions> actions_;
  // Declared last: destroyed (and stopped) first, while what it reads exists.
  std::unique_ptr<admin::AdminServer> admin_;
};

}  // namespace l4lb::reload
