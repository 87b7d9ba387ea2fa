// The balancing policies end to end (`--balance`): the built l4lb in front of
// three echo servers on 127.0.0.2-4, with every client on one address, so that
// Maglev alone would send them all to one backend.

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

class BalanceTest : public ::testing::Test {
 protected:
  BalanceTest() {
    for (const char* host : {"127.0.0.2", "127.0.0.3", "127.0.0.4"}) {
      echo_.push_back(std::make_unique<EchoServer>(host));
    }
  }
  ~BalanceTest() override {
    for (int fd : held_) close(fd);
  }

  void Start(const std::vector<std::string>& flags, const std::string& weights = "") {
    std::vector<std::string> backends;
    for (size_t i = 0; i < echo_.size(); ++i) {
      backends.push_back(absl::StrCat("127.0.0.", i + 2, ":", echo_[i]->port(),
                                      weights.empty() ? "" : absl::StrCat("=", std::string(1, weights[i]))));
    }
    std::vector<std::string> all = {"--listen=127.0.0.1:0", "--health_check=none",
                                    "--backends=" + absl::StrJoin(backends, ",")};
    all.insert(all.end(), flags.begin(), flags.end());
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(all);
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }
  // A relayed connection, held open (its byte echoed: the backend has it).
  void Hold() {
    const int fd = ConnectTcp("127.0.0.1", l4lb_->port());
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(3));
    ASSERT_TRUE(SendAll(fd, "x"));
    ASSERT_EQ(ReadN(fd, 1), "x");
    held_.push_back(fd);
  }
  std::vector<int> Open() const {
    std::vector<int> out;
    for (const auto& e : echo_) out.push_back(e->open_connections());
    return out;
  }
  std::vector<int> Accepted() const {
    std::vector<int> out;
    for (const auto& e : echo_) out.push_back(e->accepted());
    return out;
  }

  std::vector<std::unique_ptr<EchoServer>> echo_;
  std::unique_ptr<L4lb> l4lb_;
  std::vector<int> held_;
};

// SSH/SFTP farms: long sessions from one NAT address spread evenly, over
// both workers.
TEST_F(BalanceTest, LeastConnSpreadsLongSessionsFromOneAddress) {
  ASSERT_NO_FATAL_FAILURE(Start({"--balance=least_conn", "--threads=2"}));
  for (int i = 0; i < 9; ++i) ASSERT_NO_FATAL_FAILURE(Hold());
  ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{3, 3, 3}; }))
      << absl::StrJoin(Open(), ",");
  // The sessions end; the next six spread again.
  for (int fd : held_) close(fd);
  held_.clear();
  ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{0, 0, 0}; }));
  for (int i = 0; i < 6; ++i) ASSERT_NO_FATAL_FAILURE(Hold());
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{2, 2, 2}; }))
      << absl::StrJoin(Open(), ",");
}

TEST_F(BalanceTest, LeastConnFillsTheBackendLeftWithFewest) {
  ASSERT_NO_FATAL_FAILURE(Start({"--balance=least_conn", "--threads=1"}));
  for (int i = 0; i < 6; ++i) ASSERT_NO_FATAL_FAILURE(Hold());
  ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{2, 2, 2}; }));
  // Short connections come and go meanwhile; then the farm is 2/2/2 again and
  // three more sessions go one to each.
  for (int i = 0; i < 30; ++i) {
    const int fd = ConnectTcp("127.0.0.1", l4lb_->port());
    SetRecvTimeout(fd, absl::Seconds(3));
    ASSERT_TRUE(SendAll(fd, "y"));
    ASSERT_EQ(ReadN(fd, 1), "y");
    close(fd);
    ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{2, 2, 2}; }));
  }
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Hold());
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{3, 3, 3}; }))
      << absl::StrJoin(Open(), ",");
}

TEST_F(BalanceTest, RoundRobinIsWeighted) {
  ASSERT_NO_FATAL_FAILURE(Start({"--balance=round_robin", "--threads=1"}, "211"));
  for (int i = 0; i < 40; ++i) {
    const int fd = ConnectTcp("127.0.0.1", l4lb_->port());
    SetRecvTimeout(fd, absl::Seconds(3));
    ASSERT_TRUE(SendAll(fd, "z"));
    ASSERT_EQ(ReadN(fd, 1), "z");
    close(fd);
  }
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return Accepted() == std::vector<int>{20, 10, 10}; }))
      << absl::StrJoin(Accepted(), ",");
}

// One hot client address: Maglev sends all 12 sessions to one backend; bounded
// loads let it hold at most ceil(1.25 x 12 / 3) = 5 and spill the rest.
TEST_F(BalanceTest, BoundedMaglevCapsTheHotClientsBackend) {
  ASSERT_NO_FATAL_FAILURE(Start({"--threads=2"}));
  for (int i = 0; i < 12; ++i) ASSERT_NO_FATAL_FAILURE(Hold());
  std::vector<int> plain = Open();
  EXPECT_EQ(*std::max_element(plain.begin(), plain.end()), 12) << "the control: plain maglev";
  const int hot = static_cast<int>(std::max_element(plain.begin(), plain.end()) - plain.begin());
  for (int fd : held_) close(fd);
  held_.clear();
  ASSERT_TRUE(WaitFor(absl::Seconds(2), [&] { return Open() == std::vector<int>{0, 0, 0}; }));
  l4lb_.reset();

  ASSERT_NO_FATAL_FAILURE(Start({"--balance=maglev_bounded", "--balance_factor=1.25", "--threads=2"}));
  for (int i = 0; i < 12; ++i) ASSERT_NO_FATAL_FAILURE(Hold());
  const std::vector<int> bounded = Open();
  EXPECT_LE(*std::max_element(bounded.begin(), bounded.end()), 5) << absl::StrJoin(bounded, ",");
  EXPECT_EQ(bounded[hot], 5) << "the client's own backend fills to its bound first: "
                             << absl::StrJoin(bounded, ",");
}

TEST(BalanceFlagsTest, BadValuesExit2NamingTheFlag) {
  for (const auto& [flags, want] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--balance=leastconn"}, "--balance: \"leastconn\": want maglev, maglev_bounded"},
           {{"--balance_factor=1"}, "--balance_factor: 1: want above 1"},
           {{"--listen=udp://127.0.0.1:0", "--balance=least_conn"},
            "--balance: only maglev for udp:// listeners"}}) {
    std::vector<std::string> argv = {L4lbBinary(), "--backends=127.0.0.2:1"};
    if (!absl::StartsWith(flags[0], "--listen")) argv.push_back("--listen=127.0.0.1:0");
    argv.insert(argv.end(), flags.begin(), flags.end());
    const CommandResult r = RunCommand(argv, absl::Seconds(10));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, want)) << r.err;
  }
}

}  // namespace
}  // namespace l4lb::testing
