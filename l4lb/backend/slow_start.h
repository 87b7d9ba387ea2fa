#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"

#include "l4lb/backend/backend_set.h"

namespace l4lb::backend {

// SlowStart is the ramp of a backend that has just begun taking clients (UP
// after DOWN, enabled from MAINT, added by a reload): its share of the Maglev
// table starts at a tenth of its weight's and grows in kSteps equal steps to the
// full weight once `duration` has passed (HAProxy's `slowstart`, in steps so
// that each one is one table rebuild). Step k (0..kSteps) of a ramp that began
// `elapsed` ago is floor(elapsed * kSteps / duration); its weight is
// (0.1 + 0.9 k / kSteps) of the configured one: 10 %, 19 %, ..., 91 %, 100 %.
//
// Pure arithmetic with the time given by the caller (ServiceControl runs the
// ramps, control.h): tests drive it with any clock. Weights are integers, so a
// weight-1 backend cannot be given a tenth: while a ramp runs every weight of
// the service is scaled up by the same factor (as large as kMaxWeight allows),
// which leaves the others' table exactly as it was (Maglev's apportionment
// depends only on weight ratios) and gives the ramping one its fraction.
//
// Thread safety: immutable; any thread.
class SlowStart {
 public:
  static constexpr int kSteps = 10;

  // Zero: off (every backend takes its full weight at once).
  explicit SlowStart(absl::Duration duration) : duration_(duration) {}

  bool enabled() const { return duration_ > absl::ZeroDuration(); }
  absl::Duration duration() const { return duration_; }

  // 0 .. kSteps; kSteps (full weight) once `duration` has passed, or when off.
  int Step(absl::Duration elapsed) const;
  // The share of the configured weight at `step`: 0.1 .. 1.
  static double Fraction(int step) { return 0.1 + 0.9 * step / kSteps; }
  // How long after the ramp began step `Step(elapsed) + 1` starts; infinite
  // once the ramp is over.
  absl::Duration NextStepAt(absl::Duration elapsed) const;

  // The table weight of each backend, given each one's step (kSteps: not
  // ramping). All kSteps: exactly the configured weights.
  static std::vector<uint32_t> TableWeights(absl::Span<const BackendSpec> backends,
                                            absl::Span<const int> steps);

 private:
  absl::Duration duration_;
};

}  // namespace l4lb::backend
