// SshMatcher (policy.proto SshMatch) against SSH channel requests, table-driven: first the
// ways an agent could try to get a command past a DENY rule or through an ALLOW rule, then
// every field.
#include "userspace/policy/ssh_match.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace interlock::policy {
namespace {

using ::testing::HasSubstr;

constexpr v1::Action kAllow = v1::ACTION_ALLOW;
constexpr v1::Action kDeny = v1::ACTION_DENY;
constexpr v1::Action kReview = v1::ACTION_REVIEW;
constexpr v1::Action kMask = v1::ACTION_MASK;

SshRequestFacts Exec(absl::string_view line, bool pty = false) { return SshExecFacts(line, pty); }

struct Case {
  std::string match;  // SshMatch in protobuf text format
  v1::Action action;
  SshRequestFacts req;
  bool holds;
};

// Runs every case, naming the failing one.
void ExpectCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    v1::SshMatch m;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(c.match, &m)) << c.match;
    auto matcher = SshMatcher::Create(m, "rules[0].match", "r");
    ASSERT_TRUE(matcher.ok()) << matcher.status();
    EXPECT_EQ((*matcher)->Holds(c.req, c.action), c.holds)
        << "match {" << c.match << "} action " << v1::Action_Name(c.action) << " command [" << c.req.command
        << "]";
  }
}

TEST(SshMatch, ADenyByProgramSeesThroughQuotingAndPaths) {
  const char* rm = "programs: 'rm'";
  ExpectCases({
      {rm, kDeny, Exec("rm -rf /"), true},
      {rm, kDeny, Exec("'rm' -rf /"), true},
      {rm, kDeny, Exec("r\"m\" -rf /"), true},
      {rm, kDeny, Exec("r'm' -rf /"), true},
      {rm, kDeny, Exec("\\rm -rf /"), true},
      {rm, kDeny, Exec("  rm\t-rf /"), true},
      {rm, kDeny, Exec("/bin/rm -rf /"), true},
      {rm, kDeny, Exec("/usr/bin/../bin/rm -rf /"), true},
      {rm, kDeny, Exec("./rm -rf /"), true},
      {rm, kDeny, Exec("bin/rm -rf /"), true},
      {rm, kDeny, Exec("rmdir /tmp/x"), false},
      {rm, kDeny, Exec("'rm ' -rf /"), false},  // another program: "rm " with a space
      {rm, kReview, Exec("'/bin/rm' -rf /"), true},
  });
}

TEST(SshMatch, ALineThatNeedsAShellIsDeniedByAProgramRule) {
  const char* rm = "programs: 'rm'";
  for (const char* line : {"ls; rm -rf /", "ls && rm -rf /", "ls || rm -rf /", "ls | rm -rf /",
                           "ls & rm -rf /", "$(echo rm) -rf /", "`echo rm` -rf /", "r* -rf /", "r? -rf /",
                           "FOO=1 rm -rf /", "PATH=/tmp rm -rf /", "ls\nrm -rf /", "{rm,-rf,/}", "rm -rf ~",
                           "rm -rf / > /dev/null", "r\"m\"$IFS-rf /", "(rm -rf /)", "ls #", "rm 'unterminated",
                           "", "   "}) {
    SshRequestFacts req = Exec(line);
    EXPECT_TRUE(req.needs_shell) << line;
    EXPECT_FALSE(req.shell_reason.empty()) << line;
    ExpectCases({
        {rm, kDeny, req, true},
        {rm, kReview, req, true},
        {"args: '-rf'", kDeny, req, true},
        {rm, kAllow, req, false},
        {rm, kMask, req, false},
        {"args: '*'", kAllow, req, false},
    });
  }
}

TEST(SshMatch, AnAllowByProgramLetsOnlyThatProgramThrough) {
  const char* ls = "programs: 'ls'";
  ExpectCases({
      {ls, kAllow, Exec("ls -la /srv"), true},
      {ls, kAllow, Exec("'ls' -la"), true},
      {ls, kAllow, Exec("l\"s\""), true},
      {ls, kAllow, Exec("ls; rm -rf /"), false},
      {ls, kAllow, Exec("ls $(rm -rf /)"), false},
      {ls, kAllow, Exec("ls `id`"), false},
      {ls, kAllow, Exec("FOO=1 ls"), false},
      // A binary named ls elsewhere (the agent may have uploaded it): not this rule's ls.
      {ls, kAllow, Exec("/tmp/ls"), false},
      {ls, kAllow, Exec("./ls"), false},
      {ls, kAllow, Exec("/bin/ls"), false},
      {ls, kMask, Exec("/tmp/ls"), false},
      {"programs: '/usr/bin/ls'", kAllow, Exec("/usr/bin/ls -l"), true},
      {"programs: '/usr/bin/*'", kAllow, Exec("/usr/bin/id"), true},
      // Paths the spelling cannot place: ".." may leave /usr/bin, symlinks or not.
      {"programs: '/usr/bin/*'", kAllow, Exec("/usr/bin/../../tmp/evil"), false},
      {"programs: '/usr/bin/*'", kAllow, Exec("/usr/bin/./id"), false},
      {"programs: '/usr/bin/*'", kAllow, Exec("/usr//bin/id"), false},
      {"programs: '*'", kAllow, Exec("../x"), false},
      {"programs: '*'", kAllow, Exec("/opt/tool"), true},
  });
}

