#include "l4lb/takeover/outbox.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4lb::takeover {

void Outbox::Expect() {
  std::lock_guard<std::mutex> lock(mu_);
  ++waiting_for_;
}

void Outbox::Push(Item item) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(item));
    ++pushed_;
  }
  cv_.notify_one();
}

void Outbox::WorkerDone() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_for_ > 0) --waiting_for_;
  }
  cv_.notify_one();
}

absl::StatusOr<std::optional<Outbox::Item>> Outbox::Next(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool ready = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                  [this] { return !items_.empty() || waiting_for_ == 0; });
  if (!ready) {
    return absl::DeadlineExceededError(absl::StrCat("takeover: ", waiting_for_,
                                                    " worker(s) still handing over after ",
                                                    absl::FormatDuration(timeout)));
  }
  if (items_.empty()) return std::nullopt;
  Item item = std::move(items_.front());
  items_.pop_front();
  return std::optional<Item>(std::move(item));
}

size_t Outbox::pushed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pushed_;
}

}  // namespace l4lb::takeover
