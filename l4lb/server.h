#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "health/checker.h"
#include "l4lb/admin/actions.h"
#include "l4lb/admin/admin_server.h"
#include "l4lb/admin/view.h"
#include "l4lb/admission/admission.h"
#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/control.h"
#include "l4lb/backend/passive_health.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/balancer/affinity.h"
#include "l4lb/balancer/policy.h"
#include "l4lb/listener.h"
#include "l4lb/log/access_log.h"
#include "l4lb/net/address.h"
#include "l4lb/net/keepalive.h"
#include "l4lb/net/source.h"
#include "l4lb/stats/counters.h"
#include "l4lb/takeover/outbox.h"
#include "l4lb/takeover/wire.h"
#include "l4lb/worker.h"

namespace l4lb {

// Server runs one config: it owns the workers and their listening sockets, the
// backend snapshot publisher of each service and the health checker that
// publishes into them. Create() does everything that can fail on operator input
// (bind, table build) before any thread starts, so a bad setup is one error.
// A reload (l4lb/reload/) makes the next Server from the running one, which then
// hands over and drains beside it; the admin endpoint, which reads whichever
// runs, lives there too.
//
// Thread safety: call from one thread (main, or the reloader under its lock).
// Workers run on their own threads.
class Server {
 public:
  // One service: listeners whose clients share one set of backends.
  enum class Protocol { kTcp, kUdp };
  struct Service {
    std::string name;  // for logs; default: the first listen address
    Protocol protocol = Protocol::kTcp;
    std::vector<net::SocketAddress> listen;
    // All resolved by Create() time (BackendSpec::resolved): named ones are
    // expanded by l4lb/dns/ into one spec per address.
    std::vector<backend::BackendSpec> backends;
    // Named backends (BackendSpec::host): resolved again every dns_refresh, or
    // sooner when the record's TTL is shorter, asking dns_servers (empty:
    // /etc/resolv.conf's). Read by l4lb/dns/, not by the Server.
    absl::Duration dns_refresh = absl::Seconds(30);
    std::vector<net::SocketAddress> dns_servers;
    backend::HashKey hash_key = backend::HashKey::kSrcIp;
    uint32_t maglev_table_size = 65537;
    // How a new connection's backend is picked (balancer/policy.h); TCP only
    // for the policies other than Maglev. balance_factor: maglev_bounded's.
    balancer::Balance balance = balancer::Balance::kMaglev;
    double balance_factor = 1.25;
    absl::Duration connect_timeout = absl::Seconds(2);
    int connect_retries = 2;
    absl::Duration idle_timeout = absl::Minutes(10);  // zero: never
    health::HealthOptions health;
    bool kill_on_down = false;  // close live connections to a backend that goes DOWN
    // TCP keepalive per side (client_keepalive, backend_keepalive): towards
    // clients it is set on the listeners (accepted sockets inherit it), towards
    // backends on each backend socket. Off: no keepalive, no setsockopt.
    net::Keepalive client_keepalive;
    net::Keepalive backend_keepalive;
    // Once one direction has ended (a FIN went one way), the connection is cut
    // after this long without a byte either way; zero: idle_timeout alone.
    absl::Duration client_fin_timeout = absl::ZeroDuration();
    // Per side, like HAProxy's timeout client and timeout server: cut after this
    // long waiting on that side without a byte from or to it (worker_timeouts.cc);
    // zero: off (idle_timeout, either way, still holds).
    absl::Duration client_timeout = absl::ZeroDuration();
    absl::Duration backend_timeout = absl::ZeroDuration();
    // Local addresses of backend connections, taken in turn (net/source.h);
    // empty: the kernel's choice. TCP only.
    std::vector<net::SocketAddress> source;
    // Backend connections from the client's own address (net/transparent.h);
    // TCP only, not with `source`. Create() checks the capability.
    bool transparent = false;
    // Fewer packets per short connection, for client-first protocols only
    // (net/fast_open.h): TCP_DEFER_ACCEPT on the listeners, TCP Fast Open on
    // backend connects. TCP only; off by default.
    bool defer_accept = false;
    bool backend_tfo = false;
    // A backend that begins to take clients (UP after DOWN, enabled from MAINT,
    // added by a reload) ramps to its weight over this long (backend/slow_start.h);
    // zero: at once. Not at l4lb's start.
    absl::Duration slow_start = absl::ZeroDuration();
    // Services with the same non-empty group pin a client IP to one backend for
    // affinity_ttl after its last connection (FTP control + data connections).
    std::string affinity_group;
    absl::Duration affinity_ttl = absl::Minutes(10);
    // UDP services: a session (client address -> its own backend socket) ends after
    // this long without a datagram either way, or after max_responses replies (0:
    // no limit; 1 suits DNS). At most udp_max_sessions live per worker; the
    // oldest idle one makes room.
    absl::Duration udp_idle_timeout = absl::Seconds(30);
    uint32_t udp_max_sessions = 100000;
    uint32_t max_responses = 0;
    // Who may connect, and how the real client address arrives and leaves
    // (allow/deny, limits, bans, PROXY protocol): README "Access control".
    admission::AdmissionOptions admission;
    // TLS passthrough by server name (nginx's ssl_preread, HAProxy's
    // req.ssl_sni): each route's names ("a.example.com", "*.example.com")
    // send a connection to another TCP service's backends, with that service's
    // health, balance, weights and connection options; a ClientHello without a
    // name that any route takes, or no TLS at all, goes to this service's own
    // backends (the default route), or is refused (no_route) when it has none.
    // A route's service may have no listener of its own (a pool). TCP only.
    struct SniRoute {
      std::vector<std::string> names;
      std::string service;
    };
    std::vector<SniRoute> sni_routes;
    absl::Duration sni_timeout = absl::Seconds(5);  // for the whole ClientHello
  };
  struct Options {
    std::vector<Service> services;
    int threads = 1;
    // One line per connection and UDP session, written by the logging thread
    // (log/access_log.h): bounded queues, drops counted, never a worker stall.
    bool access_log = true;
    size_t access_log_buffer = 1 << 20;  // bytes per worker (log::AccessLog::Options)
    int backlog = 4096;
    // F_SETPIPE_SZ of relay pipes (0: the kernel default, 64 KiB).
    int pipe_size = 0;
    // Messages below this many bytes are copied, larger ones spliced (relay/flow.h).
    size_t copy_bytes = 0;
    // TCP congestion control of client and backend connections (net/congestion.h);
    // empty: the kernel's default, with no setsockopt at all.
    std::string client_congestion;
    std::string backend_congestion;
    // Worker::Options::busy_poll.
    absl::Duration busy_poll = absl::ZeroDuration();
    // Live TCP connections of all services together; 0: no bound.
    uint32_t max_connections = 0;
    // The admin HTTP endpoint (--admin, [admin]); nullopt: off. Not the
    // server's: the reloader (l4lb/reload/) runs it across configs.
    std::optional<admin::AdminServer::Options> admin;
    // A live upgrade's new process (--takeover): the workers accept only after
    // ReleaseAccepts() (the running process accepts until it hands over).
    bool hold_accepts = false;
  };

