#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace l4lb {

// Version() is what this l4lb is: l4lb/version.bzl's release ("0.14.0"), or, for a
// build stamped with its commit (tools/package.sh: bazel --stamp with
// tools/workspace_status.sh), "0.14.0+git20250501T101500.83071d4" (".modified"
// appended when the tree had uncommitted changes). A valid Debian version: the
// package is named after it, and stamped builds sort by commit time.
absl::string_view Version();

// What --version prints: "l4lb VERSION" on the first line (the form help2man
// reads for the man page), then the commit ("commit unknown" when unstamped) and
// how it was built (compiler, assertions, sanitizers). Ends with a newline.
std::string VersionText();

}  // namespace l4lb
