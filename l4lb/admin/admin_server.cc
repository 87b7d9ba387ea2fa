#include "l4lb/admin/admin_server.h"

#include <cerrno>
#include <cstring>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

#include "absl/strings/numbers.h"

#include "l4lb/admin/auth.h"
#include "l4lb/admin/connections.h"
#include "l4lb/admin/metrics.h"
#include "l4lb/admin/status.h"

// Debian's libcpp-httplib.so is built with OpenSSL, zlib and brotli; the header
// must see the same options (they change httplib::Request's layout):
// tools/deps:httplib defines them.
#include <httplib.h>

namespace l4lb::admin {
namespace {

// "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1": what getaddrinfo (inside
// httplib) takes as a host.
std::string Host(const net::SocketAddress& address) {
  std::string text = address.ToString();
  text.erase(text.rfind(':'));
  if (!text.empty() && text.front() == '[') text = text.substr(1, text.size() - 2);
  return text;
}

constexpr char kIndex[] =
    "l4lb admin endpoint\n"
    "  GET /metrics  Prometheus text format\n"
    "  GET /status   JSON: every service and backend\n"
    "  GET /connections?service=NAME&limit=N  JSON: live TCP connections\n";

}  // namespace

AdminServer::AdminServer(Options options, ViewFn view, ConnectionsFn connections)
    : options_(std::move(options)), view_(std::move(view)), connections_(std::move(connections)) {}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Create(Options options, ViewFn view,
                                                                 ConnectionsFn connections) {
  std::unique_ptr<AdminServer> admin(
      new AdminServer(std::move(options), std::move(view), std::move(connections)));
  admin->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *admin->http_;
  http.new_task_queue = [] { return new httplib::ThreadPool(kHandlerThreads); };
  // Scrapers send one small GET: a client that dawdles loses its connection
  // instead of holding a handler thread.
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.set_keep_alive_timeout(5);
  http.set_payload_max_length(64 * 1024);
  // Headers and body go out in separate writes: without NODELAY the body waits for
  // the client's delayed ACK, 40 ms a request.
  http.set_tcp_nodelay(true);
  admin->Route();
  const std::string host = Host(admin->options_.listen);
  const int wanted = admin->options_.listen.port();
  errno = 0;
  const int port = wanted == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, wanted)
                                                                     ? wanted
                                                                     : -1);
  if (port <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("admin: bind ",
                                                   admin->options_.listen.ToString(), ": ",
                                                   errno != 0 ? strerror(errno) : "failed"));
  }
  admin->address_ = admin->options_.listen;
  admin->address_.set_port(static_cast<uint16_t>(port));
  return admin;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Route() {
  httplib::Server& http = *http_;
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (Authorized(req.get_header_value("Authorization"), options_.token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer realm=\"l4lb\"");
    res.set_content("401 unauthorized: send \"Authorization: Bearer TOKEN\"\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kIndex, "text/plain; charset=utf-8");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderMetrics(view_()), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(Status(), "application/json");
  });
  http.Get("/connections", [this](const httplib::Request& req, httplib::Response& res) {
    size_t limit = kDefaultConnections;
    if (req.has_param("limit") &&
        (!absl::SimpleAtoi(req.get_param_value("limit"), &limit) || limit > kMaxConnections)) {
      res.status = 400;
      res.set_content(absl::StrCat("400 limit: want 0..", kMaxConnections, "\n"), "text/plain");
      return;
    }
    absl::StatusOr<ConnectionsView> view = connections_(req.get_param_value("service"), limit);
    if (!view.ok()) {
      res.status = 404;
      res.set_content(absl::StrCat("404 ", view.status().message(), "\n"), "text/plain");
      return;
    }
    res.set_content(RenderConnections(*view), "application/json");
  });
  http.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
        std::string what = "unknown exception";
        try {
          if (e) std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        LOG_EVERY_T(WARNING, 1.0) << "admin: " << req.method << " " << req.path << ": " << what;
        res.status = 500;
        res.set_content("500 internal error\n", "text/plain");
      });
}

std::string AdminServer::Status() {
  View view = view_();
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = RenderStatus(view, previous_status_ ? &*previous_status_ : nullptr);
  previous_status_ = std::move(view);
  return out;
}

void AdminServer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    if (!http_->listen_after_bind()) LOG(ERROR) << "admin endpoint stopped: accept failed";
  });
  // Stop() before the listener runs would not reach it (httplib's stop() acts
  // on a running server only).
  for (int i = 0; i < 2000 && !http_->is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  LOG(INFO) << "admin endpoint on http://" << address_.ToString()
            << "/ (/metrics, /status, /connections)"
            << (options_.token.empty() ? "" : ", token required");
}

void AdminServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace l4lb::admin
