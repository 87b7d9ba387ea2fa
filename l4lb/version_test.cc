#include "l4lb/version.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace l4lb {
namespace {

// Tests are built unstamped: the release alone, and the commit says so.
TEST(VersionTest, UnstampedBuildIsTheReleaseWithCommitUnknown) {
  const std::vector<std::string> parts = absl::StrSplit(Version(), '.');
  ASSERT_EQ(parts.size(), 3u) << Version();  // MAJOR.MINOR.PATCH, no "+git..."
  for (const std::string& part : parts) {
    int number = 0;
    EXPECT_TRUE(absl::SimpleAtoi(part, &number)) << Version();
  }
  const std::vector<std::string> lines = absl::StrSplit(VersionText(), '\n');
  ASSERT_EQ(lines.size(), 4u) << VersionText();           // three lines and the final newline
  EXPECT_EQ(lines[0], absl::StrCat("l4lb ", Version()));  // what help2man reads
  EXPECT_TRUE(absl::StartsWith(lines[1], "commit unknown")) << lines[1];
  EXPECT_TRUE(absl::StartsWith(lines[2], "built with ")) << lines[2];
  EXPECT_EQ(lines[3], "");
}

}  // namespace
}  // namespace l4lb
