#include "userspace/audit/sinks/backoff.h"

#include "gtest/gtest.h"

namespace interlock::audit::sinks {
namespace {

TEST(Backoff, DoublesWithJitterWithinBounds) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(10), 1);
  absl::Duration base = absl::Milliseconds(100);
  for (int i = 0; i < 6; ++i) {
    absl::Duration d = b.Next();
    EXPECT_GE(d, base) << i;
    EXPECT_LE(d, base + base / 2) << i;
    base *= 2;
  }
  EXPECT_EQ(b.failures(), 6);
}

TEST(Backoff, CappedAtMax) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(1), 7);
  for (int i = 0; i < 100; ++i) EXPECT_LE(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Seconds(1));  // base == max: jitter cannot pass it
}

TEST(Backoff, ResetStartsOver) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(60), 3);
  for (int i = 0; i < 10; ++i) b.Next();
  b.Reset();
  EXPECT_LE(b.Next(), absl::Milliseconds(150));
}

TEST(Backoff, JitterSpreadsHosts) {
  // Two hosts with different seeds do not retry in lockstep.
  Backoff a(absl::Seconds(1), absl::Seconds(60), 1);
  Backoff b(absl::Seconds(1), absl::Seconds(60), 2);
  int same = 0;
  for (int i = 0; i < 5; ++i) same += a.Next() == b.Next();
  EXPECT_LT(same, 5);
}

TEST(Backoff, SameSeedSameSequence) {
  Backoff a(absl::Milliseconds(10), absl::Seconds(60), 42);
  Backoff b(absl::Milliseconds(10), absl::Seconds(60), 42);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.Next(), b.Next());
}

}  // namespace
}  // namespace interlock::audit::sinks
