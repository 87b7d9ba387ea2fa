#include "l4lb/backend/snapshot.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "l4lb/balancer/flow_hash.h"

namespace l4lb::backend {

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
    std::vector<BackendSpec> backends, std::vector<bool> healthy, const Options& options) {
  if (!healthy.empty() && healthy.size() != backends.size()) {
    return absl::InvalidArgumentError("health list does not match the backend list");
  }
  std::shared_ptr<BackendSnapshot> snapshot(new BackendSnapshot());
  std::vector<balancer::MaglevTable::Backend> table_backends;
  for (uint32_t i = 0; i < backends.size(); ++i) {
    if (!healthy.empty() && !healthy[i]) continue;
    snapshot->healthy_.push_back(i);
    table_backends.push_back({.name = backends[i].name, .weight = backends[i].weight});
  }
  if (!table_backends.empty()) {
    absl::StatusOr<balancer::MaglevTable> table =
        balancer::MaglevTable::Build(table_backends, {.table_size = options.maglev_table_size});
    if (!table.ok()) return table.status();
    snapshot->table_.emplace(*std::move(table));
  }
  snapshot->backends_ = std::move(backends);
  return snapshot;
}

int BackendSnapshot::Pick(uint64_t key, uint32_t attempt, absl::Span<const uint32_t> tried) const {
  if (!table_.has_value()) return kNone;
  const auto was_tried = [&](uint32_t backend) {
    return std::find(tried.begin(), tried.end(), backend) != tried.end();
  };
  const uint64_t attempt_key = attempt == 0 ? key : balancer::Mix64(key + attempt);
  const uint32_t first = table_->Pick(attempt_key);
  // The table spreads retries; when it lands on a tried backend, walk on to the
  // next untried healthy one (deterministic, so instances still agree).
  for (size_t step = 0; step < healthy_.size(); ++step) {
    const uint32_t backend = healthy_[(first + step) % healthy_.size()];
    if (!was_tried(backend)) return static_cast<int>(backend);
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
