#include "l4lb/ring/ring.h"

#include <poll.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "l4lb/ring/tag.h"

namespace l4lb::ring {
namespace {

TEST(RingTest, NopCompletesWithItsTag) {
  absl::StatusOr<Ring> ring = Ring::Create({});
  ASSERT_TRUE(ring.ok()) << ring.status();
  io_uring_sqe* sqe = ring->GetSqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kWake, 3, 42));
  ring->SubmitAndWait(absl::Seconds(5));
  std::vector<uint64_t> seen;
  ring->DrainCompletions([&](const io_uring_cqe& cqe) { seen.push_back(cqe.user_data); });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(Tag::Decode(seen[0]).slot, 42u);
}

TEST(RingTest, GetSqeNeverFailsWhenTheQueueIsFull) {
  absl::StatusOr<Ring> ring = Ring::Create({.sq_entries = 4, .cq_entries = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  for (int i = 0; i < 20; ++i) {
    io_uring_sqe* sqe = ring->GetSqe();
    ASSERT_NE(sqe, nullptr);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kWake, 0, i));
  }
  int seen = 0;
  for (int round = 0; round < 100 && seen < 20; ++round) {
    ring->SubmitAndWait(absl::Milliseconds(100));
    seen += ring->DrainCompletions([](const io_uring_cqe&) {});
  }
  EXPECT_EQ(seen, 20);
}

TEST(RingTest, WaitEndsAtTheTimeoutWithNothingQueued) {
  absl::StatusOr<Ring> ring = Ring::Create({});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const absl::Time start = absl::Now();
  ring->SubmitAndWait(absl::Milliseconds(50));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
  EXPECT_EQ(ring->DrainCompletions([](const io_uring_cqe&) {}), 0u);
}

TEST(RingTest, PollForReturnsFalseAfterItsBudgetWhenNothingCompletes) {
  absl::StatusOr<Ring> ring = Ring::Create({});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const absl::Time start = absl::Now();
  EXPECT_FALSE(ring->PollFor(absl::Milliseconds(2)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(2));
}

// Readiness reaches a DEFER_TASKRUN ring as task work, which runs only when the
// ring is entered: PollFor must enter it (GETEVENTS) to see the completion.
TEST(RingTest, PollForSeesReadinessThatArrivesWhileItPolls) {
  absl::StatusOr<Ring> ring = Ring::Create({});
  ASSERT_TRUE(ring.ok()) << ring.status();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  io_uring_sqe* sqe = ring->GetSqe();
  io_uring_prep_poll_add(sqe, fds[0], POLLIN);
  io_uring_sqe_set_data64(sqe, Tag::Encode(Op::kWake, 0, 7));
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(5));
    ASSERT_EQ(write(fds[1], "x", 1), 1);
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(ring->PollFor(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  writer.join();
  EXPECT_EQ(ring->DrainCompletions(
                [](const io_uring_cqe& cqe) { EXPECT_EQ(Tag::Decode(cqe.user_data).slot, 7u); }),
            1u);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace l4lb::ring
