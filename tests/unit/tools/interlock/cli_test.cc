// The command lines of `interlock` and `interlockd` (tools/interlock/main.cc, CLI11): every
// command's help, usage errors (exit 2; 125 for `interlock run`) in one line, both
// "--flag VALUE" and "--flag=VALUE", --version. The real binaries; nothing here needs a
// running interlockd: a usage error stops before the control socket is touched.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"
#include "userspace/common/file_util.h"
#include "userspace/record/recorder.h"

namespace interlock::testing {
namespace {

using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// Every command, as the user types it (ca and assertion-key have their own subcommands).
const std::vector<std::string>& Commands() {
  static const std::vector<std::string> kCommands = {
      "run",        "status",       "sessions",        "replay",        "verify",
      "report",     "teardown",     "approvals",       "approve",       "deny",
      "grant",      "grants",       "revoke",          "reload",        "auditor-keygen",
      "ca",         "ca init",      "ca show",         "ca bundle",     "assertion-key",
      "assertion-key init",         "assertion-key show"};
  return kCommands;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  for (absl::string_view w : absl::StrSplit(s, ' ', absl::SkipEmpty())) out.emplace_back(w);
  return out;
}

CommandResult Cli(std::vector<std::string> args) {
  args.insert(args.begin(), BinaryPath("interlock"));
  return RunCommand(args);
}

class InterlockCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("interlock-cli-"); }
  void TearDown() override { RemoveTree(dir_); }
  std::string dir_;
};

TEST_F(InterlockCliTest, EveryCommandHasHelp) {
  for (const std::string& command : Commands()) {
    for (const char* flag : {"--help", "-h"}) {
      std::vector<std::string> args = Words(command);
      args.push_back(flag);
      CommandResult r = Cli(args);
      EXPECT_EQ(r.exit_code, 0) << command << " " << flag << ": " << r.err;
      EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Usage: interlock ", command, " [OPTIONS]")))
          << command;
      EXPECT_THAT(r.out, HasSubstr("-h,--help")) << command;
      EXPECT_EQ(r.err, "") << command;
    }
  }
  CommandResult top = Cli({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const std::string& command : Commands()) {
    if (command.find(' ') == std::string::npos) {
      EXPECT_THAT(top.out, MatchesRegex(absl::StrCat("(.|\n)*\n  ", command, " +[a-z](.|\n)*")));
    }
  }
}

TEST_F(InterlockCliTest, UnknownFlagIsAUsageErrorInOneLine) {
  // Each with what it requires, so that the unknown flag is the only thing wrong.
  const std::vector<std::vector<std::string>> cases = {
      {"status"},        {"sessions"},      {"replay", "abc"},
      {"verify", "abc"}, {"verify", "--audit"}, {"report"},
      {"teardown"},      {"approvals"},     {"approve", "apr-1"},
      {"deny", "apr-1", "--reason", "no"},  {"grants"},
      {"grant", "--workload", "w", "--resource", "r", "--for", "1m", "--reason", "x"},
      {"revoke", "grt-1"}, {"reload"},      {"auditor-keygen", "--out", "x"},
      {"ca", "show"},    {"ca", "init"},    {"assertion-key", "show"}};
  for (std::vector<std::string> args : cases) {
    const std::string command = absl::StrJoin(args.begin(), args.begin() + 1, " ");
    args.push_back("--bogus");
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, AllOf(StartsWith("interlock: "), HasSubstr("unexpected argument \"--bogus\""),
                             EndsWith("--help)\n")))
        << absl::StrJoin(args, " ");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out, "") << command;
  }
  CommandResult r = Cli({"ca", "init", "--state-dir", dir_, "--bogus"});
  EXPECT_EQ(r.err, "interlock: ca init: unexpected argument \"--bogus\" (interlock ca init --help)\n");
  EXPECT_NE(::access(absl::StrCat(dir_, "/interception-ca.key").c_str(), F_OK), 0)
      << "the command ran despite the usage error";
}

