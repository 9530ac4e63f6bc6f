// The policy evaluator on SSH channel requests (policy.proto SshMatch): which rules apply
// to which protocol, precedence and defaults, an allow-list policy against the ways an
// agent would try to run something else, and what is refused at load.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/policy/refused_match.h"
#include "userspace/policy/evaluator.h"
#include "userspace/policy/loader.h"
#include "userspace/sql/classify.h"

namespace interlock::policy {
namespace {

constexpr char kHostPolicy[] = R"YAML(
resources:
  - {resource: build-host, default_action: ACTION_DENY}
rules:
  - id: allow-read-tools
    match: {resources: [build-host], ssh: {requests: [exec], programs: [ls, cat, uptime, "/usr/bin/git"]}}
    action: ACTION_ALLOW
  - id: allow-git-pull
    match: {resources: [build-host], ssh: {programs: [git], args: [pull]}}
    action: ACTION_ALLOW
  - id: mask-env
    match: {resources: [build-host], ssh: {programs: [env]}}
    action: ACTION_MASK
    mask_profile: secrets
  - id: review-shell-lines
    match: {ssh: {shell: true}}
    action: ACTION_REVIEW
    review_timeout_s: 120
  - id: review-interactive
    match: {ssh: {requests: [shell], pty: true}}
    action: ACTION_REVIEW
  - id: allow-sftp
    match: {ssh: {subsystems: [sftp]}}
    action: ACTION_ALLOW
  - id: deny-rm-anywhere
    match: {ssh: {command_regex: ["\\brm\\b"]}}
    action: ACTION_DENY
  - id: sql-reads
    match: {kinds: [STATEMENT_KIND_SELECT]}
    action: ACTION_ALLOW
  - id: http-reads
    match: {http: {methods: [GET]}}
    action: ACTION_ALLOW
  - id: freeze-intern
    subject: {workloads: [intern]}
    action: ACTION_DENY
mask_profiles:
  - {name: secrets}
)YAML";

class SshPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto eval = LoadPolicyText(kHostPolicy, "host.yaml");
    ASSERT_TRUE(eval.ok()) << eval.status();
    eval_ = std::move(*eval);
  }
  Decision Judge(const SshRequestFacts& req, const SubjectFacts& who = {.workload = "agent"}) const {
    return eval_->Evaluate(who, "build-host", Operation{&req});
  }
  Decision Exec(absl::string_view line, bool pty = false) const { return Judge(SshExecFacts(line, pty)); }
  std::unique_ptr<PolicyEvaluator> eval_;
};

TEST_F(SshPolicyTest, AnAllowListRefusesWhatItDoesNotName) {
  struct Case {
    const char* line;
    v1::Action action;
    const char* rule;  // "" for the resource default
  };
  for (const Case& c : {
           Case{"ls -la /srv", v1::ACTION_ALLOW, "allow-read-tools"},
           Case{"'cat' /etc/hostname", v1::ACTION_ALLOW, "allow-read-tools"},
           Case{"/usr/bin/git log", v1::ACTION_ALLOW, "allow-read-tools"},
           Case{"git pull --ff-only", v1::ACTION_ALLOW, "allow-git-pull"},
           Case{"env", v1::ACTION_MASK, "mask-env"},
           // Chains, substitutions and prefixes are lines that need a shell: held for review,
           // unless a rule on the raw line denies them.
           Case{"ls; id", v1::ACTION_REVIEW, "review-shell-lines"},
           Case{"ls; rm -rf /srv", v1::ACTION_DENY, "deny-rm-anywhere"},
           Case{"cat $(echo /etc/shadow)", v1::ACTION_REVIEW, "review-shell-lines"},
           Case{"LD_PRELOAD=/tmp/x.so ls", v1::ACTION_REVIEW, "review-shell-lines"},
           // Programs that run other programs are themselves: not on the list, or (env) on it
           // and then they run anything, short of a rule on the raw line.
           Case{"sh -c id", v1::ACTION_DENY, ""},
           Case{"env id", v1::ACTION_MASK, "mask-env"},
           Case{"env rm -rf /srv", v1::ACTION_DENY, "deny-rm-anywhere"},
           Case{"sh -c 'rm -rf /srv'", v1::ACTION_DENY, "deny-rm-anywhere"},
           Case{"eval id", v1::ACTION_DENY, ""},
           Case{"command id", v1::ACTION_DENY, ""},
           Case{"busybox ls", v1::ACTION_DENY, ""},
           // Binaries named like an allowed one, elsewhere.
           Case{"/tmp/ls", v1::ACTION_DENY, ""},
           Case{"./cat /etc/shadow", v1::ACTION_DENY, ""},
           Case{"/usr/bin/../../tmp/git log", v1::ACTION_DENY, ""},
           Case{"git push --force", v1::ACTION_DENY, ""},
       }) {
    Decision d = Exec(c.line);
    EXPECT_EQ(d.action, c.action) << c.line;
    EXPECT_EQ(d.rule_id, c.rule) << c.line;
    EXPECT_EQ(d.source, c.rule[0] == '\0' ? "default" : "rule") << c.line;
  }
}

