#include "userspace/common/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace interlock {
namespace {

TEST(Annotate, PrependsContextAndKeepsCode) {
  absl::Status st = Annotate(absl::InvalidArgumentError("length 70000 > max 10000"), "pg: startup");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "pg: startup: length 70000 > max 10000");
}

TEST(Annotate, NestsPerLayer) {
  absl::Status st = Annotate(Annotate(absl::NotFoundError("no such file"), "open x"), "config");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "config: open x: no such file");
}

TEST(Annotate, LeavesOkAlone) { EXPECT_TRUE(Annotate(absl::OkStatus(), "context").ok()); }

absl::Status Step(bool fail, int* calls) {
  ++*calls;
  return fail ? absl::DataLossError("step failed") : absl::OkStatus();
}

absl::Status TwoSteps(bool fail_first, int* calls) {
  INTERLOCK_RETURN_IF_ERROR(Step(fail_first, calls));
  INTERLOCK_RETURN_IF_ERROR(Step(false, calls));
  return absl::OkStatus();
}

TEST(StatusMacros, ReturnIfErrorStopsAtFirstError) {
  int calls = 0;
  absl::Status st = TwoSteps(/*fail_first=*/true, &calls);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), "step failed");
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacros, ReturnIfErrorContinuesOnOk) {
  int calls = 0;
  EXPECT_TRUE(TwoSteps(/*fail_first=*/false, &calls).ok());
  EXPECT_EQ(calls, 2);
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(int v) {
  if (v < 0) return absl::OutOfRangeError("negative");
  return std::make_unique<int>(v);
}

// Two ASSIGN_OR_RETURNs in one scope (distinct hidden names), a move-only value, and
// assignment to an existing variable.
absl::StatusOr<int> Sum(int a, int b, int* reached) {
  INTERLOCK_ASSIGN_OR_RETURN(std::unique_ptr<int> x, MakeInt(a));
  *reached = 1;
  std::unique_ptr<int> y;
  INTERLOCK_ASSIGN_OR_RETURN(y, MakeInt(b));
  *reached = 2;
  return *x + *y;
}

TEST(StatusMacros, AssignOrReturnMovesValue) {
  int reached = 0;
  absl::StatusOr<int> sum = Sum(2, 3, &reached);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, 5);
  EXPECT_EQ(reached, 2);
}

TEST(StatusMacros, AssignOrReturnReturnsError) {
  int reached = 0;
  EXPECT_EQ(Sum(-1, 3, &reached).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(reached, 0);
  absl::StatusOr<int> second = Sum(1, -1, &reached);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(second.status().message(), "negative");
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace interlock
