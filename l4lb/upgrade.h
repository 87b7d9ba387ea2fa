#pragma once

// A live upgrade started by a signal (binary-only, like main.cc): SIGUSR2
// (systemctl reload, dist/systemd/l4lb.service) makes l4lb start the binary
// it was started from, as that file is now (the package manager has replaced
// it), with the same arguments; with --takeover that process takes everything
// over (takeover_flags.h) and this one exits once it has.

#include <sys/types.h>

#include "absl/status/statusor.h"

namespace l4lb {

// At the start of main: the executable's path (/proc/self/exe, resolved now:
// later it would name the replaced file) and the arguments.
void RememberCommandLine(int argc, char** argv);

// The successor, started with a clean signal mask and default dispositions
// (main blocks the service signals, which a spawned child would inherit).
absl::StatusOr<pid_t> SpawnSuccessor();

}  // namespace l4lb
