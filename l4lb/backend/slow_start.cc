#include "l4lb/backend/slow_start.h"

#include <algorithm>
#include <cmath>

namespace l4lb::backend {

int SlowStart::Step(absl::Duration elapsed) const {
  if (!enabled() || elapsed >= duration_) return kSteps;
  if (elapsed <= absl::ZeroDuration()) return 0;
  // Integer arithmetic in nanoseconds: no step lands early through rounding.
  const int64_t ns = absl::ToInt64Nanoseconds(elapsed);
  const int64_t total = absl::ToInt64Nanoseconds(duration_);
  return static_cast<int>(std::min<__int128>(kSteps, __int128{ns} * kSteps / total));
}

absl::Duration SlowStart::NextStepAt(absl::Duration elapsed) const {
  const int step = Step(elapsed);
  if (step >= kSteps) return absl::InfiniteDuration();
  // The first nanosecond at which Step() gives step + 1: ceil(d * (step+1) / kSteps).
  const __int128 total = absl::ToInt64Nanoseconds(duration_);
  const __int128 at = (total * (step + 1) + kSteps - 1) / kSteps;
  return absl::Nanoseconds(static_cast<int64_t>(at));
}

std::vector<uint32_t> SlowStart::TableWeights(absl::Span<const BackendSpec> backends,
                                              absl::Span<const int> steps) {
  std::vector<uint32_t> out;
  uint32_t heaviest = 1;
  bool ramping = false;
  for (size_t i = 0; i < backends.size(); ++i) {
    heaviest = std::max(heaviest, backends[i].weight);
    ramping |= i < steps.size() && steps[i] < kSteps;
  }
  const uint32_t scale = ramping ? std::max<uint32_t>(1, kMaxWeight / heaviest) : 1;
  for (size_t i = 0; i < backends.size(); ++i) {
    const uint32_t full = backends[i].weight * scale;
    if (i >= steps.size() || steps[i] >= kSteps) {
      out.push_back(full);
      continue;
    }
    const double ramped = std::round(full * Fraction(steps[i]));
    out.push_back(std::clamp<uint32_t>(static_cast<uint32_t>(ramped), 1, full));
  }
  return out;
}

}  // namespace l4lb::backend
