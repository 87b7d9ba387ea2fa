#include "l4lb/command_line.h"

#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gflags/gflags.h"

namespace l4lb {
namespace {

// Flag files may name more flag files; this bounds a file that names itself.
constexpr int kMaxFlagfileDepth = 8;

absl::Status Mistake(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", what));
}

absl::Status Unexpected(absl::string_view arg) {
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected argument \"", arg, "\" (flags look like --listen=...)"));
}

// What a value of gflags' `type` looks like, for the message about a bad one.
std::string Want(const std::string& type) {
  if (type == "bool") return "want true or false";
  if (type == "double") return "want a number";
  if (type == "string") return "want a string";
  return "want an integer";  // int32, uint32, int64, uint64
}

absl::Status ParseArgs(const std::vector<std::string>& args, bool in_file, int depth);

// gflags' --flagfile, read here rather than by gflags, which exits 1 on a file
// it cannot open and ignores the mistakes in one: a flag per line, "#" comments.
absl::Status ParseFlagfile(const std::string& path, int depth) {
  if (depth >= kMaxFlagfileDepth) {
    return Mistake("flagfile", absl::StrCat("\"", path, "\": more than ", kMaxFlagfileDepth,
                                            " flag files deep (does one name itself?)"));
  }
  std::ifstream in(path);
  if (!in) return Mistake("flagfile", absl::StrCat("\"", path, "\": ", strerror(errno)));
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const absl::string_view flag = absl::StripAsciiWhitespace(line);
    if (flag.empty() || flag[0] == '#') continue;
    if (absl::Status s = ParseArgs({std::string(flag)}, /*in_file=*/true, depth + 1); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

// `in_file`: a flag file's line, where a value must follow "=" and a line that
// is not a flag (gflags: a program-name filter) is refused as well.
absl::Status ParseArgs(const std::vector<std::string>& args, bool in_file, int depth) {
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--" && !in_file) {
      if (i + 1 < args.size()) return Unexpected(args[i + 1]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') return Unexpected(arg);
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
      } else if (!in_file && i + 1 < args.size() && !absl::StartsWith(args[i + 1], "-")) {
        value = args[++i];  // "--listen 0.0.0.0:80", as gflags allows
      } else {
        return Mistake(name, absl::StrCat("missing its value (--", name, "=VALUE)"));
      }
    }
    if (name == "flagfile") {
      if (absl::Status s = ParseFlagfile(value, depth); !s.ok()) return s;
      continue;
    }
    // SetCommandLineOption answers "" for a value gflags cannot parse.
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      return Mistake(name, absl::StrCat("\"", value, "\": ", Want(info.type)));
    }
  }
  return absl::OkStatus();
}

// HelpText's columns: option lines at kOptionIndent, their text at kTextIndent
// (help2man wants 20 or more), wrapped before kWidth.
constexpr size_t kOptionIndent = 2;
constexpr size_t kTextIndent = 22;
constexpr size_t kWidth = 80;

// `text` as lines of at most kWidth columns, each starting with `indent` spaces.
// A word longer than a line gets a line of its own.
std::string Wrap(absl::string_view text, size_t indent_size) {
  const std::string indent(indent_size, ' ');
  std::string out;
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipWhitespace())) {
    if (!line.empty() && indent_size + line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(&out, indent, line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(&out, indent, line, "\n");
  return out;
}

// "--threads=N", "--access_log, --noaccess_log", "--listen=VALUE".
std::string Synopsis(const gflags::CommandLineFlagInfo& flag) {
  if (flag.type == "bool") return absl::StrCat("--", flag.name, ", --no", flag.name);
  if (flag.type == "string") return absl::StrCat("--", flag.name, "=VALUE");
  if (flag.type == "double") return absl::StrCat("--", flag.name, "=NUMBER");
  return absl::StrCat("--", flag.name, "=N");  // int32, uint32, int64, uint64
}

bool FlagIsTrue(const char* name) {
  std::string value;
  return gflags::GetCommandLineOption(name, &value) && value == "true";
}

}  // namespace

absl::Status ParseCommandLine(int argc, char** argv) {
  return ParseArgs(std::vector<std::string>(argv + 1, argv + argc), /*in_file=*/false, 0);
}

std::string HelpText() {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  // l4lb's own: glog's and gflags' flags are defined in their libraries' sources.
  flags.erase(std::remove_if(flags.begin(), flags.end(),
                             [](const gflags::CommandLineFlagInfo& flag) {
                               return !absl::StartsWith(flag.filename, "l4lb/");
                             }),
              flags.end());
  std::sort(flags.begin(), flags.end(),
            [](const gflags::CommandLineFlagInfo& a, const gflags::CommandLineFlagInfo& b) {
              return a.name < b.name;
            });
  std::string out = absl::StrCat(gflags::ProgramUsage(), "\n\nFlags:\n");
  for (const gflags::CommandLineFlagInfo& flag : flags) {
    absl::StrAppend(&out, std::string(kOptionIndent, ' '), Synopsis(flag), "\n",
                    Wrap(flag.description, kTextIndent));
    // A line of its own: scripts find it whole (tests/package_test reads the drain's).
    if (!flag.default_value.empty()) {
      absl::StrAppend(&out, Wrap(absl::StrCat("Default: ", flag.default_value, "."), kTextIndent));
    }
  }
  absl::StrAppend(&out, "\n",
                  Wrap("Logging (glog): --v=N, --vmodule=FILE=N,..., --minloglevel=N. l4lb logs "
                       "to stderr (the journal under systemd); --nologtostderr --log_dir=DIR "
                       "writes files instead. Every flag, glog's and gflags' own too: l4lb "
                       "--helpfull.",
                       0));
  return out;
}

void HandleHelpFlags(absl::string_view version_text) {
  if (FlagIsTrue("help")) {
    fputs(HelpText().c_str(), stdout);
  } else if (FlagIsTrue("helpfull")) {
    gflags::ShowUsageWithFlagsRestrict(gflags::ProgramInvocationShortName(), "");
  } else if (FlagIsTrue("version")) {
    fwrite(version_text.data(), 1, version_text.size(), stdout);
  } else {
    gflags::HandleCommandLineHelpFlags();  // exits if one of the rarer help flags is set
    return;
  }
  exit(fflush(stdout) == 0 ? 0 : 1);
}

absl::StatusOr<absl::Duration> DurationFromFlag(absl::string_view flag, absl::string_view value) {
  absl::Duration d;
  if (value == "0") return absl::ZeroDuration();
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", value, "\": want a duration like 500ms, 2s or 5m"));
  }
  return d;
}

}  // namespace l4lb
