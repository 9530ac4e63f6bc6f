#include "userspace/audit/sinks/backoff.h"

#include <algorithm>

namespace interlock::audit::sinks {

absl::Duration Backoff::Next() {
  ++failures_;
  absl::Duration base = initial_;
  for (int i = 1; i < failures_ && base < max_; ++i) base *= 2;
  base = std::min(base, max_);
  const int64_t half_us = absl::ToInt64Microseconds(base) / 2;
  const int64_t jitter_us =
      half_us > 0 ? static_cast<int64_t>(rng_() % static_cast<uint64_t>(half_us + 1)) : 0;
  return std::min(base + absl::Microseconds(jitter_us), max_);
}

}  // namespace interlock::audit::sinks