TEST_F(InterlockCliTest, ExtraOrMissingArgumentsAreUsageErrors) {
  const std::vector<std::vector<std::string>> cases = {
      {"status", "extra"},       {"reload", "extra"},           {"revoke", "a", "b"},
      {"approve", "a", "b"},     {"replay"},                    {"replay", "a", "b"},
      {"verify"},                {"verify", "a", "b"},          {"revoke"},
      {"deny", "apr-1"},         {"grant", "--workload", "w"},  {"auditor-keygen"},
      {"ca"},                    {"ca", "frob"},                {"ca", "bundle"},
      {"ca", "show", "--replace"}, {"assertion-key", "bogus"},  {"report", "--format", "xml"},
      {"approve", "apr-1", "--for"}, {"bogus"},                 {"--config"},
      {"replay", "a", "--channel", "1"}, {"replay", "a", "--input"}, {"replay", "a", "--asciicast", "--hex"},
      {"replay", "a", "--asciicast", "--channel", "-1"}};
  for (const std::vector<std::string>& args : cases) {
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, MatchesRegex("interlock: [^\n]+\n")) << absl::StrJoin(args, " ");
  }
  EXPECT_EQ(Cli({"bogus"}).err, "interlock: unknown command \"bogus\" (interlock --help)\n");
  EXPECT_THAT(Cli({"ca", "frob"}).err, StartsWith("interlock: ca: unknown command \"frob\", not init, show or bundle"));
  // No command at all: the overview, on stderr.
  CommandResult none = Cli({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("Usage: interlock"));
}

// `interlock run` keeps its own contract: 125 for its own failures, CMD after "--".
TEST_F(InterlockCliTest, RunUsageErrorsExit125AndNeverStartCmd) {
  const std::string marker = absl::StrCat(dir_, "/ran");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"run", "--as", "a", "--bogus", "--", "/usr/bin/touch", marker},
       "interlock: run: unexpected argument \"--bogus\" (CMD goes after --)"},
      {{"run", "--as", "a", "/usr/bin/touch", "--", "/usr/bin/touch", marker},
       "interlock: run: unexpected argument \"/usr/bin/touch\" (CMD goes after --)"},
      {{"run", "--as", "a", "/usr/bin/touch", marker},
       "interlock: run: unexpected argument \"/usr/bin/touch\" (CMD goes after --)"},
      {{"run", "--", "/usr/bin/touch", marker}, "interlock: run: --as is required"},
      {{"run", "--as=a"}, "interlock: run: no command after --"},
      {{"run", "--as", "a", "--"}, "interlock: run: no command after --"},
  };
  for (const Case& c : cases) {
    CommandResult r = Cli(c.args);
    EXPECT_EQ(r.exit_code, 125) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(r.err, StartsWith(c.message)) << absl::StrJoin(c.args, " ");
  }
  EXPECT_NE(::access(marker.c_str(), F_OK), 0) << "CMD ran";
  // CMD's own flags, even ours, are CMD's: the --bogus after "--" is not a usage error (the
  // run fails later, at --user, with 125 and that message).
  CommandResult r =
      Cli({"run", "--as", "a", "--user", "no-such-user-xyz", "--", "/usr/bin/touch", "--bogus"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_THAT(r.err, HasSubstr("run: --user no-such-user-xyz: no such user"));
  r = Cli({"run", "--as", "a", "--user=no-such-user-xyz", "--", "/usr/bin/touch", marker});
  EXPECT_THAT(r.err, HasSubstr("run: --user no-such-user-xyz: no such user"));
}

// The value reaches the command the same way in both spellings.
TEST_F(InterlockCliTest, FlagEqualsValueIsTheSameAsFlagSpaceValue) {
  for (const std::string form : {"space", "equals"}) {
    const std::string prefix = absl::StrCat(dir_, "/auditor-", form);
    CommandResult r = form == "space" ? Cli({"auditor-keygen", "--out", prefix})
                                      : Cli({"auditor-keygen", absl::StrCat("--out=", prefix)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    struct stat st {};
    ASSERT_EQ(::stat(absl::StrCat(prefix, ".key").c_str(), &st), 0) << form;
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(::stat(absl::StrCat(prefix, ".pub").c_str(), &st), 0) << form;
  }
  const std::string state = absl::StrCat(dir_, "/state");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ca", "show", "--state-dir", state},
        std::vector<std::string>{"ca", "show", absl::StrCat("--state-dir=", state)}}) {
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, absl::StrCat("interlock: ca show: no CA in ", state,
                                  " (create one with `interlock ca init`)\n"));
  }
  // --config before or after the command, either spelling: the file is the one read.
  const std::string config = absl::StrCat(dir_, "/broken.yaml");
  ASSERT_TRUE(WriteFileAtomic(config, "state_dir: [\n", 0600).ok());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--config", config, "sessions"},
        std::vector<std::string>{absl::StrCat("--config=", config), "sessions"},
        std::vector<std::string>{"sessions", "--config", config},
        std::vector<std::string>{"sessions", absl::StrCat("--config=", config)}}) {
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, HasSubstr(config)) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, ::testing::Not(HasSubstr("--help"))) << "a config error, not usage";
  }
}

