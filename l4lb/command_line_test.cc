#include "l4lb/command_line.h"

#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "gtest/gtest.h"

DEFINE_string(name, "default", "a string flag");
DEFINE_int32(count, 1, "an int32 flag");
DEFINE_bool(enabled, false, "a bool flag");

namespace l4lb {
namespace {

absl::Status Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "l4lb");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), argv.data());
}

class ParseCommandLineTest : public ::testing::Test {
 protected:
  gflags::FlagSaver saver_;  // each test starts from the defaults
};

TEST_F(ParseCommandLineTest, SetsFlagsInEveryGflagsSpelling) {
  ASSERT_TRUE(Parse({"--name=a", "-count=3", "--enabled"}).ok());
  EXPECT_EQ(FLAGS_name, "a");
  EXPECT_EQ(FLAGS_count, 3);
  EXPECT_TRUE(FLAGS_enabled);
  ASSERT_TRUE(Parse({"--name", "b", "--count", "4", "--noenabled", "--"}).ok());
  EXPECT_EQ(FLAGS_name, "b");
  EXPECT_EQ(FLAGS_count, 4);
  EXPECT_FALSE(FLAGS_enabled);
  ASSERT_TRUE(Parse({"--name=", "--enabled=true"}).ok());
  EXPECT_EQ(FLAGS_name, "");
  EXPECT_TRUE(FLAGS_enabled);
  gflags::CommandLineFlagInfo info;
  ASSERT_TRUE(gflags::GetCommandLineFlagInfo("name", &info));
  EXPECT_FALSE(info.is_default) << "main refuses per-service flags with --config by this";
}

TEST_F(ParseCommandLineTest, EachMistakeNamesTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : {
           Case{{"--nmae=a"}, "--nmae: unknown flag (l4lb --help lists them)"},
           Case{{"--noname"}, "--noname: unknown flag (l4lb --help lists them)"},
           Case{{"--noenabled=true"}, "--noenabled: unknown flag (l4lb --help lists them)"},
           Case{{"--name"}, "--name: missing its value (--name=VALUE)"},
           Case{{"--count", "--enabled"}, "--count: missing its value (--count=VALUE)"},
           Case{{"--enabled=maybe"}, "--enabled: \"maybe\": want true or false"},
           Case{{"--count=many"}, "--count: \"many\": want an integer"},
           Case{{"--count=99999999999"}, "--count: \"99999999999\": want an integer"},
           Case{{"stray"}, "unexpected argument \"stray\" (flags look like --listen=...)"},
           Case{{"--", "stray"}, "unexpected argument \"stray\" (flags look like --listen=...)"},
       }) {
    const absl::Status status = Parse(c.args);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
  }
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const char* dir = getenv("TEST_TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST_F(ParseCommandLineTest, FlagfileLinesAreFlagsAndTheirMistakesSayWhere) {
  const std::string good = WriteFile("good.flags", "# comment\n\n  --name=from_file\n--enabled\n");
  ASSERT_TRUE(Parse({"--flagfile=" + good, "--count=2"}).ok());
  EXPECT_EQ(FLAGS_name, "from_file");
  EXPECT_TRUE(FLAGS_enabled);
  EXPECT_EQ(FLAGS_count, 2);

  const std::string bad = WriteFile("bad.flags", "--name=x\n--cuont=3\n");
  EXPECT_EQ(Parse({"--flagfile=" + bad}).message(),
            bad + ":2: --cuont: unknown flag (l4lb --help lists them)");
  const std::string spaced = WriteFile("spaced.flags", "--count\n3\n");
  EXPECT_EQ(Parse({"--flagfile=" + spaced}).message(),
            spaced + ":1: --count: missing its value (--count=VALUE)");
  EXPECT_EQ(Parse({"--flagfile=/nonexistent/l4lb.flags"}).message(),
            "--flagfile: \"/nonexistent/l4lb.flags\": No such file or directory");
  const std::string self = WriteFile("self.flags", "");
  std::ofstream(self) << "--flagfile=" << self << "\n";
  EXPECT_NE(Parse({"--flagfile=" + self}).message().find("flag files deep"), std::string::npos);
}

// --help's layout is what help2man makes the man page's entries of: an option
// line indented 2, its text indented 22 (help2man wants 20 or more), the default
// on a line of its own, every line within 80 columns; l4lb's flags only.
TEST(HelpTextTest, ListsOurFlagsInHelp2mansLayout) {
  gflags::SetUsageMessage("Usage: l4lb [FLAG]...");
  const std::string text = HelpText();
  EXPECT_TRUE(absl::StartsWith(text, "Usage: l4lb [FLAG]...\n\nFlags:\n")) << text;
  const std::string indent(22, ' ');
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("\n  --count=N\n", indent, "an int32 flag\n", indent, "Default: 1.\n")))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "\n  --enabled, --noenabled\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "\n  --name=VALUE\n")) << text;
  EXPECT_FALSE(absl::StrContains(text, "--flagfile=")) << "gflags' own flags are --helpfull's";
  EXPECT_FALSE(absl::StrContains(text, "--logtostderr")) << "glog's flags are --helpfull's";
  EXPECT_LT(text.find("--count="), text.find("--enabled")) << "flags go by name";
  EXPECT_LT(text.find("--enabled"), text.find("--name="));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

TEST(CommandLineTest, DurationFromFlagTakesZeroAndDurationsAndNamesTheFlag) {
  EXPECT_EQ(*DurationFromFlag("idle_timeout", "0"), absl::ZeroDuration());
  EXPECT_EQ(*DurationFromFlag("idle_timeout", "1m30s"), absl::Seconds(90));
  for (const char* bad : {"soon", "-1s", "", "10"}) {
    const absl::StatusOr<absl::Duration> d = DurationFromFlag("idle_timeout", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().message(),
              absl::StrCat("--idle_timeout: \"", bad, "\": want a duration like 500ms, 2s or 5m"));
  }
}

}  // namespace
}  // namespace l4lb