TEST(SshMatch, AFullPathDenyHoldsForPathsItCannotPlace) {
  const char* secret = "programs: '/opt/secret/*'";
  ExpectCases({
      {secret, kDeny, Exec("/opt/secret/tool"), true},
      {secret, kDeny, Exec("/opt//secret/tool"), true},
      {secret, kDeny, Exec("/opt/./secret/tool"), true},
      {secret, kDeny, Exec("/opt/x/../secret/tool"), true},
      {secret, kDeny, Exec("secret/tool"), true},
      // Found through PATH: a full-path pattern does not judge bare names (add "tool").
      {secret, kDeny, Exec("tool"), false},
      {secret, kDeny, Exec("/opt/other/tool"), false},
      {"programs: 'rm'", kDeny, Exec("/opt//secret/tool"), false},
  });
}

TEST(SshMatch, ArgumentsAnyOfAfterQuoteRemoval) {
  const char* recursive = "programs: 'rm' args: '-*r*' args: '-*R*' args: '--recursive'";
  ExpectCases({
      {recursive, kDeny, Exec("rm -rf /srv"), true},
      {recursive, kDeny, Exec("rm -fr /srv"), true},
      {recursive, kDeny, Exec("rm -f -R /srv"), true},
      {recursive, kDeny, Exec("rm '-r' /srv"), true},
      {recursive, kDeny, Exec("rm --recursive /srv"), true},
      {recursive, kDeny, Exec("rm /srv/x"), false},
      {recursive, kDeny, Exec("rm"), false},  // no arguments: none matches
      {recursive, kDeny, Exec("ls -R /srv"), false},
      // "*" crosses '/': "/srv/*" is everything below /srv, spelled from the root as sent.
      {"args: '/srv/*'", kDeny, Exec("cat /srv/a/b/c"), true},
      {"args: '/srv/*'", kDeny, Exec("cat '/srv/a b'"), true},
      {"args: '/srv/*'", kDeny, Exec("cat //srv/a"), false},
      {"args: '*/srv/*'", kDeny, Exec("cat //srv/a"), true},
      // The program is not an argument.
      {"args: 'cat'", kDeny, Exec("cat /etc/passwd"), false},
      // Any one matching argument lets an ALLOW rule through, whatever the others.
      {"programs: 'git' args: 'status'", kAllow, Exec("git -c core.pager=sh status"), true},
  });
}

TEST(SshMatch, CommandsAndRegexJudgeTheRawLine) {
  ExpectCases({
      {"commands: 'git pull*'", kAllow, Exec("git pull --ff-only"), true},
      {"commands: 'git pull*'", kAllow, Exec("'git' pull"), false},
      {"commands: 'rm -rf *'", kDeny, Exec("rm  -rf /"), false},  // spacing counts: use programs
      {"commands: 'rm -rf *'", kDeny, Exec("rm -rf /; ls"), true},
      // A glob's "*" also covers shell constructs: an ALLOW rule's "ls *" lets a chain through...
      {"commands: 'ls *'", kAllow, Exec("ls ; rm -rf /"), true},
      // ... a regex spelling out the characters it allows does not.
      {"command_regex: '^ls( [-a-zA-Z0-9_./]+)*$'", kAllow, Exec("ls -la /srv"), true},
      {"command_regex: '^ls( [-a-zA-Z0-9_./]+)*$'", kAllow, Exec("ls ; rm -rf /"), false},
      {"command_regex: '^ls( [-a-zA-Z0-9_./]+)*$'", kAllow, Exec("ls -la\nrm -rf /"), false},
      // Partial match; any of the patterns.
      {"command_regex: 'rm\\\\s'", kDeny, Exec("sudo rm -rf /"), true},
      {"command_regex: 'shutdown' command_regex: 'rm\\\\s'", kDeny, Exec("x=1; rm -rf /"), true},
      {"command_regex: 'rm\\\\s'", kDeny, Exec("rmdir x"), false},
      // Byte by byte: a byte that is not UTF-8 does not stop ".", nor does a line break.
      {"command_regex: 'rm.*-rf'", kDeny, Exec("rm \xff -rf /"), true},
      {"command_regex: 'rm.*-rf'", kDeny, Exec("rm x\n-rf /"), true},
      // The raw line, whatever the action: no fail-closed reading needed.
      {"command_regex: '^ls'", kAllow, Exec("ls; id"), true},
      {"command_regex: '^ls'", kDeny, Exec("id; ls"), false},
  });
}

