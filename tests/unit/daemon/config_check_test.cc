// CheckConfigFiles: a well-formed configuration whose files would fail at the first
// session (or at start) is caught by --check-config and by a reload, each problem at its
// file:line: field.
#include "userspace/daemon/config_check.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "userspace/common/file_util.h"

namespace interlock::daemon {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ConfigCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("interlock-configcheck-"); }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = absl::StrCat(dir_, "/", name);
    EXPECT_TRUE(WriteFileAtomic(path, text, mode).ok());
    ::chmod(path.c_str(), mode);
    return path;
  }
  config::ServiceConfig Load(const std::string& resource_lines, const std::string& top = "") {
    const std::string text = absl::StrCat("state_dir: ", dir_, "/state\n", top,
                                          "resources:\n  - name: db\n    address: 127.0.0.9\n    port: 5432\n"
                                          "    protocol: PROTOCOL_POSTGRES\n    postgres:\n",
                                          resource_lines);
    auto c = config::LoadConfigText(text, "interlock.yaml");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : config::ServiceConfig{};
  }

  std::string dir_;
};

TEST_F(ConfigCheckTest, AConfigurationWhoseFilesAreSoundHasNoProblems) {
  const std::string pw = Write("pw", "secret");
  const std::string policy = Write("policy.yaml",
                                   "mask_profiles:\n  - {name: pii, columns: [{column: customers.ssn}]}\n"
                                   "rules:\n  - {id: m, match: {tables: [customers]}, action: ACTION_MASK, mask_profile: pii}\n",
                                   0644);
  config::ServiceConfig c = Load(absl::StrCat("      login: {user: app, password_ref: \"file:", pw,
                                              "\"}\n      sslmode: disable\n      allow_unverified_upstream: true\n"),
                                 absl::StrCat("policy_file: ", policy, "\n"));
  EXPECT_THAT(CheckConfigFiles(c), IsEmpty());
}

TEST_F(ConfigCheckTest, SecretsOthersCanReadOrThatAreMissingAreProblemsAtTheirLine) {
  const std::string pw = Write("pw", "secret", 0644);
  config::ServiceConfig c = Load(absl::StrCat("      login: {user: app, password_ref: \"file:", pw, "\"}\n",
                                              "      by_workload:\n        etl: {user: etl, password_ref: \"file:", dir_,
                                              "/missing\"}\n      sslmode: disable\n      allow_unverified_upstream: true\n"));
  std::vector<ConfigFileProblem> problems = CheckConfigFiles(c);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_THAT(problems[0].where, HasSubstr("interlock.yaml:"));
  EXPECT_THAT(problems[0].where, HasSubstr("resources[0].postgres.login.password_ref"));
  EXPECT_THAT(problems[0].problem, HasSubstr(pw));
  EXPECT_THAT(problems[1].where, HasSubstr("by_workload[\"etl\"].password_ref"));
}

TEST_F(ConfigCheckTest, CertificatesThatDoNotParseAndBrokenPoliciesAreProblems) {
  const std::string pw = Write("pw", "secret");
  const std::string ca = Write("ca.pem", "not a certificate\n", 0644);
  const std::string policy = Write("policy.yaml",
                                   "mask_profiles:\n  - name: pii\n    detectors:\n"
                                   "      - {detector: DETECTOR_CUSTOM, name: x, pattern: \"(\"}\n"
                                   "rules:\n  - {id: m, match: {tables: [t]}, action: ACTION_MASK, mask_profile: pii}\n",
                                   0644);
  config::ServiceConfig c =
      Load(absl::StrCat("      login: {user: app, password_ref: \"file:", pw, "\"}\n      sslmode: verify-full\n",
                        "      sslrootcert: ", ca, "\n      agent_tls_cert_file: ", dir_, "/agent.crt\n      agent_tls_key_file: ",
                        dir_, "/agent.key\n"),
           absl::StrCat("policy_file: ", policy, "\nadmin_group: no-such-group-here\n"));
  std::vector<std::string> lines;
  for (const ConfigFileProblem& p : CheckConfigFiles(c)) lines.push_back(absl::StrCat(p.where, ": ", p.problem));
  EXPECT_THAT(lines, ::testing::Contains(AllOf(HasSubstr("policy_file"), HasSubstr("mask_profiles[0]"))));
  EXPECT_THAT(lines, ::testing::Contains(AllOf(HasSubstr("postgres.sslrootcert"), HasSubstr("ca.pem"))));
  EXPECT_THAT(lines, ::testing::Contains(AllOf(HasSubstr("agent_tls_cert_file"), HasSubstr("agent.crt"))));
  EXPECT_THAT(lines, ::testing::Contains(AllOf(HasSubstr("admin_group"), HasSubstr("no-such-group-here"))));
}

}  // namespace
}  // namespace interlock::daemon
