#include "l4lb/reload/reloader.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

#include "l4lb/clock/monotonic.h"
#include "l4lb/reload/merge.h"

namespace l4lb::reload {
namespace {

// The admin endpoint is bound once, at start: its address and token are not
// for a reload to change (the running endpoint is the one answering).
absl::Status CheckAdminUnchanged(const std::optional<admin::AdminServer::Options>& running,
                                 const std::optional<admin::AdminServer::Options>& next) {
  const bool same = running.has_value() == next.has_value() &&
                    (!running || (running->listen == next->listen && running->token == next->token));
  if (same) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "[admin] (or --admin, --admin_token_file) cannot change at runtime: the endpoint is "
      "bound at start-up; put the old [admin] table back, or restart l4lb to change it");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Reloader>> Reloader::Create(Server::Options first,
                                                           Options options) {
  std::unique_ptr<Reloader> r(new Reloader(std::move(options)));
  {
    std::lock_guard<std::mutex> serial(r->reload_mu_);
    r->loaded_ = first;
  }
  if (r->options_.prepare) {
    if (absl::Status st = r->options_.prepare(&first); !st.ok()) return st;
  }
  first.hold_accepts = r->options_.hold_accepts;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Create(std::move(first), /*previous=*/nullptr, r->options_.inherited);
  if (!server.ok()) return server.status();
  r->started_ = absl::Now();
  Server& s = **server;
  // The workers' clock: bans are compared with their accept times.
  r->actions_ = std::make_unique<admin::Actions>(s.ActionTargets(), MonotonicNanos);
  if (s.options().admin) {
    admin::AdminServer::Options admin_options = *s.options().admin;
    admin_options.actions = r->actions_.get();
    Reloader* self = r.get();
    admin_options.reload = [self] {
      const Result result = self->Reload();
      if (!result.status.ok()) {
        return admin::Actions::Answer{
            400, nlohmann::json{{"result", "failure"},
                                {"error", std::string(result.status.message())}}
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
      }
      return admin::Actions::Answer{200, nlohmann::json{{"result", "success"},
                                                        {"generation", result.generation},
                                                        {"services", result.services},
                                                        {"listeners", result.listeners}}
                                             .dump()};
    };
    absl::StatusOr<std::unique_ptr<admin::AdminServer>> admin = admin::AdminServer::Create(
        admin_options, [self] { return self->AdminView(); },
        [self](const std::string& service, size_t limit) {
          return self->Connections(service, limit);
        });
    if (!admin.ok()) return admin.status();
    r->admin_ = *std::move(admin);
  }
  {
    std::unique_lock<std::shared_mutex> lock(r->mu_);
    r->current_ = *std::move(server);
  }
  return r;
}

Reloader::~Reloader() { ForceCloseAndJoin(); }

std::vector<Server::TakeoverListener> Reloader::TakeoverListeners() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return current_->TakeoverListeners();
}

void Reloader::BeginExport(takeover::Outbox* out) {
  export_lock_ = std::unique_lock<std::mutex>(reload_mu_);
  std::shared_lock<std::shared_mutex> lock(mu_);
  current_->BeginExport(out);
  for (Retiring& r : retiring_) r.server->BeginExport(out);
}

void Reloader::EndExport(bool handed_over) {
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    current_->EndExport(handed_over);
    for (Retiring& r : retiring_) r.server->EndExport(handed_over);
  }
  if (export_lock_.owns_lock()) export_lock_.unlock();
}

Server& Reloader::running() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return *current_;
}

absl::Status Reloader::Start() {
  Server* server;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    server = current_.get();
  }
  if (absl::Status status = server->Start(); !status.ok()) return status;
  if (options_.serving) {
    if (absl::Status status = options_.serving(*server); !status.ok()) return status;
  }
  // Last: a scrape may come at once, and everything it reads is running now.
  if (admin_) admin_->Start();
  return absl::OkStatus();
}

