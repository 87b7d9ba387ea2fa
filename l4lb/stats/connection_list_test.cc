#include "l4lb/stats/connection_list.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace l4lb::stats {
namespace {

// A stand-in worker: a thread that answers when woken, as Worker::OnWake does.
TEST(ConnectionListTest, TheWorkerAnswersWhenWoken) {
  ConnectionList list;
  std::atomic<bool> woken{false};
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    while (!stop.load()) {
      if (woken.exchange(false) && list.pending()) {
        const ConnectionList::Request r = list.request();
        std::vector<LiveConnection> out(r.limit);
        for (auto& c : out) c.service = static_cast<uint16_t>(r.service);
        list.Answer(std::move(out));
      }
      std::this_thread::yield();
    }
  });
  for (int i = 0; i < 100; ++i) {
    const auto got = list.Ask({.service = 3, .limit = 2}, absl::Seconds(5), [&] { woken = true; });
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->size(), 2u);
    EXPECT_EQ((*got)[0].service, 3);
  }
  stop = true;
  worker.join();
}

TEST(ConnectionListTest, AWorkerThatNeverAnswersCostsTheTimeoutAndALateAnswerIsDropped) {
  ConnectionList list;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(list.Ask({.service = -1, .limit = 5}, absl::Milliseconds(50), [] {}).has_value());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_FALSE(list.pending());
  list.Answer({LiveConnection{}});  // too late: nobody waits
  EXPECT_FALSE(list.Ask({.service = -1, .limit = 5}, absl::Milliseconds(10), [] {}).has_value());
}

}  // namespace
}  // namespace l4lb::stats
