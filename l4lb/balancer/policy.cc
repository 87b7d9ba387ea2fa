#include "l4lb/balancer/policy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace l4lb::balancer {
namespace {

bool Tried(absl::Span<const uint32_t> tried, uint32_t backend) {
  return std::find(tried.begin(), tried.end(), backend) != tried.end();
}

}  // namespace

absl::StatusOr<Balance> ParseBalance(absl::string_view text) {
  if (text == "maglev") return Balance::kMaglev;
  if (text == "maglev_bounded") return Balance::kMaglevBounded;
  if (text == "least_conn") return Balance::kLeastConn;
  if (text == "round_robin") return Balance::kRoundRobin;
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text, "\": want maglev, maglev_bounded, least_conn or round_robin"));
}

const char* BalanceName(Balance balance) {
  switch (balance) {
    case Balance::kMaglev:
      return "maglev";
    case Balance::kMaglevBounded:
      return "maglev_bounded";
    case Balance::kLeastConn:
      return "least_conn";
    case Balance::kRoundRobin:
      return "round_robin";
  }
  return "unknown";
}

Picker::Picker(Balance balance, double balance_factor, uint32_t seed)
    : balance_(balance), factor_(balance_factor), rotation_(seed) {}

int Picker::Pick(const backend::BackendSnapshot& snapshot, uint64_t key,
                 absl::Span<const uint32_t> tried, LoadFn load) {
  switch (balance_) {
    case Balance::kMaglev:
      return snapshot.Pick(key, tried);
    case Balance::kMaglevBounded:
      return Bounded(snapshot, key, tried, load);
    case Balance::kLeastConn:
      return LeastConn(snapshot, tried, load);
    case Balance::kRoundRobin:
      return RoundRobin(snapshot, tried);
  }
  return backend::BackendSnapshot::kNone;
}

int Picker::Bounded(const backend::BackendSnapshot& snapshot, uint64_t key,
                    absl::Span<const uint32_t> tried, LoadFn load) {
  const std::vector<backend::BackendSpec>& backends = snapshot.backends();
  uint64_t total = 0;
  uint64_t weights = 0;
  for (uint32_t b : snapshot.pickable()) {
    if (Tried(tried, b)) continue;
    total += load(b);
    weights += backends[b].weight;
  }
  if (weights == 0) return backend::BackendSnapshot::kNone;
  // The client's preference order is Maglev's pick, then the picks with the
  // earlier ones excluded (re-mixed keys: deterministic, spread by weight).
  candidates_.assign(tried.begin(), tried.end());
  int first = backend::BackendSnapshot::kNone;
  for (;;) {
    const int b = snapshot.Pick(key, candidates_);
    if (b == backend::BackendSnapshot::kNone) break;
    if (first == backend::BackendSnapshot::kNone) first = b;
    // Counting the new connection: (total + 1) x share x factor, rounded up,
    // so an idle farm's first clients always get their own backend.
    const double bound = std::ceil(factor_ * static_cast<double>(total + 1) *
                                   backends[b].weight / static_cast<double>(weights));
    if (static_cast<double>(load(b) + 1) <= bound) return b;
    candidates_.push_back(static_cast<uint32_t>(b));
  }
  return first;  // every one is at its bound (it cannot be, with factor > 1): no worse
}

int Picker::LeastConn(const backend::BackendSnapshot& snapshot, absl::Span<const uint32_t> tried,
                      LoadFn load) {
  const std::vector<uint32_t>& pickable = snapshot.pickable();
  const std::vector<backend::BackendSpec>& backends = snapshot.backends();
  if (pickable.empty()) return backend::BackendSnapshot::kNone;
  // Ties go round: the scan starts one further at each pick, and each worker
  // starts elsewhere, so a burst of accepts on every worker does not land on
  // the one backend that was least loaded a moment ago.
  const size_t start = rotation_++ % pickable.size();
  int best = backend::BackendSnapshot::kNone;
  uint64_t best_load = 0;
  for (size_t i = 0; i < pickable.size(); ++i) {
    const uint32_t b = pickable[(start + i) % pickable.size()];
    if (Tried(tried, b)) continue;
    const uint64_t l = load(b);
    // l / w < best_load / best_w, without division.
    if (best == backend::BackendSnapshot::kNone ||
        l * backends[best].weight < best_load * backends[b].weight) {
      best = static_cast<int>(b);
      best_load = l;
    }
  }
  return best;
}

int Picker::RoundRobin(const backend::BackendSnapshot& snapshot,
                       absl::Span<const uint32_t> tried) {
  const std::vector<backend::BackendSpec>& backends = snapshot.backends();
  if (current_.size() != backends.size()) current_.assign(backends.size(), 0);
  // nginx's smooth weighted round robin: each backend earns its weight per
  // pick, the richest is chosen and pays the total. Weights 5,1,1 give
  // a a b a c a a, not a a a a a b c.
  int best = backend::BackendSnapshot::kNone;
  int64_t total = 0;
  for (uint32_t b : snapshot.pickable()) {
    if (Tried(tried, b)) continue;
    current_[b] += backends[b].weight;
    total += backends[b].weight;
    if (best == backend::BackendSnapshot::kNone || current_[b] > current_[best]) {
      best = static_cast<int>(b);
    }
  }
  if (best != backend::BackendSnapshot::kNone) current_[best] -= total;
  return best;
}

}  // namespace l4lb::balancer