Reloader::Result Reloader::Fail(std::string error, bool reload) {
  if (!reload) {
    // A DNS change the running config cannot take (say, an IPv6 address and
    // only IPv4 sources): the refresher tries again after its next pass.
    LOG(ERROR) << "dns: the new addresses are not applied: " << error
               << "; the running config stays";
    return {.status = absl::InvalidArgumentError(error)};
  }
  LOG(ERROR) << "reload failed: " << error << "; the running config stays";
  std::unique_lock<std::shared_mutex> lock(mu_);
  ++reloads_failure_;
  last_reload_ = absl::Now();
  last_error_ = error;
  return {.status = absl::InvalidArgumentError(error)};
}

Reloader::Result Reloader::Reload() {
  std::lock_guard<std::mutex> serial(reload_mu_);
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (stopping_) return {.status = absl::FailedPreconditionError("shutting down: no reload")};
  }
  if (!options_.load) return Fail("no --config file; nothing to reload");
  LOG(INFO) << "reload: reading the config again";
  absl::StatusOr<Server::Options> next = options_.load();
  if (!next.ok()) return Fail(std::string(next.status().message()));
  Server::Options loaded = *next;
  Result result = Replace(*std::move(next), /*reload=*/true);
  if (result.status.ok()) loaded_ = std::move(loaded);
  return result;
}

Reloader::Result Reloader::Republish() {
  std::lock_guard<std::mutex> serial(reload_mu_);
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (stopping_) return {.status = absl::FailedPreconditionError("shutting down: no change")};
  }
  return Replace(loaded_, /*reload=*/false);
}

Reloader::Result Reloader::Replace(Server::Options next, bool reload) {
  // current_ is written only here, under both locks: reading it under
  // reload_mu_ alone is safe.
  const char* what = reload ? "reload" : "dns";
  if (options_.prepare) {
    if (absl::Status st = options_.prepare(&next); !st.ok()) {
      return Fail(std::string(st.message()), reload);
    }
  }
  Server* running;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    running = current_.get();
  }
  if (absl::Status admin = CheckAdminUnchanged(running->options().admin, next.admin); !admin.ok()) {
    return Fail(std::string(admin.message()), reload);
  }
  absl::StatusOr<std::unique_ptr<Server>> made = Server::Create(std::move(next), running);
  if (!made.ok()) {
    return Fail(options_.file.empty() ? std::string(made.status().message())
                                      : absl::StrCat(options_.file, ": ", made.status().message()),
                reload);
  }
  std::unique_ptr<Server> server = *std::move(made);
  // Its workers accept beside the running ones from here on.
  if (absl::Status started = server->Start(); !started.ok()) {
    return Fail(absl::StrCat("cannot start workers: ", started.message()), reload);
  }
  actions_->Retarget(server->ActionTargets());
  Result result;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    retiring_.push_back({.server = std::move(current_),
                         .deadline = absl::Now() + options_.drain_timeout});
    current_ = std::move(server);
    result.generation = ++generation_;
    if (reload) {
      ++reloads_success_;
      last_reload_ = absl::Now();
      last_error_.clear();
    }
    result.services = current_->service_names().size();
    result.listeners = current_->listening().size();
  }
  running->HandOver();  // still owned by retiring_: only Retire() frees it, on main
  {
    // Cut by Retire(), on main: the one place a replaced config is torn down.
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (retiring_.size() > kMaxDrainingConfigs && !retiring_.front().force) {
      retiring_.front().force = true;
      LOG(WARNING) << what << ": more than " << kMaxDrainingConfigs
                   << " earlier configs still draining; cutting the oldest one's "
                   << retiring_.front().server->Totals().active << " connection(s)";
    }
  }
  LOG(INFO) << what << ": serving " << result.services << " service(s) on " << result.listeners
            << " listener(s) (generation " << result.generation << "); the previous config's "
            << "connections go on, those of removed services, backends and listeners for up to "
            << absl::FormatDuration(options_.drain_timeout);
  if (options_.serving) {
    // current_ is ours to read: only a reload (this one, serialised) changes it.
    if (absl::Status status = options_.serving(*current_); !status.ok()) {
      LOG(ERROR) << what << ": " << status.message();
    }
  }
  return result;
}

