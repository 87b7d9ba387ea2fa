#pragma once

#include <time.h>

#include <cstdint>

namespace l4lb {

// CLOCK_MONOTONIC in nanoseconds: the clock of the workers (connection ages,
// idle sweeps, ban expiries), the health checker and slow-start ramps, which a
// wall-clock step must not move. One clock, so their times compare.
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace l4lb
