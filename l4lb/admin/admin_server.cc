#include "l4lb/admin/admin_server.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

#include "absl/strings/numbers.h"

#include "l4lb/admin/auth.h"
#include "l4lb/admin/connections.h"
#include "l4lb/admin/metrics.h"
#include "l4lb/admin/status.h"
#include "l4lb/admin/status_page.h"

// Debian's libcpp-httplib.so is built with OpenSSL, zlib and brotli; the header
// must see the same options (they change httplib::Request's layout):
// tools/deps:httplib defines them.
#include <httplib.h>
#include <nlohmann/json.hpp>

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

constexpr char kRoutes[] =
    "l4lb admin endpoint\n"
    "  GET /         the status page (HTML; a browser opens /?token=TOKEN)\n"
    "  GET /api      this list\n"
    "  GET /metrics  Prometheus text format\n"
    "  GET /status   JSON: every service and backend\n"
    "  GET /connections?service=NAME&limit=N  JSON: live TCP connections\n"
    "  POST /services/NAME/backends/ADDRESS/drain   no new clients (pinned ones still)\n"
    "  POST /services/NAME/backends/ADDRESS/maint   no clients, checks paused\n"
    "  POST /services/NAME/backends/ADDRESS/enable  takes clients again\n"
    "  POST /services/NAME/backends/ADDRESS/weight?value=N\n"
    "  POST /bans/ADDRESS?time=DURATION[&service=NAME]  refuse a client at accept\n"
    "  DELETE /bans/ADDRESS[?service=NAME]\n"
    "  POST /reload  re-read the config file (like SIGHUP)\n";

void Answer(const Actions::Answer& answer, httplib::Response& res) {
  res.status = answer.status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(answer.json + "\n", "application/json");
}

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

void AdminServer::Act(const httplib::Request& req, httplib::Response& res) const {
  // The body, if any, is never read: close rather than misread what follows it.
  if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
    if (req.get_header_value("Content-Length") != "0") res.set_header("Connection", "close");
  }
  static const std::regex kBackend(R"(/services/([^/]+)/backends/([^/]+)/([^/]+))");
  static const std::regex kBan(R"(/bans/([^/]+))");
  std::smatch m;
  // httplib decoded the path: "[2001:db8::1]:80" may come %-escaped.
  if (req.method == "POST" && req.path == "/reload" && options_.reload) {
    return Answer(options_.reload(), res);
  }
  const Actions* actions = options_.actions;
  if (actions != nullptr && req.method == "POST" && std::regex_match(req.path, m, kBackend)) {
    return Answer(actions->OnBackend(m[1].str(), m[2].str(), m[3].str(),
                                     req.get_param_value("value")),
                  res);
  }
  if (actions != nullptr && std::regex_match(req.path, m, kBan)) {
    return Answer(req.method == "POST" ? actions->Ban(m[1].str(), req.get_param_value("time"),
                                                      req.get_param_value("service"))
                                       : actions->Unban(m[1].str(), req.get_param_value("service")),
                  res);
  }
  const nlohmann::json error = {
      {"error", absl::StrCat("no action ", req.method, " ", req.path, " (GET /api lists them)")}};
  Answer({404, error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}, res);
}

void AdminServer::Route() {
  httplib::Server& http = *http_;
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // The page itself holds no data: ?token= opens it, and everything it then
    // fetches needs the header.
    const bool page = req.path == "/";
    if (Authorized(req.get_header_value("Authorization"), options_.token) ||
        (page && req.has_param("token") &&
         TokenMatches(req.get_param_value("token"), options_.token))) {
      // Actions are answered here, before httplib reads a body: `curl -X POST`
      // sends none and no Content-Length, which httplib would take for a body
      // that runs to the end of the connection (a 5 s stall per action).
      if (req.method == "POST" || req.method == "DELETE") {
        Act(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer realm=\"l4lb\"");
    res.set_content(page ? "401 unauthorized: open /?token=TOKEN\n"
                         : "401 unauthorized: send \"Authorization: Bearer TOKEN\"\n",
                    "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", kStatusPageCsp);
    // Its URL may carry the token: no Referer passes it on, no cache keeps it.
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cache-Control", "no-store");
    const absl::string_view page = StatusPageHtml();
    res.set_content(page.data(), page.size(), kStatusPageContentType);
  });
  http.Get("/api", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kRoutes, "text/plain; charset=utf-8");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderMetrics(view_()), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
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
            << "/ (the status page; /metrics, /status, /connections, /api)"
            << (options_.token.empty() ? "" : ", token required");
}

void AdminServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace l4lb::admin
