#pragma once

#include "absl/status/status.h"

namespace l4lb {

// ParseCommandLine sets gflags' flags from argv with gflags' own syntax
// (--name=value, --name value, -name=value, --bool, --nobool; "--" ends the
// flags), but returns the first mistake instead of acting on it: gflags'
// ParseCommandLineFlags prints "ERROR: ..." and exits 1 on an unknown flag, a
// missing value or a bad one, and l4lb promises exit 2 with one line naming the
// flag. The message starts with the flag (`--threads: "many": want an integer`);
// the caller prefixes "l4lb: " and exits 2.
//
// Help flags (--help, --helpon=...) are flags like the others: the caller runs
// gflags::HandleCommandLineHelpFlags() after a successful parse. Values are
// checked by gflags itself (gflags::SetCommandLineOption), so what is accepted
// is exactly what ParseCommandLineFlags would accept. --flagfile=PATH is read
// here (a flag per line, "#" comments; a mistake in it is "PATH:LINE: --flag:
// ..."). A positional argument is a mistake too: l4lb takes none.
//
// Thread safety: call once from main, before any thread reads a flag.
absl::Status ParseCommandLine(int argc, char** argv);

}  // namespace l4lb
