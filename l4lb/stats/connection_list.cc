#include "l4lb/stats/connection_list.h"

#include <chrono>

namespace l4lb::stats {

std::optional<std::vector<LiveConnection>> ConnectionList::Ask(const Request& request,
                                                               absl::Duration timeout,
                                                               const std::function<void()>& wake) {
  std::lock_guard<std::mutex> turn(ask_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  request_ = request;
  answer_.reset();
  pending_.store(true, std::memory_order_release);
  lock.unlock();
  wake();
  lock.lock();
  answered_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                     [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return answer_.has_value(); });
  // Late answers are dropped: Answer() sees nothing pending.
  pending_.store(false, std::memory_order_release);
  std::optional<std::vector<LiveConnection>> out = std::move(answer_);
  answer_.reset();
  return out;
}

ConnectionList::Request ConnectionList::request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return request_;
}

void ConnectionList::Answer(std::vector<LiveConnection> connections) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_.load(std::memory_order_relaxed)) return;
    pending_.store(false, std::memory_order_release);
    answer_ = std::move(connections);
  }
  answered_.notify_one();
}

}  // namespace l4lb::stats
