// ExpectRefusedMatch: a one-rule policy (id "r", ACTION_DENY) whose `match` is refused at
// load, with a problem naming rules[0], its line in "p.yaml" and `problem`.
//
//   ExpectRefusedMatch("{http: {paths: [\"v1/x\"]}}", "does not start with /");
#pragma once

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/policy/loader.h"

namespace interlock::policy {

inline void ExpectRefusedMatch(const std::string& match, const std::string& problem) {
  auto eval = LoadPolicyText("rules: [{id: r, action: ACTION_DENY, match: " + match + "}]", "p.yaml");
  ASSERT_FALSE(eval.ok()) << match;
  EXPECT_THAT(eval.status().message(), ::testing::HasSubstr(problem)) << match;
  EXPECT_THAT(eval.status().message(), ::testing::HasSubstr("p.yaml:1: rules[0]")) << match;
}

}  // namespace interlock::policy
