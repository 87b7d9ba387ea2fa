#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace l4lb {

// ParseCommandLine sets gflags' flags from argv with gflags' own syntax
// (--name=value, --name value, -name=value, --bool, --nobool; "--" ends the
// flags), but returns the first mistake instead of acting on it: gflags'
// ParseCommandLineFlags prints "ERROR: ..." and exits 1 on an unknown flag, a
// missing value or a bad one, and l4lb promises exit 2 with one line naming the
// flag. The message starts with the flag (`--threads: "many": want an integer`);
// the caller prefixes "l4lb: " and exits 2.
//
// Help flags (--help, --version, --helpon=...) are flags like the others: the
// caller runs HandleHelpFlags() after a successful parse. Values are
// checked by gflags itself (gflags::SetCommandLineOption), so what is accepted
// is exactly what ParseCommandLineFlags would accept. --flagfile=PATH is read
// here (a flag per line, "#" comments; a mistake in it is "PATH:LINE: --flag:
// ..."). A positional argument is a mistake too: l4lb takes none.
//
// Thread safety: call once from main, before any thread reads a flag.
absl::Status ParseCommandLine(int argc, char** argv);

// HandleHelpFlags answers the flags that ask about l4lb itself, and exits 0:
//   --help      HelpText() on stdout;
//   --helpfull  gflags' listing of every flag, glog's and gflags' own too;
//   --version   `version_text` on stdout (l4lb/version.h).
// The rarer gflags help flags (--helpshort, --helpon=FILE, --helpmatch=S,
// --helpxml) are left to gflags, which prints its listing and exits 1. Returns
// when no help flag is set.
void HandleHelpFlags(absl::string_view version_text);

// The usage message (gflags::SetUsageMessage) and every flag defined under l4lb/,
// by name, each with its value and default:
//
//   --connect_timeout=VALUE
//                       How long a backend connect may take before the next
//                       backend is tried (e.g. 500ms, 2s).
//                       Default: 2s.
//
// That layout (an option line indented 2, its text indented 22) is what help2man
// turns into the man page's OPTIONS (tools/package.sh). Lines fit 80 columns.
std::string HelpText();

// A duration flag's value: "0" or a duration of 0 or more ("500ms", "2s", "5m").
// The error is "--FLAG: \"VALUE\": want a duration like 500ms, 2s or 5m".
absl::StatusOr<absl::Duration> DurationFromFlag(absl::string_view flag, absl::string_view value);

}  // namespace l4lb
