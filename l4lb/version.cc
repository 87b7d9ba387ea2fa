#include "l4lb/version.h"

#include <features.h>

#include "absl/strings/str_cat.h"

#include "l4lb/build_info.h"

namespace l4lb {
namespace {

#if defined(__clang__)
constexpr absl::string_view kCompiler = "clang " __clang_version__;
#else
constexpr absl::string_view kCompiler = "gcc " __VERSION__;
#endif

// -c opt defines NDEBUG: DCHECKs and assert() are compiled out.
#if defined(NDEBUG)
constexpr absl::string_view kAssertions = "optimized, DCHECKs off";
#else
constexpr absl::string_view kAssertions = "DCHECKs on";
#endif

#if defined(__SANITIZE_ADDRESS__)
constexpr absl::string_view kSanitizers = ", AddressSanitizer";
#elif defined(__SANITIZE_THREAD__)
constexpr absl::string_view kSanitizers = ", ThreadSanitizer";
#else
constexpr absl::string_view kSanitizers = "";
#endif

}  // namespace

absl::string_view Version() { return L4LB_VERSION; }

std::string VersionText() {
  const absl::string_view commit = L4LB_COMMIT;
  const std::string commit_line =
      commit.empty()
          ? "commit unknown (not stamped: tools/package.sh builds with the commit)"
          : absl::StrCat("commit ", commit, " (", L4LB_COMMIT_TIME, " UTC, ", L4LB_TREE, " tree)");
  return absl::StrCat("l4lb ", Version(), "\n", commit_line, "\n", "built with ", kCompiler, ", ",
                      kAssertions, kSanitizers, ", glibc ", __GLIBC__, ".", __GLIBC_MINOR__, "\n");
}

}  // namespace l4lb
