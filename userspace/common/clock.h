// Time is injected. Code that needs "now" takes a `Clock&`; only clock.cc reads the real
// clock, and tests use FakeClock (tests/testing/fake_clock.h) to move time by hand.
//
//   void Session::Tick(const Clock& clock) {
//     if (clock.Now() - last_activity_ > idle_timeout_) Close("idle");
//   }
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace interlock {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for timestamps in records and audit events.
  virtual absl::Time Now() const = 0;
  // Monotonic time since an arbitrary origin, for deadlines and durations.
  virtual absl::Duration Monotonic() const = 0;
};

// The real clock: CLOCK_REALTIME and CLOCK_MONOTONIC.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override;
  absl::Duration Monotonic() const override;
  // A process-wide instance, for main() to inject.
  static RealClock& Get();
};

}  // namespace interlock