  // A live upgrade (--takeover, l4lb/takeover/; server_takeover.cc): the
  // listening sockets a previous process handed over, one per worker, for
  // Create() to take where the config has the same listen address.
  struct InheritedListener {
    bool udp = false;
    net::SocketAddress requested;  // as configured: port 0 stays 0
    net::SocketAddress bound;
    std::vector<net::Fd> per_worker;
  };

  // `previous`: the running config this one replaces (a reload). Its listeners
  // on the same addresses (and protocol) are taken over, not bound again (dup:
  // one socket, no window in which a connect is refused); its backends' health,
  // checks and admin states (drain, maint) go on where the service name and the
  // backend address as written match; affinity groups keep their pins (same
  // ttl) and --max_connections its count. `previous` is not changed: until its
  // HandOver() both could run. threads must match.
  // `inherited` (a live upgrade; may be null): listeners on those addresses are
  // those sockets (the n-th of several port-0 ones takes the n-th), moved out
  // of it; each must have one socket per worker. What is left there, the new
  // config does not listen on.
  static absl::StatusOr<std::unique_ptr<Server>> Create(
      Options options, const Server* previous = nullptr,
      std::vector<InheritedListener>* inherited = nullptr);
  // What logs, metrics and the admin API call a service: its name, else its
  // first listen address; "" for neither (Create refuses it).
  static std::string ServiceName(const Service& service);
  ~Server();

  // Starts the workers; returns once every ring is up (or the first error).
  absl::Status Start();
  // One bound listener (port 0 resolved) and the service it belongs to.
  struct BoundListener {
    uint16_t service = 0;
    bool udp = false;
    net::SocketAddress address;
  };
  // Services in order, each one's listeners in order.
  const std::vector<BoundListener>& listening() const { return listening_; }

  // The next config runs (Create(..., this) and Start() succeeded): stop
  // accepting and receiving on the sockets it shares, close the listeners it
  // dropped, stop probing; what was accepted and live connections and UDP
  // sessions go on. Drained() tells when they are gone.
  void HandOver();
  // The drain timeout after HandOver(): connections and UDP sessions of the
  // services, backends (by name) and listeners the `running` config does not
  // have (any more: a backend removed and added back keeps its connections)
  // are cut; the others go on until they end.
  void CutRemoved(const Server& running);
  // Drain: stop accepting; live connections go on.
  void StopAccepting();
  // True once every worker has exited (no connection left).
  bool Drained() const;
  // Cut what is left and wait for the workers to exit.
  void ForceCloseAndJoin();

