#pragma once

// The access-control flags (README "Access control"), binary-only like main.cc:
// they define the admission settings of the one service the command line
// describes, and --max_connections, the process-wide bound.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "l4lb/admission/admission.h"

namespace l4lb {

// The flags' settings for the flag-defined service. An error's message is
// "--FLAG: what is wrong".
absl::StatusOr<admission::AdmissionOptions> AdmissionFromFlags();

// The flags above that describe one service (refused with --config, where each
// service sets them in the file).
absl::Span<const char* const> AdmissionServiceFlags();

// --max_connections: the process-wide bound on live TCP connections; 0 (not
// set): what the open-files limit allows after `reserved_fds`
// (admission::ConnectionBudget; read here, at start-up). Logged.
uint32_t MaxConnectionsFromFlag(uint64_t reserved_fds, bool udp_services);

}  // namespace l4lb