void Reloader::Retire() {
  std::vector<Server*> done;
  {
    // The writer lock: `cut` is written here (Reload() only appends).
    std::unique_lock<std::shared_mutex> lock(mu_);
    const absl::Time now = absl::Now();
    for (Retiring& r : retiring_) {
      if (r.server->Drained() || r.force) {
        done.push_back(r.server.get());
      } else if (!r.cut && now >= r.deadline) {
        r.server->CutRemoved(*current_);
        r.cut = true;
      }
    }
  }
  if (done.empty()) return;
  // Join their threads outside the lock (a scrape may still read them), then
  // fold their counts into retired_ and take them out in one step, so a scrape
  // sees each count exactly once.
  for (Server* s : done) s->ForceCloseAndJoin();
  std::vector<std::unique_ptr<Server>> freed;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (Server* s : done) {
      for (auto it = retiring_.begin(); it != retiring_.end(); ++it) {
        if (it->server.get() != s) continue;
        admin::View last = s->AdminView();
        ZeroGauges(last);
        AddCounters(retired_, last, /*add_missing=*/true);
        freed.push_back(std::move(it->server));
        retiring_.erase(it);
        break;
      }
    }
  }
  LOG(INFO) << "reload: " << freed.size() << " earlier config(s) drained and freed";
}

void Reloader::StopAccepting(bool handed_over) {
  // After a reload in progress: it reads the running server's sockets.
  std::lock_guard<std::mutex> serial(reload_mu_);
  std::unique_lock<std::shared_mutex> lock(mu_);
  stopping_ = true;
  if (handed_over) {
    current_->HandOver();
  } else {
    current_->StopAccepting();
  }
}

bool Reloader::Drained() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (const Retiring& r : retiring_) {
    if (!r.server->Drained()) return false;
  }
  return current_->Drained();
}

void Reloader::ForceCloseAndJoin() {
  // First: a scrape must not read what is being torn down.
  if (admin_) admin_->Stop();
  std::lock_guard<std::mutex> serial(reload_mu_);
  std::unique_lock<std::shared_mutex> lock(mu_);
  stopping_ = true;
  if (current_) current_->ForceCloseAndJoin();
  for (Retiring& r : retiring_) r.server->ForceCloseAndJoin();
}

stats::Totals Reloader::Totals() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  stats::Totals t = current_->Totals();
  for (const Retiring& r : retiring_) t.Add(r.server->Totals());
  t.Add(retired_.totals);
  return t;
}

admin::View Reloader::AdminView() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  admin::View view = current_->AdminView();
  for (const Retiring& r : retiring_) AddCounters(view, r.server->AdminView(), false);
  AddCounters(view, retired_, false);
  view.started = started_;
  view.generation = generation_;
  view.reloads_success = reloads_success_;
  view.reloads_failure = reloads_failure_;
  view.last_reload = last_reload_;
  view.last_reload_error = last_error_;
  view.draining_generations = static_cast<int>(retiring_.size());
  if (options_.dns_refreshes) view.dns_refreshes = options_.dns_refreshes();
  return view;
}

absl::StatusOr<admin::ConnectionsView> Reloader::Connections(const std::string& service,
                                                             size_t limit) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  absl::StatusOr<admin::ConnectionsView> view = current_->Connections(service, limit);
  const absl::Status unknown = view.status();  // unless a draining config has it
  bool found = view.ok();
  if (!view.ok()) view = admin::ConnectionsView{};
  // The draining configs' connections follow: a removed service's included.
  for (const Retiring& r : retiring_) {
    const size_t room = limit - std::min(limit, view->connections.size());
    absl::StatusOr<admin::ConnectionsView> old = r.server->Connections(service, room);
    if (!old.ok()) continue;
    found = true;
    AddConnections(*view, *std::move(old), limit);
  }
  if (!found) return unknown;
  return view;
}

}  // namespace l4lb::reload
