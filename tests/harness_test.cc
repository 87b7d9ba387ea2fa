// The harness's own promises, where a broken harness would let broken l4lb
// pass: L4lb's destructor fails the test unless l4lb exits as expected.

#include <signal.h>

#include <memory>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"

namespace l4lb::testing {
namespace {

std::unique_ptr<L4lb> StartL4lb() {
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
      {"--listen=127.0.0.1:0", "--threads=1", "--health_check=none", "--backends=127.0.0.2:9"});
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

TEST(L4lbHarnessTest, ACleanDrainPassesSilently) {
  std::unique_ptr<L4lb> l4lb = StartL4lb();
  ASSERT_NE(l4lb, nullptr);
  l4lb.reset();  // SIGTERM, exit 0: no failure
}

TEST(L4lbHarnessTest, ACrashFailsTheTest) {
  std::unique_ptr<L4lb> l4lb = StartL4lb();
  ASSERT_NE(l4lb, nullptr);
  // What a CHECK failure in the drain looks like: glog aborts. (Not SIGSEGV:
  // under --config=asan the sanitizer catches it and exits 1 with a report.)
  kill(l4lb->process().pid(), SIGABRT);
  EXPECT_NONFATAL_FAILURE(l4lb.reset(), "l4lb died of signal 6");
}

TEST(L4lbHarnessTest, AnExitTheTestDidNotExpectFailsIt) {
  std::unique_ptr<L4lb> l4lb = StartL4lb();
  ASSERT_NE(l4lb, nullptr);
  l4lb->ExpectExit(3);
  EXPECT_NONFATAL_FAILURE(l4lb.reset(), "l4lb exited with 0; the test expects exit code 3");
}

TEST(L4lbHarnessTest, AnExpectedExitPasses) {
  std::unique_ptr<L4lb> l4lb = StartL4lb();
  ASSERT_NE(l4lb, nullptr);
  EXPECT_EQ(l4lb->process().Stop(SIGKILL, absl::Seconds(5)), 128 + SIGKILL);
  l4lb->ExpectExit(128 + SIGKILL);
  l4lb.reset();
}

}  // namespace
}  // namespace l4lb::testing
