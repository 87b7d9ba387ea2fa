#include "l4lb/command_line.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gflags/gflags.h"

namespace l4lb {
namespace {

absl::Status Mistake(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", what));
}

// What a value of gflags' `type` looks like, for the message about a bad one.
std::string Want(const std::string& type) {
  if (type == "bool") return "want true or false";
  if (type == "double") return "want a number";
  if (type == "string") return "want a string";
  return "want an integer";  // int32, uint32, int64, uint64
}

}  // namespace

absl::Status ParseCommandLine(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      if (i + 1 < argc) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unexpected argument \"", argv[i + 1], "\" (flags look like --listen=...)"));
      }
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\" (flags look like --listen=...)"));
    }
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    const size_t eq = arg.find('=');
    std::string name(arg.substr(0, eq));
    const bool has_value = eq != absl::string_view::npos;
    std::string value = has_value ? std::string(arg.substr(eq + 1)) : "";

    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      // --noNAME is gflags' spelling of --NAME=false, for booleans only.
      gflags::CommandLineFlagInfo negated;
      if (!has_value && absl::StartsWith(name, "no") &&
          gflags::GetCommandLineFlagInfo(name.c_str() + 2, &negated) && negated.type == "bool") {
        name = negated.name;
        info = negated;
        value = "false";
      } else {
        return Mistake(name, "unknown flag (l4lb --help lists them)");
      }
    } else if (!has_value) {
      if (info.type == "bool") {
        value = "true";
      } else if (i + 1 < argc && argv[i + 1][0] != '-') {
        value = argv[++i];  // "--listen 0.0.0.0:80", as gflags allows
      } else {
        return Mistake(name, absl::StrCat("missing its value (--", name, "=VALUE)"));
      }
    }
    // SetCommandLineOption answers "" for a value gflags cannot parse, and also
    // runs --flagfile and --fromenv like the parser does.
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      return Mistake(name, absl::StrCat("\"", value, "\": ", Want(info.type)));
    }
  }
  return absl::OkStatus();
}

}  // namespace l4lb
