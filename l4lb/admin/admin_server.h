#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

#include "l4lb/admin/actions.h"
#include "l4lb/admin/view.h"
#include "l4lb/net/address.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace l4lb::admin {

// AdminServer is the admin HTTP endpoint (--admin=ADDRESS:PORT): Debian's
// cpp-httplib on threads of its own, never on a worker's ring. Routes:
//   GET /         the status page, HTML for a browser (status_page.h)
//   GET /api      the list of routes
//   GET /metrics  Prometheus text (metrics.h)
//   GET /status   JSON (status.h)
//   GET /connections?service=NAME&limit=N  JSON (connections.h): the workers'
//                 live connections, N at most (100; up to kMaxConnections)
//   POST ...      the actions (actions.h) and POST /reload (Options::reload)
// With a token every request must carry "Authorization: Bearer TOKEN", else 401
// (auth.h); GET / also takes it as /?token=TOKEN (a browser's address bar sends
// no header), and the page passes it on to /status as the header. Each request
// asks `view` for a fresh View (Server::View(), which sums the workers' counters
// then): nothing is computed between requests, so an unscraped endpoint costs
// nothing.
//
// Threads: httplib's listener and a pool of kHandlerThreads (two, so one slow
// client does not hold up a scrape). An exception inside httplib or a handler
// becomes a 500 for that request, never the process's end.
//
// Thread safety: Create(), Start() and Stop() from one thread (the server's).
class AdminServer {
 public:
  static constexpr int kHandlerThreads = 2;

  struct Options {
    net::SocketAddress listen;  // port 0: a free port (address() tells which)
    std::string token;          // empty: no token needed
    // POST/DELETE actions (drain, maint, enable, weight, bans); null: none. Not owned.
    const Actions* actions = nullptr;
    // POST /reload: re-reads the config (l4lb/reload/), answers with the result
    // (200, or 400 and the error); null: 404.
    std::function<Actions::Answer()> reload = nullptr;
  };
  using ViewFn = std::function<View()>;
  // Live connections of the service named `service` ("": all), at most `limit`;
  // NotFound for a name no service has.
  using ConnectionsFn =
      std::function<absl::StatusOr<ConnectionsView>(const std::string& service, size_t limit)>;
  static constexpr size_t kDefaultConnections = 100;
  static constexpr size_t kMaxConnections = 10000;

  // Binds the listening socket, so a taken port is an error at start-up:
  // "admin: bind 127.0.0.1:9100: Address already in use".
  static absl::StatusOr<std::unique_ptr<AdminServer>> Create(Options options, ViewFn view,
                                                             ConnectionsFn connections);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Serves until Stop(); returns once the listener accepts.
  void Start();
  // Stops accepting, finishes the requests in progress, joins the threads.
  void Stop();
  const net::SocketAddress& address() const { return address_; }

 private:
  AdminServer(Options options, ViewFn view, ConnectionsFn connections);
  void Route();
  // POST and DELETE: the actions (actions.h), or 404.
  void Act(const httplib::Request& req, httplib::Response& res) const;
  std::string Status();

  Options options_;
  ViewFn view_;
  ConnectionsFn connections_;
  net::SocketAddress address_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::mutex mu_;
  // The view the last /status answered from: throughput is measured against it.
  std::optional<View> previous_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace l4lb::admin
