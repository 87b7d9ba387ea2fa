#pragma once

// The --health_* flags (the health checks of the service the flags describe),
// binary-only like main.cc.

#include "absl/status/statusor.h"

#include "health/checker.h"

namespace l4lb {

// The probe, its timing and passive checks from the flags. An error's message
// is "--FLAG: what is wrong" (exit 2, as main does for every flag).
absl::StatusOr<health::HealthOptions> HealthFromFlags();

}  // namespace l4lb
