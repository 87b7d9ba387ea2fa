#include "l4lb/takeover/outbox.h"

#include <thread>

#include "gtest/gtest.h"

namespace l4lb::takeover {
namespace {

Outbox::Item ItemFor(uint32_t worker) {
  Outbox::Item item;
  item.record.worker = worker;
  item.fds = {3, 4};
  return item;
}

TEST(OutboxTest, ItemsInOrderThenEndOnceEveryWorkerIsDone) {
  Outbox out(2);
  out.Push(ItemFor(0));
  out.WorkerDone();
  out.Push(ItemFor(1));
  absl::StatusOr<std::optional<Outbox::Item>> a = out.Next(absl::Seconds(1));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->record.worker, 0u);
  absl::StatusOr<std::optional<Outbox::Item>> b = out.Next(absl::Seconds(1));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->record.worker, 1u);
  // One worker is not done yet: nothing to take, no end either.
  absl::StatusOr<std::optional<Outbox::Item>> wait = out.Next(absl::Milliseconds(20));
  EXPECT_TRUE(absl::IsDeadlineExceeded(wait.status())) << wait.status();
  EXPECT_EQ(wait.status().message(), "takeover: 1 worker(s) still handing over after 20ms");
  std::thread last([&out] { out.WorkerDone(); });
  absl::StatusOr<std::optional<Outbox::Item>> end = out.Next(absl::Seconds(5));
  last.join();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ(out.pushed(), 2u);
}

TEST(OutboxTest, AWorkerThreadWakesTheSender) {
  Outbox out(1);
  std::thread worker([&out] {
    for (uint32_t i = 0; i < 100; ++i) out.Push(ItemFor(i));
    out.WorkerDone();
  });
  uint32_t next = 0;
  for (;;) {
    absl::StatusOr<std::optional<Outbox::Item>> item = out.Next(absl::Seconds(5));
    ASSERT_TRUE(item.ok()) << item.status();
    if (!item->has_value()) break;
    EXPECT_EQ((*item)->record.worker, next++);
  }
  worker.join();
  EXPECT_EQ(next, 100u);
}

}  // namespace
}  // namespace l4lb::takeover
