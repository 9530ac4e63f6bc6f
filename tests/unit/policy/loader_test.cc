// Policy files: errors name the file, line and field; the old policy stays the caller's.
#include "userspace/policy/loader.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::policy {
namespace {

using ::testing::HasSubstr;

TEST(PolicyLoader, MissingIdAndActionNameFileLineAndField) {
  auto eval = LoadPolicyText("rules:\n  - id: ok\n    action: ACTION_ALLOW\n  - description: no id\n"
                             "    match: {no_where: true}\n",
                             "policy.yaml");
  ASSERT_FALSE(eval.ok());
  EXPECT_THAT(eval.status().message(), HasSubstr("policy.yaml:4: rules[1].id: required"));
  EXPECT_THAT(eval.status().message(), HasSubstr("rules[1].action: required"));
}

TEST(PolicyLoader, UnknownFieldAndEnumAreReportedWithTheirLine) {
  auto eval = LoadPolicyText("rules:\n  - id: a\n    action: ACTION_ALLOW\n    match:\n      kindz: []\n",
                             "p.yaml");
  ASSERT_FALSE(eval.ok());
  EXPECT_THAT(eval.status().message(), HasSubstr("p.yaml:5"));
  EXPECT_THAT(eval.status().message(), HasSubstr("kindz"));
  eval = LoadPolicyText("rules:\n  - id: a\n    action: ACTION_ALOW\n", "p.yaml");
  ASSERT_FALSE(eval.ok());
  EXPECT_THAT(eval.status().message(), HasSubstr("p.yaml:3"));
}

TEST(PolicyLoader, DuplicateIdsAndMaskWithoutProfile) {
  auto eval = LoadPolicyText("rules:\n  - {id: a, action: ACTION_ALLOW}\n  - {id: a, action: ACTION_MASK}\n",
                             "p.yaml");
  ASSERT_FALSE(eval.ok());
  EXPECT_THAT(eval.status().message(), HasSubstr("duplicate id \"a\""));
  EXPECT_THAT(eval.status().message(), HasSubstr("mask_profile: required"));
}

}  // namespace
}  // namespace interlock::policy
