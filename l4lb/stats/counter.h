#pragma once

#include <atomic>
#include <cstdint>

namespace l4lb::stats {

// Counter is written by ONE thread (its worker) and read by any: a relaxed load
// plus store, never a locked read-modify-write, so the hot path shares nothing.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace l4lb::stats
