// MaskService: compiled profiles and merged floors per policy in force; maskers handed
// out stay valid across a reload (a result still streaming keeps its own).
#include "userspace/daemon/mask_service.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "userspace/policy/loader.h"

namespace interlock::daemon {
namespace {

constexpr char kPolicy[] = R"YAML(
rules:
  - {id: mask-pii, match: {tables: [customers]}, action: ACTION_MASK, mask_profile: pii}
  - {id: mask-hr, match: {tables: [employees]}, action: ACTION_MASK, mask_profile: hr}
mask_profiles:
  - {name: pii, columns: [{column: customers.ssn}], detectors: [{detector: DETECTOR_SSN}]}
  - {name: hr, columns: [{column: employees.salary}], detectors: [{detector: DETECTOR_EMAIL}]}
)YAML";

class MaskServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("interlock-masksvc-");
    auto p = policy::LoadPolicyText(kPolicy, "p.yaml");
    ASSERT_TRUE(p.ok()) << p.status();
    policy_ = std::move(*p);
    auto s = MaskService::Create(dir_, &policy_, nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    masks_ = std::move(*s);
  }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::string dir_;
  std::shared_ptr<const policy::PolicyEvaluator> policy_;
  std::unique_ptr<MaskService> masks_;
};

TEST_F(MaskServiceTest, FloorMergesProfilesInTheOrderGiven) {
  auto pii = masks_->Profile("pii");
  ASSERT_NE(pii, nullptr);
  EXPECT_EQ(masks_->Floor({"pii"}), pii);  // one profile: itself
  auto both = masks_->Floor({"pii", "hr"});
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(both->name(), "pii+hr");
  EXPECT_EQ(masks_->Floor({"pii", "hr"}), both);  // compiled once
  EXPECT_NE(both->MatchColumn("public", "customers", "ssn", "ssn"), nullptr);
  EXPECT_NE(both->MatchColumn("public", "employees", "salary", "salary"), nullptr);
  std::string out;
  EXPECT_TRUE(both->MaskText("mail a@example.com ssn 078-05-1120", &out, nullptr));
  EXPECT_EQ(masks_->Floor({"hr", "pii"})->name(), "hr+pii");
  // A missing profile: no floor (the session refuses: fail closed).
  EXPECT_EQ(masks_->Floor({"pii", "nope"}), nullptr);
  EXPECT_EQ(masks_->Floor({}), nullptr);
}

TEST_F(MaskServiceTest, MaskersOutliveAReload) {
  auto before = masks_->Floor({"pii", "hr"});
  auto p = policy::LoadPolicyText(kPolicy, "p.yaml");
  ASSERT_TRUE(p.ok());
  policy_ = std::move(*p);  // reloaded: recompiled on next use
  auto after = masks_->Floor({"pii", "hr"});
  ASSERT_NE(after, nullptr);
  EXPECT_NE(after, before);
  std::string out;
  EXPECT_TRUE(before->MaskText("078-05-1120", &out, nullptr));  // still usable
}

}  // namespace
}  // namespace interlock::daemon
