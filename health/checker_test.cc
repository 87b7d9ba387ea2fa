#include "health/checker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace l4lb::health {
namespace {

// A loopback port: listening (the kernel completes connects without accept) or
// closed (connects are refused), switchable.
class Port {
 public:
  Port() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), len);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Port() { close(fd_); }
  void Listen() { ASSERT_EQ(listen(fd_, 64), 0); }
  // Refuses again: a new socket bound to the same port, not listening.
  void Refuse() {
    close(fd_);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  std::string spec() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

template <typename Fn>
bool Within(absl::Duration limit, Fn&& done) {
  const absl::Time deadline = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class CheckerTest : public ::testing::Test {
 protected:
  void Start(HealthOptions options) {
    a_.Listen();
    auto specs = *backend::ParseBackendList(a_.spec() + "," + b_.spec());
    publisher_ = std::make_unique<backend::SnapshotPublisher>(
        *backend::BackendSnapshot::Build(specs, {}, {.maglev_table_size = 1009}));
    control_ = std::make_unique<backend::ServiceControl>(
        publisher_.get(), backend::BackendSnapshot::Options{.maglev_table_size = 1009});
    checker_ = std::make_unique<HealthChecker>(std::vector<HealthChecker::Service>{
        {.name = "test",
         .options = options,
         .control = control_.get(),
         .passive = &passive_,
         .carried = {}}});
    checker_->Start();
  }
  bool Up(int backend) const { return publisher_->Current()->healthy(backend); }

  Port a_, b_;  // a listens; b refuses until told otherwise
  backend::PassiveHealth passive_{2};
  std::unique_ptr<backend::SnapshotPublisher> publisher_;
  std::unique_ptr<backend::ServiceControl> control_;
  std::unique_ptr<HealthChecker> checker_;
};

// The checker steps slow-start ramps, also for a service it does not probe.
TEST(CheckerSlowStartTest, RampsStepOnTheCheckerThreadWithoutProbes) {
  auto specs = *backend::ParseBackendList("10.0.0.1:80,10.0.0.2:80");
  backend::SnapshotPublisher publisher(*backend::BackendSnapshot::Build(specs, {}, {}));
  backend::ServiceControl control(&publisher, {}, {.duration = absl::Milliseconds(500)});
  HealthOptions none;
  none.probe.kind = ProbeSpec::Kind::kNone;
  HealthChecker checker(std::vector<HealthChecker::Service>{
      {.name = "test", .options = none, .control = &control, .passive = nullptr, .carried = {}}});
  EXPECT_TRUE(checker.active()) << "no probes, but ramps to step";
  checker.Start();
  control.SetAdmin(1, backend::AdminState::kMaint);
  control.SetAdmin(1, backend::AdminState::kReady);
  EXPECT_EQ(publisher.Current()->table_weights()[1], 1000u) << "a tenth at once";
  // Ten steps of 50 ms; the checker wakes at least every 100 ms.
  ASSERT_TRUE(Within(absl::Seconds(2), [&] { return publisher.Current()->table_weights()[1] == 1; }))
      << "still at " << publisher.Current()->table_weights()[1];
  checker.Stop();
}

HealthOptions Fast() {
  HealthOptions o;
  o.probe.kind = ProbeSpec::Kind::kTcp;
  o.interval = absl::Milliseconds(50);
  o.timeout = absl::Milliseconds(50);
  o.rise = 2;
  o.fall = 3;
  return o;
}

TEST_F(CheckerTest, DeadAtStartIsDownAfterOneCheckAndComesBackAfterRise) {
  Start(Fast());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Within(absl::Seconds(2), [&] { return !Up(1); }));
  // HAProxy's start-up rule: one failed check is enough for a backend never seen up.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_TRUE(Up(0));
  b_.Listen();
  const absl::Time listening = absl::Now();
  ASSERT_TRUE(Within(absl::Seconds(2), [&] { return Up(1); }));
  // rise = 2 checks 50 ms (+-10%) apart.
  EXPECT_GE(absl::Now() - listening, absl::Milliseconds(40));
}

TEST_F(CheckerTest, AnUpBackendNeedsFallFailuresInARow) {
  b_.Listen();
  Start(Fast());
  absl::SleepFor(absl::Milliseconds(300));  // several passed checks: fully up
  ASSERT_TRUE(Up(0) && Up(1));
  b_.Refuse();
  const absl::Time refused = absl::Now();
  ASSERT_TRUE(Within(absl::Seconds(2), [&] { return !Up(1); }));
  const absl::Duration took = absl::Now() - refused;
  // fall = 3 checks: at least two intervals, at most interval x fall + timeout + slack.
  EXPECT_GE(took, absl::Milliseconds(80)) << took;
  EXPECT_LE(took, absl::Milliseconds(50 * 3 * 1.1 + 50 + 100)) << took;
  EXPECT_TRUE(Up(0));
}

TEST_F(CheckerTest, MaintenancePausesChecksAndKeepsTheStateUntilEnabled) {
  b_.Listen();
  Start(Fast());
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(Up(0) && Up(1));
  control_->SetAdmin(1, backend::AdminState::kMaint);
  b_.Refuse();  // the operator stopped it for maintenance
  absl::SleepFor(absl::Milliseconds(500));  // ten intervals: three failed probes would eject it
  EXPECT_TRUE(Up(1)) << "probed while in maintenance";
  EXPECT_EQ(publisher_->Current()->admin(1), backend::AdminState::kMaint)
      << "a health publish overwrote the admin state";
  control_->SetAdmin(1, backend::AdminState::kReady);
  // Checks resume: the refused backend goes DOWN after fall checks.
  EXPECT_TRUE(Within(absl::Seconds(2), [&] { return !Up(1); }));
  EXPECT_EQ(publisher_->Current()->admin(1), backend::AdminState::kReady);
  EXPECT_TRUE(Up(0));
}

TEST_F(CheckerTest, PassiveFailuresOnADeadBackendEjectBetweenProbes) {
  HealthOptions options = Fast();
  options.interval = absl::Seconds(30);  // no regular probe after the first round
  b_.Listen();
  Start(options);
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(Up(0) && Up(1));
  b_.Refuse();  // dies; nothing probes it for 30 s
  passive_.Report(1, /*client_key=*/7);
  // The report makes it suspect, the early probe finds it refusing.
  EXPECT_TRUE(Within(absl::Milliseconds(500), [&] { return !Up(1); }));
  EXPECT_TRUE(Up(0));
}

TEST_F(CheckerTest, PassiveFailuresAloneNeverEjectABackendThatAnswersProbes) {
  HealthOptions options = Fast();
  options.interval = absl::Seconds(30);
  b_.Listen();
  Start(options);
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(Up(0) && Up(1));
  // A thousand failures from 100 client addresses over a second: each round
  // takes the backend to the edge, and the early probe it triggers passes.
  for (int round = 0; round < 20; ++round) {
    for (uint64_t client = 0; client < 100; ++client) {
      for (int i = 0; i < 10; ++i) passive_.Report(0, client);
    }
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(Up(0)) << "round " << round;
  }
  EXPECT_TRUE(Up(1));
}

TEST_F(CheckerTest, PassiveFailuresNeverEjectABackendNotYetProbed) {
  HealthOptions options = Fast();
  options.interval = absl::Seconds(30);
  b_.Listen();
  Start(options);
  // At start-up every backend is on the edge (HAProxy's rule): a passive
  // failure must still wait for a probe.
  for (uint64_t client = 0; client < 50; ++client) passive_.Report(0, client);
  for (int i = 0; i < 80; ++i) {  // 400 ms: the reports, the early probes, their results
    ASSERT_TRUE(Up(0)) << "after " << i * 5 << " ms";
    absl::SleepFor(absl::Milliseconds(5));
  }
}

TEST_F(CheckerTest, ReportShowsEachBackendsChecksAndLastChange) {
  const absl::Time before = absl::Now();
  Start(Fast());
  ASSERT_TRUE(Within(absl::Seconds(2), [&] {
    const auto r = checker_->Report();
    return r[0][0].passed >= 2 && r[0][1].failed >= 2;
  }));
  const std::vector<std::vector<HealthChecker::BackendReport>> r = checker_->Report();
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].size(), 2u);
  const HealthChecker::BackendReport& up = r[0][0];
  const HealthChecker::BackendReport& down = r[0][1];
  EXPECT_TRUE(up.probed);
  EXPECT_TRUE(up.last_ok);
  EXPECT_EQ(up.failed, 0u);
  EXPECT_EQ(up.last_reason, "");
  EXPECT_LE(up.last_change, before + absl::Milliseconds(100)) << "never changed: the start";
  EXPECT_FALSE(down.last_ok);
  EXPECT_EQ(down.passed, 0u);
  EXPECT_NE(down.last_reason.find("refused"), std::string::npos) << down.last_reason;
  EXPECT_GT(down.last_change, up.last_change) << "it went DOWN after the start";
  EXPECT_GT(down.last_check, down.last_change - absl::Milliseconds(1));
  EXPECT_GT(down.last_duration, absl::ZeroDuration());
  EXPECT_LT(down.last_duration, absl::Milliseconds(100));
}

