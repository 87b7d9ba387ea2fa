#include "l4lb/backend/snapshot.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"

#include "l4lb/backend/host_key.h"
#include "l4lb/balancer/flow_hash.h"

namespace l4lb::backend {

const char* AdminStateName(AdminState state) {
  switch (state) {
    case AdminState::kReady:
      return "ready";
    case AdminState::kDrain:
      return "drain";
    case AdminState::kMaint:
      return "maint";
  }
  return "unknown";
}

absl::StatusOr<HashKey> ParseHashKey(absl::string_view text) {
  if (text == "src_ip") return HashKey::kSrcIp;
  if (text == "src_ip_port") return HashKey::kSrcIpPort;
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": want src_ip or src_ip_port"));
}

uint64_t FlowKey(const net::SocketAddress& client, HashKey hash_key) {
  std::array<uint8_t, 18> bytes{};
  const std::array<uint8_t, 16> ip = client.IpBytes16();
  std::copy(ip.begin(), ip.end(), bytes.begin());
  size_t len = 16;
  if (hash_key == HashKey::kSrcIpPort) {
    bytes[16] = static_cast<uint8_t>(client.port() >> 8);
    bytes[17] = static_cast<uint8_t>(client.port());
    len = 18;
  }
  return balancer::StableHash64(absl::MakeConstSpan(bytes.data(), len));
}

absl::StatusOr<std::shared_ptr<const BackendSnapshot>> BackendSnapshot::Build(
    std::vector<BackendSpec> backends, std::vector<bool> healthy, const Options& options,
    std::vector<uint32_t> table_weights) {
  if (!healthy.empty() && healthy.size() != backends.size()) {
    return absl::InvalidArgumentError("health list does not match the backend list");
  }
  if (table_weights.empty()) {
    for (const BackendSpec& b : backends) table_weights.push_back(b.weight);
  } else if (table_weights.size() != backends.size()) {
    return absl::InvalidArgumentError("table weights do not match the backend list");
  }
  std::shared_ptr<BackendSnapshot> snapshot(new BackendSnapshot());
  // Seeded by host, not by the address as written (host_key.h): every service
  // listing the same hosts, with any ports, builds the same tables.
  const std::vector<std::string> keys = HostKeys(backends);
  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  snapshot->host_rank_.resize(backends.size());
  for (uint32_t r = 0; r < order.size(); ++r) snapshot->host_rank_[order[r]] = r;
  for (const bool backup : {false, true}) {
    Table& table = backup ? snapshot->backups_ : snapshot->primaries_;
    std::vector<balancer::MaglevTable::Backend> members;
    for (uint32_t i = 0; i < backends.size(); ++i) {
      if (backends[i].backup != backup) continue;
      members.push_back({.name = keys[i], .weight = table_weights[i]});
      table.members.push_back(i);
    }
    // All primaries, all backups, or none at all (an SNI front service whose
    // unmatched clients are refused): Pick() then finds nothing.
    if (members.empty()) continue;
    absl::StatusOr<balancer::MaglevTable> maglev =
        balancer::MaglevTable::Build(members, {.table_size = options.maglev_table_size});
    if (!maglev.ok()) return maglev.status();
    table.maglev = std::make_shared<const balancer::MaglevTable>(*std::move(maglev));
  }
  snapshot->backends_ = std::move(backends);
  snapshot->table_weights_ = std::move(table_weights);
  if (healthy.empty()) healthy.assign(snapshot->backends_.size(), true);
  return snapshot->WithHealth(healthy);
}

std::shared_ptr<const BackendSnapshot> BackendSnapshot::WithHealth(
    const std::vector<bool>& healthy) const {
  return With(healthy, admin_);
}

std::shared_ptr<const BackendSnapshot> BackendSnapshot::WithAdmin(
    const std::vector<AdminState>& admin) const {
  return With(up_, admin);
}

std::shared_ptr<const BackendSnapshot> BackendSnapshot::With(std::vector<bool> up,
                                                             std::vector<AdminState> admin) const {
  std::shared_ptr<BackendSnapshot> next(new BackendSnapshot());
  next->backends_ = backends_;
  next->table_weights_ = table_weights_;
  next->primaries_ = primaries_;
  next->backups_ = backups_;
  next->host_rank_ = host_rank_;
  next->up_ = std::move(up);
  next->up_.resize(backends_.size(), false);
  next->admin_ = std::move(admin);
  next->admin_.resize(backends_.size(), AdminState::kReady);
  const auto ready = [&](uint32_t i) {
    return next->up_[i] && next->admin_[i] == AdminState::kReady;
  };
  for (uint32_t i : primaries_.members) {
    if (ready(i)) next->healthy_.push_back(i);
  }
  if (next->healthy_.empty()) {
    next->serving_backups_ = !backups_.members.empty();
    for (uint32_t i : backups_.members) {
      if (ready(i)) next->healthy_.push_back(i);
    }
  }
  next->walk_ = next->healthy_;
  std::sort(next->walk_.begin(), next->walk_.end(),
            [&](uint32_t a, uint32_t b) { return host_rank_[a] < host_rank_[b]; });
  return next;
}

int BackendSnapshot::Pick(uint64_t key, absl::Span<const uint32_t> tried) const {
  if (healthy_.empty()) return kNone;
  const auto usable = [&](uint32_t backend) {
    return up_[backend] && admin_[backend] == AdminState::kReady &&
           std::find(tried.begin(), tried.end(), backend) == tried.end();
  };
  // Backups only while no primary takes clients: then every healthy_ is a backup.
  const Table& table = serving_backups_ ? backups_ : primaries_;
  // Re-mixed keys land on each backend in proportion to its table share, so
  // the clients of a down backend spread by weight. Deterministic: every l4lb
  // instance with the same backends and health picks the same.
  constexpr uint64_t kMixedTries = 32;
  for (uint64_t i = 0; i < kMixedTries; ++i) {
    const uint32_t backend =
        table.members[table.maglev->Pick(i == 0 ? key : balancer::Mix64(key + i))];
    if (usable(backend)) return static_cast<int>(backend);
  }
  // Most backends down or tried: walk the healthy ones from a key-chosen start,
  // in host order (not list order), so instances agree here too.
  const size_t start = key % walk_.size();
  for (size_t step = 0; step < walk_.size(); ++step) {
    const uint32_t backend = walk_[(start + step) % walk_.size()];
    if (usable(backend)) return static_cast<int>(backend);
  }
  return kNone;
}

void SnapshotPublisher::Publish(std::shared_ptr<const BackendSnapshot> snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(snapshot);
  generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const BackendSnapshot> SnapshotPublisher::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

}  // namespace l4lb::backend