// A recording of `protocol` under <dir>/recordings, written as interlockd writes one.
void WriteRecording(const std::string& dir, const std::string& id, const std::string& protocol) {
  v1::SessionOpen open;
  open.set_session_id(id);
  open.set_resource("build-host");
  open.set_protocol(protocol);
  const record::RecordingKey key = record::RecordingKey::Generate();
  FakeClock clock;
  auto rec = record::Recorder::Create(absl::StrCat(dir, "/recordings/", id, ".rec"), open, key, clock);
  ASSERT_TRUE(rec.ok()) << rec.status();
  v1::SshEvent e;
  e.set_channel(0);
  e.mutable_request()->set_type("pty-req");
  e.mutable_request()->set_term("xterm");
  e.mutable_request()->set_cols(90);
  e.mutable_request()->set_rows(30);
  ASSERT_TRUE((*rec)->AppendSsh(e).ok());
  e.mutable_request()->set_type("shell");
  e.mutable_request()->set_decision("allow");
  ASSERT_TRUE((*rec)->AppendSsh(e).ok());
  clock.Advance(absl::Milliseconds(1500));
  e.mutable_data()->set_stream(v1::SSH_STREAM_STDOUT);
  e.mutable_data()->set_payload("hi\r\n");
  ASSERT_TRUE((*rec)->AppendSsh(e).ok());
  ASSERT_TRUE((*rec)->Close(v1::SessionClose()).ok());
}

TEST_F(InterlockCliTest, ReplayOfAnSshSessionAndItsAsciicast) {
  const std::string state = absl::StrCat(dir_, "/state");
  ASSERT_TRUE(MakeDirs(absl::StrCat(state, "/recordings"), 0700).ok());
  const std::string config = absl::StrCat(dir_, "/interlock.yaml");
  ASSERT_TRUE(WriteFileAtomic(config, absl::StrCat("state_dir: ", state, "\n"), 0600).ok());
  WriteRecording(state, "ssh-1", "ssh");
  WriteRecording(state, "tcp-1", "tcp");

  CommandResult r = Cli({"--config", config, "replay", "ssh-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("shell       interactive shell (TERM xterm, 90x30)  -> allow\n"));
  EXPECT_THAT(r.out, HasSubstr("stdout      hi\n"));

  // Its data counts in the session list (no index entry: the file is read).
  r = Cli({"--config", config, "sessions", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith(R"({"session_id":"ssh-1",)"));
  EXPECT_THAT(r.out.substr(0, r.out.find('\n')), HasSubstr(R"("bytes_to_agent":"4")"));

  r = Cli({"--config", config, "replay", "ssh-1", "--asciicast"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"version\": 2, \"width\": 90, \"height\": 30, \"timestamp\": 1767225600, \"env\": {\"TERM\": "
            "\"xterm\"}, \"title\": \"build-host ssh-1 channel 0\"}\n"
            "[1.500000, \"o\", \"hi\\r\\n\"]\n");

  r = Cli({"--config", config, "replay", "ssh-1", "--asciicast", "--channel", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "interlock: replay: asciicast: no channel 4 (channels: 0)\n");
  EXPECT_EQ(r.out, "");

  r = Cli({"--config", config, "replay", "tcp-1", "--asciicast"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "interlock: replay: asciicast: session tcp-1 is a \"tcp\" session, not ssh\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(InterlockCliTest, Version) {
  CommandResult r = Cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, absl::StrCat("interlock ", INTERLOCK_VERSION, "\n"));
  r = RunCommand({BinaryPath("interlockd"), "--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, absl::StrCat("interlockd ", INTERLOCK_VERSION, "\n"));
}

TEST_F(InterlockCliTest, InterlockdFlags) {
  CommandResult r = RunCommand({BinaryPath("interlockd"), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, AllOf(HasSubstr("--config PATH"), HasSubstr("--check-config"),
                           HasSubstr("--verbose"), HasSubstr("--version")));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--bogus"}, std::vector<std::string>{"extra"},
        std::vector<std::string>{"--config"}}) {
    std::vector<std::string> argv = {BinaryPath("interlockd")};
    argv.insert(argv.end(), args.begin(), args.end());
    r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_THAT(r.err, MatchesRegex("interlockd: [^\n]+ \\(interlockd --help\\)\n")) << args[0];
  }
  const std::string config = absl::StrCat(dir_, "/missing.yaml");
  for (const std::string& flag : {std::string("--config=") + config, std::string("--config")}) {
    std::vector<std::string> argv = {BinaryPath("interlockd"), "--check-config", flag};
    if (flag == "--config") argv.push_back(config);
    r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, AllOf(StartsWith("interlockd: config: "), HasSubstr(config)));
  }
}

}  // namespace
}  // namespace interlock::testing