// A reload hands the new checker the old one's reports: a backend fully UP
// needs `fall` failures again (not one, as at a fresh start), and a DOWN one
// stays DOWN until `rise` probes pass (not UP at once).
TEST_F(CheckerTest, CarriedStateGoesOnAfterAReload) {
  Start(Fast());
  ASSERT_TRUE(Within(absl::Seconds(2), [&] {
    const auto r = checker_->Report();
    return r[0][0].passed >= 5 && !Up(1);
  }));
  checker_->Stop();
  const std::vector<std::vector<HealthChecker::BackendReport>> before = checker_->Report();
  std::vector<std::optional<HealthChecker::BackendReport>> carried(before[0].begin(),
                                                                   before[0].end());
  // What the server publishes first after a reload: the carried health.
  auto specs = *backend::ParseBackendList(a_.spec() + "," + b_.spec());
  backend::SnapshotPublisher publisher(
      *backend::BackendSnapshot::Build(specs, {true, false}, {.maglev_table_size = 1009}));
  backend::ServiceControl control(&publisher,
                                  backend::BackendSnapshot::Options{.maglev_table_size = 1009});
  HealthOptions options = Fast();
  options.interval = absl::Seconds(2);  // one round in the window below
  HealthChecker next({{.name = "test",
                       .options = options,
                       .control = &control,
                       .passive = &passive_,
                       .carried = carried}});
  a_.Refuse();
  b_.Listen();
  next.Start();
  ASSERT_TRUE(Within(absl::Seconds(1), [&] {
    const auto r = next.Report();
    return r[0][0].failed >= 1 && r[0][1].passed >= 1;
  }));
  absl::SleepFor(absl::Milliseconds(20));  // the results published, had they flipped anything
  EXPECT_TRUE(publisher.Current()->healthy(0)) << "one failure took a fully UP backend down";
  EXPECT_FALSE(publisher.Current()->healthy(1)) << "one pass brought a DOWN backend up";
  const auto after = next.Report();
  EXPECT_GE(after[0][0].passed, before[0][0].passed) << "the counts start afresh";
  EXPECT_EQ(after[0][1].last_change, before[0][1].last_change);
  next.Stop();
}

TEST_F(CheckerTest, NoneChecksNothing) {
  HealthOptions options = Fast();
  options.probe.kind = ProbeSpec::Kind::kNone;
  Start(options);
  EXPECT_FALSE(checker_->active());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE(Up(1));  // refusing, but nobody looks
}

}  // namespace
}  // namespace l4lb::health
