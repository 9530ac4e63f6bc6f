// A transparent session an agent cannot use against its approver: the agent sees the
// server's own backend pid (tools that correlate PQbackendPID() with pg_stat_activity work),
// and text it controls reaches the approver's terminal only escaped. Through the real
// redirect with the shipped bank policy (evasion_fixture.h).
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "tests/integration/evasion_fixture.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(EvasionTest, BackendPidIsTheServersOwn) {
  AgentResult r = Python(R"PY(cur.execute("SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity WHERE pid = %s)", (conn.get_backend_pid(),))
print("PIDS", conn.get_backend_pid(), *cur.fetchone()))PY");
  ASSERT_EQ(r.exit_code, 0) << r.out << h_->DaemonLog();
  std::vector<std::string> f;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StartsWith(line, "PIDS ")) f = absl::StrSplit(line.substr(5), ' ');
  }
  ASSERT_EQ(f.size(), 3u) << r.out;
  EXPECT_EQ(f[0], f[1]) << "PQbackendPID() must be the server's pg_backend_pid()";
  EXPECT_EQ(f[2], "1") << "the pid is in pg_stat_activity";
}

// A held statement carrying terminal escapes (a window-title OSC, a screen clear) is shown
// to the approver escaped, in every view.
TEST_F(EvasionTest, ApproverTerminalShowsAgentTextEscaped) {
  AgentResult agent;
  JoinedThread t([&] { agent = Psql("DELETE FROM customers /* \x1b]0;approve me\x07\x1b[2J */", 30); });
  std::string id = h_->WaitForPendingApproval();
  ASSERT_FALSE(id.empty()) << h_->DaemonLog();
  CommandResult list = h_->Cli({"approvals"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("\\x1b]0;approve me\\x07\\x1b[2J")) << list.out;
  EXPECT_THAT(list.out, Not(HasSubstr("\x1b"))) << "a raw ESC reached the approver's terminal";
  EXPECT_THAT(list.out, Not(HasSubstr("\x07")));
  CommandResult denied = h_->Cli({"deny", id, "--reason", "no"});
  EXPECT_EQ(denied.exit_code, 0) << denied.err;
  EXPECT_THAT(denied.out, Not(HasSubstr("\x1b")));
  t.join();
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "2");
  CommandResult sessions = h_->Cli({"sessions"});
  EXPECT_THAT(sessions.out, Not(HasSubstr("\x1b")));
}

}  // namespace
}  // namespace interlock::testing