// A deny-list: everything runs but what a DENY rule names.
constexpr char kDenyListPolicy[] = R"YAML(
resources:
  - {resource: box, default_action: ACTION_ALLOW}
rules:
  - id: deny-rm
    match: {ssh: {programs: [rm, shred]}}
    action: ACTION_DENY
    reason: deleting files is not allowed
  - id: deny-rm-recursive
    match: {ssh: {programs: [rm], args: ["-*[rR]*", "--recursive"]}}
    action: ACTION_DENY
)YAML";

TEST(SshDenyList, ADenyRuleCatchesEverySpellingOfItsProgram) {
  auto eval = LoadPolicyText(kDenyListPolicy, "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  auto judge = [&](absl::string_view line) {
    SshRequestFacts req = SshExecFacts(line, false);
    return (*eval)->Evaluate({}, "box", Operation{&req});
  };
  for (const char* line : {"rm /srv/x", "'rm' /srv/x", "r\"m\" /srv/x", "\\rm /srv/x", "/bin/rm /srv/x",
                           "/usr/bin/../../bin/rm /srv/x", "./rm x", "shred -u /srv/key", "'/usr/bin/shred' key"}) {
    Decision d = judge(line);
    EXPECT_EQ(d.action, v1::ACTION_DENY) << line;
    EXPECT_EQ(d.rule_id, "deny-rm") << line;
    EXPECT_EQ(d.reason, "deleting files is not allowed") << line;
  }
  // The more specific of two DENY rules is reported.
  EXPECT_EQ(judge("rm -fr /srv").rule_id, "deny-rm-recursive");
  EXPECT_EQ(judge("rm -f -R /srv").rule_id, "deny-rm-recursive");
  // A line that needs a shell cannot be taken apart: every DENY rule on programs holds.
  for (const char* line : {"ls; rm -rf /srv", "FOO=1 rm /srv/x", "$(printf rm) -rf /srv", "ls; id"}) {
    EXPECT_EQ(judge(line).action, v1::ACTION_DENY) << line;
    EXPECT_EQ(judge(line).rule_id, "deny-rm-recursive") << line;  // the more specific
  }
  EXPECT_EQ(judge("ls -la").action, v1::ACTION_ALLOW);
  // What a deny-list cannot see: a program that runs another is that program. Allow-lists
  // (SshPolicyTest.AnAllowListRefusesWhatItDoesNotName) do not have this hole.
  for (const char* line : {"sh -c 'rm -rf /srv'", "env rm -rf /srv", "find /srv -delete", "busybox rm -rf /srv"}) {
    EXPECT_EQ(judge(line).action, v1::ACTION_ALLOW) << line;
  }
}

