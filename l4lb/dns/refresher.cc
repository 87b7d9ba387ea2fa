#include "l4lb/dns/refresher.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

#include "l4lb/dns/expand.h"

namespace l4lb::dns {
namespace {

std::string ServersKey(const std::vector<net::SocketAddress>& servers) {
  return absl::StrJoin(servers, ",", [](std::string* out, const net::SocketAddress& s) {
    out->append(s.ToString());
  });
}

// "ftp1.farm.internal", or "ftp1.farm.internal (from 127.0.0.1:5353)" when the
// service names its servers: what log lines call a name.
std::string Label(const std::string& servers, const std::string& host) {
  return servers.empty() ? host : absl::StrCat(host, " (from ", servers, ")");
}

}  // namespace

Refresher::Refresher(Options options) : options_(std::move(options)) {}

Refresher::~Refresher() { Stop(); }

absl::StatusOr<Resolver::Answer> Refresher::Lookup(const std::vector<net::SocketAddress>& servers,
                                                   const std::string& host) {
  if (options_.resolve) {
    // Canonical here too: a change is a different set, never another order.
    absl::StatusOr<Resolver::Answer> answer = options_.resolve(servers, host);
    if (answer.ok()) Canonicalize(&answer->addresses);
    return answer;
  }
  Resolver* resolver = nullptr;
  {
    std::lock_guard<std::mutex> lock(resolvers_mu_);
    std::unique_ptr<Resolver>& r = resolvers_[ServersKey(servers)];
    if (r == nullptr) {
      absl::StatusOr<std::unique_ptr<Resolver>> made = Resolver::Create({.servers = servers});
      if (!made.ok()) return made.status();
      r = *std::move(made);
    }
    resolver = r.get();  // never erased: lives as long as this
  }
  return resolver->Resolve(host);
}

absl::Time Refresher::Due(const Entry& e, absl::Time now) const {
  absl::Duration every = e.refresh;
  if (e.ttl < every) every = std::max(e.ttl, options_.ttl_floor);
  return now + every;
}

absl::Status Refresher::Prepare(Server::Options* options) {
  struct Wanted {
    std::vector<net::SocketAddress> servers;
    absl::Duration refresh;
    const backend::BackendSpec* first;  // for the error, if it cannot be resolved
  };
  std::map<Key, Wanted> wanted;
  for (const Server::Service& service : options->services) {
    for (const backend::BackendSpec& b : service.backends) {
      if (b.resolved()) continue;
      const auto [it, added] =
          wanted.try_emplace(Key{ServersKey(service.dns_servers), b.host},
                             Wanted{service.dns_servers, service.dns_refresh, &b});
      if (!added) it->second.refresh = std::min(it->second.refresh, service.dns_refresh);
    }
  }
  std::vector<Key> missing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, w] : wanted) {
      if (!entries_.contains(key)) missing.push_back(key);
    }
  }
  // New names: resolved here, without the lock (a refresh pass may run).
  const absl::Time now = absl::Now();
  std::map<Key, Entry> fresh;
  for (const Key& key : missing) {
    const Wanted& w = wanted.at(key);
    absl::StatusOr<Resolver::Answer> answer = Lookup(w.servers, key.second);
    if (!answer.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(w.first->origin, w.first->origin.empty() ? "" : ": ", "\"", w.first->name,
                       "\": ", answer.status().message()));
    }
    LOG(INFO) << "dns: " << Label(key.first, key.second) << ": "
              << JoinAddresses(answer->addresses);
    Entry e{.servers = w.servers,
            .addresses = answer->addresses,
            .refresh = w.refresh,
            .ttl = answer->ttl,
            .due = absl::InfinitePast()};
    e.due = Due(e, now);
    fresh.emplace(key, std::move(e));
  }
  std::vector<Addresses> per_service(options->services.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, e] : fresh) entries_.try_emplace(key, std::move(e));
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = wanted.contains(it->first) ? std::next(it) : entries_.erase(it);
    }
    for (const auto& [key, w] : wanted) {
      Entry& e = entries_.at(key);
      e.refresh = w.refresh;
      e.due = std::min(e.due, Due(e, now));  // a shorter dns_refresh counts from now
    }
    for (size_t s = 0; s < options->services.size(); ++s) {
      const Server::Service& service = options->services[s];
      for (const backend::BackendSpec& b : service.backends) {
        if (!b.resolved()) {
          per_service[s][b.host] =
              entries_.at(Key{ServersKey(service.dns_servers), b.host}).addresses;
        }
      }
    }
  }
  wake_.notify_all();  // new names may be due before the thread's wait ends
  for (size_t s = 0; s < options->services.size(); ++s) {
    absl::StatusOr<std::vector<backend::BackendSpec>> expanded =
        Expand(options->services[s].backends, per_service[s]);
    if (!expanded.ok()) return expanded.status();
    options->services[s].backends = *std::move(expanded);
  }
  return absl::OkStatus();
}

bool Refresher::RefreshDue(absl::Time now) {
  std::vector<std::pair<Key, std::vector<net::SocketAddress>>> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, e] : entries_) {
      if (e.due <= now) due.emplace_back(key, e.servers);
    }
  }
  bool changed = false;
  for (const auto& [key, servers] : due) {
    absl::StatusOr<Resolver::Answer> answer = Lookup(servers, key.second);
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) continue;  // forgotten by a reload meanwhile
    Entry& e = it->second;
    const std::string label = Label(key.first, key.second);
    if (!answer.ok()) {
      // Once per name and refresh: the thread's own pace bounds these lines.
      ++counts_.failure;
      LOG(WARNING) << "dns: " << answer.status().message()
                   << "; keeping the last good addresses of " << label << ": "
                   << JoinAddresses(e.addresses);
    } else if (answer->addresses != e.addresses) {
      ++counts_.changed;
      LOG(INFO) << "dns: " << label << " changed: " << JoinAddresses(e.addresses) << " -> "
                << JoinAddresses(answer->addresses);
      e.addresses = answer->addresses;
      changed = true;
    } else {
      ++counts_.unchanged;
    }
    if (answer.ok()) e.ttl = answer->ttl;
    e.due = Due(e, now);
  }
  return changed;
}

absl::Time Refresher::NextDue() const {
  std::lock_guard<std::mutex> lock(mu_);
  return NextDueLocked();
}

absl::Time Refresher::NextDueLocked() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [key, e] : entries_) next = std::min(next, e.due);
  return next;
}

Refresher::Counts Refresher::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

void Refresher::Start(std::function<bool()> changed) {
  changed_ = std::move(changed);
  thread_ = std::thread([this] { Run(); });
}

void Refresher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Refresher::Run() {
  bool unapplied = false;  // a change `changed_` could not apply yet
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
      const absl::Duration wait = std::min(NextDueLocked() - absl::Now(), absl::Hours(1));
      if (wait > absl::ZeroDuration()) {
        // Woken early by Stop() or by Prepare() (a new name): look again.
        wake_.wait_for(lock, absl::ToChronoNanoseconds(wait));
        continue;
      }
    }
    const bool changed = RefreshDue(absl::Now());
    if (changed || unapplied) unapplied = !changed_();
  }
}

}  // namespace l4lb::dns
