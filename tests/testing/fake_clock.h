// FakeClock: a Clock that moves only when the test says so.
//   FakeClock clock(absl::FromUnixSeconds(1700000000));
//   clock.Advance(absl::Seconds(5));
#pragma once

#include "userspace/common/clock.h"

namespace interlock::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600)) : now_(start) {}
  absl::Time Now() const override { return now_; }
  absl::Duration Monotonic() const override { return mono_; }
  void Advance(absl::Duration d) {
    now_ += d;
    mono_ += d;
  }

 private:
  absl::Time now_;
  absl::Duration mono_ = absl::Seconds(1000);
};

}  // namespace interlock::testing