  // A live upgrade, the running process's side (takeover/donor.h): its
  // listeners with every worker's socket (the process's own fds, valid while
  // the server runs), ...
  struct TakeoverListener {
    std::string service;
    bool udp = false;
    net::SocketAddress requested;
    net::SocketAddress bound;
    std::vector<int> fds{};
  };
  std::vector<TakeoverListener> TakeoverListeners() const;
  // ... each running worker's export into `out` (Worker::RequestExport), and
  // its end (Worker::RequestExportEnd).
  void BeginExport(takeover::Outbox* out);
  void EndExport(bool handed_over);
  // The new process's side: `record` placed in this config (services and
  // backend by name, the listener by address), with its fds, for the worker
  // that will relay it (*worker); the fds move into it only then. NotFound
  // naming what this config lacks.
  absl::StatusOr<Worker::Adoption> Place(const takeover::Connection& record,
                                         std::vector<net::Fd>* fds, size_t* worker) const;
  absl::StatusOr<Worker::UdpAdoption> PlaceUdp(const takeover::UdpSession& record,
                                               std::vector<net::Fd>* fds, size_t* worker) const;
  void Adopt(std::vector<std::vector<Worker::Adoption>> per_worker,
             std::vector<std::vector<Worker::UdpAdoption>> sessions_per_worker);
  void ReleaseAccepts();

  stats::Totals Totals() const;
  const Options& options() const { return options_; }
  // What the admin endpoint shows, read now: the workers' counters summed, each
  // backend's state and weight from the published snapshot, its checks from the
  // health checker. Safe from any thread while the server runs.
  admin::View AdminView() const;
  // GET /connections: each worker lists its own (stats/connection_list.h), up
  // to `limit` in all; `service` "" is every service. Any thread; waits up to a
  // second per worker that does not answer.
  absl::StatusOr<admin::ConnectionsView> Connections(const std::string& service,
                                                     size_t limit) const;

  // For the admin API (any thread, after Create): services by name (Service::name,
  // else its first listen address), each one's backend control (drain, maint,
  // weight; health) and gate (bans).
  absl::StatusOr<size_t> FindService(absl::string_view name) const;
  // The actions' view of every service (admin/actions.h); pointers live as long
  // as the server.
  std::vector<admin::Actions::Target> ActionTargets();
  const std::vector<std::string>& service_names() const { return names_; }
  backend::ServiceControl& control(size_t service) { return *controls_[service]; }
  admission::Admission& admission(size_t service) { return *admission_[service]; }

 private:
  Server() = default;
  // A listener's sockets: dups of the previous config's on the same address
  // (the n-th of several port-0 ones takes the n-th), else newly bound.
  absl::StatusOr<ListenerSockets> TakeOverOrOpen(const Server* previous,
                                                 const net::SocketAddress& requested,
                                                 uint16_t service, bool udp);
  // A live upgrade's record placed in this config: `service`'s backend named
  // `name`, and the index among a worker's TCP (or UDP) listeners of its
  // listener bound at `address`. NotFound naming what the config lacks.
  absl::StatusOr<int> FindBackend(size_t service, const std::string& name) const;
  absl::StatusOr<uint16_t> WorkerListener(bool udp, size_t service,
                                          const std::string& address) const;
  // The inherited listener (a live upgrade's) on `requested`, if any.
  absl::StatusOr<std::optional<ListenerSockets>> TakeInherited(const net::SocketAddress& requested,
                                                               uint16_t service, bool udp);

  // Each listener's sockets, one per worker (dups of the workers' own), kept
  // for the next config to take over until HandOver().
  struct KeptListener {
    bool udp = false;
    net::SocketAddress requested;  // as configured: port 0 stays 0
    net::SocketAddress bound;
    std::vector<net::Fd> per_worker;
  };

  Options options_;
  std::vector<std::unique_ptr<backend::SnapshotPublisher>> publishers_;  // per service
  std::vector<std::unique_ptr<backend::ServiceControl>> controls_;       // per service
  std::vector<std::unique_ptr<backend::PassiveHealth>> passive_;         // per service
  std::vector<std::unique_ptr<admission::Admission>> admission_;        // per service
  // --max_connections: one count for the process, shared by reloaded configs.
  std::shared_ptr<admission::Admission> global_admission_;
  std::unique_ptr<health::HealthChecker> checker_;
  // One per affinity group, shared by its services' workers (and by the next
  // config's, after a reload).
  std::map<std::string, std::shared_ptr<balancer::AffinityTable>> affinity_;
  // The logging thread and the workers' queues to it (null: --access_log=false).
  // Declared before workers_: it outlives the workers that hold its queues.
  std::unique_ptr<log::AccessLog> access_log_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<BoundListener> listening_;
  std::vector<KeptListener> kept_;
  std::vector<InheritedListener>* inherited_ = nullptr;  // during Create only
  std::vector<std::string> names_;  // per service
  absl::Time started_;
  std::atomic<bool> draining_{false};
};

}  // namespace l4lb
