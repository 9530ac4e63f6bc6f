// Retry delays: exponential with random jitter, capped. Pure (the randomness is seeded by
// the caller), so tests replay exact sequences.
//
//   Backoff b(absl::Milliseconds(500), absl::Seconds(60), seed);
//   absl::Duration wait = b.Next();   // after a failure: ~500ms, then ~1s, ~2s, ... <= 60s
//   b.Reset();                        // after a success
#pragma once

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace interlock::audit::sinks {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
      : initial_(initial), max_(max), rng_(seed) {}

  // The wait before the next attempt, after one more failure: base = initial * 2^(n-1) for
  // the n-th failure in a row, plus a uniform jitter in [0, base / 2], never above max.
  // (Jitter spreads the retries of many hosts after a shared SIEM outage.)
  absl::Duration Next();
  // A success: the next failure starts from `initial` again.
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  std::mt19937_64 rng_;
  int failures_ = 0;
};

}  // namespace interlock::audit::sinks