TEST(SshMatch, ShellConditionHoldsOnlyForLinesThatNeedAShell) {
  ExpectCases({
      {"shell: true", kReview, Exec("ls | grep x"), true},
      {"shell: true", kReview, Exec("FOO=1 rm"), true},
      {"shell: true", kReview, Exec("ls -l 'a;b'"), false},  // quoted: no shell construct
      {"shell: true", kReview, SshShellFacts(false), false},
      {"shell: true", kReview, SshSubsystemFacts("sftp", false), false},
      {"shell: true commands: 'ls *'", kDeny, Exec("ls | sh"), true},
      {"shell: true commands: 'ls *'", kDeny, Exec("cat | sh"), false},
  });
}

TEST(SshMatch, RequestTypesSubsystemsAndPty) {
  const SshRequestFacts sftp = SshSubsystemFacts("sftp", false);
  const SshRequestFacts shell_pty = SshShellFacts(true);
  ExpectCases({
      {"", kDeny, Exec("ls"), true},
      {"", kDeny, shell_pty, true},
      {"", kDeny, sftp, true},
      {"requests: 'exec'", kDeny, Exec("ls"), true},
      {"requests: 'exec'", kDeny, shell_pty, false},
      {"requests: 'shell'", kDeny, shell_pty, true},
      {"requests: 'shell' requests: 'subsystem'", kDeny, sftp, true},
      {"requests: 'subsystem'", kDeny, Exec("sftp"), false},
      {"subsystems: 'sftp'", kDeny, sftp, true},
      {"subsystems: 'sft*'", kDeny, sftp, true},
      {"subsystems: 'sftp'", kDeny, SshSubsystemFacts("netconf", false), false},
      // subsystems never hold for exec or shell, even a DENY rule's.
      {"subsystems: 'sftp'", kDeny, Exec("sftp"), false},
      {"subsystems: 'sftp'", kDeny, shell_pty, false},
      // exec-only conditions never hold for shell or subsystem requests.
      {"programs: '*'", kDeny, shell_pty, false},
      {"args: '*'", kDeny, sftp, false},
      {"commands: '*'", kDeny, shell_pty, false},
      {"command_regex: ''", kDeny, sftp, false},
      {"pty: true", kReview, shell_pty, true},
      {"pty: true", kReview, SshShellFacts(false), false},
      {"pty: true", kReview, Exec("top", true), true},
      {"pty: true programs: 'top'", kReview, Exec("top", false), false},
      {"requests: 'shell' pty: true", kReview, Exec("top", true), false},
  });
}

TEST(SshMatch, FactsFilledByHandWithoutTheAnalysisFailClosed) {
  SshRequestFacts raw{.kind = SshRequestFacts::Kind::kExec, .command = "ls"};
  SshRequestFacts no_argv{.kind = SshRequestFacts::Kind::kExec, .command = "ls", .needs_shell = false};
  ExpectCases({
      {"programs: 'ls'", kAllow, raw, false},
      {"programs: 'rm'", kDeny, raw, true},
      {"programs: 'ls'", kAllow, no_argv, false},
      {"args: 'x'", kDeny, no_argv, true},
  });
}

TEST(SshMatch, ExecFactsCarryTheAnalysis) {
  SshRequestFacts plain = SshExecFacts("git -C '/srv/app repo' pull", true);
  EXPECT_EQ(plain.kind, SshRequestFacts::Kind::kExec);
  EXPECT_EQ(plain.command, "git -C '/srv/app repo' pull");
  EXPECT_THAT(plain.argv, ::testing::ElementsAre("git", "-C", "/srv/app repo", "pull"));
  EXPECT_FALSE(plain.needs_shell);
  EXPECT_TRUE(plain.shell_reason.empty());
  EXPECT_TRUE(plain.pty);
  SshRequestFacts chain = SshExecFacts("uptime && rm -rf /srv", false);
  EXPECT_TRUE(chain.needs_shell);
  EXPECT_TRUE(chain.argv.empty());
  EXPECT_THAT(chain.shell_reason, HasSubstr("'&'"));
  SshRequestFacts sftp = SshSubsystemFacts("sftp", false);
  EXPECT_EQ(sftp.kind, SshRequestFacts::Kind::kSubsystem);
  EXPECT_EQ(sftp.command, "sftp");
}

TEST(SshMatchCreate, RefusesUnknownRequestTypesAndInvalidRegexNamingTheRule) {
  v1::SshMatch m;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "requests: 'exec' requests: 'x11-req' command_regex: 'ok' command_regex: '(unclosed'", &m));
  auto matcher = SshMatcher::Create(m, "rules[4].match", "deny-rm");
  ASSERT_FALSE(matcher.ok());
  EXPECT_EQ(matcher.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(matcher.status().message(), HasSubstr("rules[4].match.ssh.requests[1]: \"x11-req\" is not"));
  EXPECT_THAT(matcher.status().message(),
              HasSubstr("rules[4].match.ssh.command_regex[1]: rule \"deny-rm\": \"(unclosed\" is not a valid RE2"));
}

}  // namespace
}  // namespace interlock::policy
