#pragma once

// --announce and --withdraw_delay (README "Several instances behind ECMP"),
// binary-only like main.cc.

#include <memory>

#include "absl/status/statusor.h"

#include "l4lb/announce/announcer.h"

namespace l4lb {

// nullptr without --announce. Else the Announcer, which has already removed a
// VIP left behind by an earlier run (announce/announcer.h). An error's message
// is "--FLAG: what is wrong".
// `inherit`: a live upgrade takes the running l4lb's route over (Options::inherit).
absl::StatusOr<std::unique_ptr<announce::Announcer>> AnnouncerFromFlags(bool inherit = false);

}  // namespace l4lb