TEST_F(SshPolicyTest, InteractiveShellsAndSubsystems) {
  Decision shell = Judge(SshShellFacts(true));
  EXPECT_EQ(shell.action, v1::ACTION_REVIEW);
  EXPECT_EQ(shell.rule_id, "review-interactive");
  Decision no_pty = Judge(SshShellFacts(false));
  EXPECT_EQ(no_pty.source, "default");
  EXPECT_EQ(no_pty.action, v1::ACTION_DENY);
  EXPECT_EQ(Judge(SshSubsystemFacts("sftp", false)).rule_id, "allow-sftp");
  EXPECT_EQ(Judge(SshSubsystemFacts("netconf", false)).source, "default");
  // An exec of a program named like the subsystem is an exec.
  EXPECT_EQ(Exec("sftp").source, "default");
  EXPECT_EQ(Exec("ls; id").review_timeout, absl::Seconds(120));
}

TEST_F(SshPolicyTest, RulesApplyToTheirOwnProtocolOnly) {
  // SQL and HTTP rules never decide an SSH request; a rule with only a subject does.
  EXPECT_NE(Exec("uptime").rule_id, "sql-reads");
  EXPECT_EQ(Exec("id").source, "default");
  EXPECT_EQ(Judge(SshExecFacts("uptime", false), {.workload = "intern"}).rule_id, "freeze-intern");
  // SSH rules never decide a SQL statement or an HTTP request (deny-rm-anywhere's regex
  // would match "DELETE FROM rm" as a line).
  auto del = sql::Classify("DELETE FROM rm WHERE id = 1");
  ASSERT_TRUE(del.ok());
  Decision by_sql = eval_->Evaluate({.workload = "agent"}, "build-host", Operation{&*del});
  EXPECT_EQ(by_sql.source, "default");
  HttpRequestFacts post{.method = "POST", .host = "build-host", .path = "/rm"};
  Decision by_http = eval_->Evaluate({.workload = "agent"}, "build-host", Operation{&post});
  EXPECT_EQ(by_http.source, "default");
  HttpRequestFacts get{.method = "GET", .host = "build-host", .path = "/"};
  EXPECT_EQ(eval_->Evaluate({.workload = "agent"}, "build-host", Operation{&get}).rule_id, "http-reads");
}

TEST(SshPolicy, AnEmptySshBlockAppliesToEverySshRequestAndNothingElse) {
  auto eval = LoadPolicyText(R"YAML(
rules:
  - {id: any-ssh, match: {ssh: {}}, action: ACTION_ALLOW}
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  SshRequestFacts shell = SshShellFacts(false);
  EXPECT_EQ((*eval)->Evaluate({}, "h", Operation{&shell}).rule_id, "any-ssh");
  auto sql = sql::Classify("SELECT 1");
  ASSERT_TRUE(sql.ok());
  Decision d = (*eval)->Evaluate({}, "db", Operation{&*sql});
  EXPECT_EQ(d.source, "default");
  EXPECT_EQ(d.action, v1::ACTION_REVIEW);  // no resources entry: the default default
}

TEST(SshPolicyLoad, ProblemsNameTheRuleAndField) {
  ExpectRefusedMatch("{kinds: [STATEMENT_KIND_SELECT], ssh: {programs: [ls]}}", "SQL conditions and an ssh block");
  ExpectRefusedMatch("{no_where: true, ssh: {}}", "a rule matches one protocol");
  ExpectRefusedMatch("{http: {methods: [GET]}, ssh: {programs: [ls]}}", "an http block and an ssh block");
  ExpectRefusedMatch("{ssh: {requests: [exec, direct-tcpip]}}",
                     "ssh.requests[1]: \"direct-tcpip\" is not a request type");
  ExpectRefusedMatch("{ssh: {command_regex: [ok, \"rm(\"]}}",
                     "ssh.command_regex[1]: rule \"r\": \"rm(\" is not a valid RE2");
}

}  // namespace
}  // namespace interlock::policy
