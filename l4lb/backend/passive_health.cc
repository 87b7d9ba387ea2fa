#include "l4lb/backend/passive_health.h"

#include <algorithm>

namespace l4lb::backend {

PassiveHealth::PassiveHealth(size_t backends)
    : backends_(std::make_unique<PerBackend[]>(backends)), size_(backends) {}

void PassiveHealth::Report(size_t backend, uint64_t client_key) {
  if (backend >= size_) return;
  PerBackend& b = backends_[backend];
  std::lock_guard<std::mutex> lock(b.mu);
  if (b.reports < UINT32_MAX) ++b.reports;
  b.pending.store(true, std::memory_order_release);
  if (b.clients.size() >= kMaxClients ||
      std::find(b.clients.begin(), b.clients.end(), client_key) != b.clients.end()) {
    return;
  }
  b.clients.push_back(client_key);
  ++b.failures;
}

PassiveHealth::Taken PassiveHealth::Take(size_t backend) {
  if (backend >= size_) return {};
  PerBackend& b = backends_[backend];
  // A report in progress that this misses is taken at the next wakeup.
  if (!b.pending.load(std::memory_order_acquire)) return {};
  std::lock_guard<std::mutex> lock(b.mu);
  const Taken taken{.failures = b.failures, .reports = b.reports};
  b.failures = 0;
  b.reports = 0;
  b.pending.store(false, std::memory_order_relaxed);
  return taken;
}

void PassiveHealth::NewWindow(size_t backend) {
  if (backend >= size_) return;
  PerBackend& b = backends_[backend];
  std::lock_guard<std::mutex> lock(b.mu);
  b.clients.clear();
}

}  // namespace l4lb::backend
