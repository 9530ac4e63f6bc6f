// A transparent session an agent cannot use against its approver: the agent sees the
// server's own backend pid (tools that correlate PQbackendPID() with pg_stat_activity work),
// and text it controls reaches the approver's terminal only escaped. Through the real
// redirect with the shipped bank policy (evasion_fixture.h).
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "tests/integration/evasion_fixture.h"
#include "userspace/common/file_util.h"

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

// A held statement tells the agent why it waits, at once, in its own protocol: a human at
// psql (or an LLM reading notices) sees the approval id, the rule and the deadline.
TEST_F(EvasionTest, HeldStatementSaysWhyAtOnce) {
  std::vector<std::string> argv = h_->RunArgv("billing-agent");
  for (const char* a : {"/usr/bin/psql", "-X", "-h"}) argv.push_back(a);
  argv.insert(argv.end(), {pg_->address(), "-p", absl::StrCat(pg_->port()), "-U", "agent", "-d", "bank", "-c",
                           "DELETE FROM customers"});
  const std::string log = absl::StrCat(dir_, "/held-agent.log");
  pid_t agent = Spawn(argv, log);
  ASSERT_GT(agent, 0);
  std::string id = h_->WaitForPendingApproval();
  ASSERT_FALSE(id.empty()) << h_->DaemonLog();
  // Still held (nobody decided), and the agent already knows.
  bool told = WaitFor([&] {
    auto text = ReadFile(log);
    return text.ok() && absl::StrContains(*text, absl::StrCat("statement held for approval ", id));
  });
  auto text = ReadFile(log);
  EXPECT_TRUE(told) << (text.ok() ? *text : "") << h_->DaemonLog();
  EXPECT_THAT(text.ok() ? *text : "", HasSubstr("review-unfiltered-writes"));
  EXPECT_EQ(h_->Approvals().size(), 1u);
  EXPECT_EQ(h_->Cli({"deny", id, "--reason", "no"}).exit_code, 0);
  StopProcess(agent, 30);
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "2");
}

// Cancelling a held statement (psycopg2's conn.cancel(), libpq's PQcancel: a
// CancelRequest on a new connection through the same redirect) withdraws the hold: the
// agent gets 57014 as for any cancel, the request expires (no approver can release it
// later), and the session carries on.
TEST_F(EvasionTest, CancelWithdrawsAHeldStatement) {
  AgentResult r;
  JoinedThread agent([&] {
    r = Python(R"PY(import threading, time
def cancel_later():
    time.sleep(3)
    conn.cancel()
threading.Thread(target=cancel_later).start()
try:
    cur.execute("DELETE FROM customers")
    print("RAN")
except psycopg2.Error as e:
    print("CANCELLED", e.pgcode)
cur.execute("SELECT 40 + 2")
print("STILL", cur.fetchone()[0]))PY");
  });
  std::string id = h_->WaitForPendingApproval();
  ASSERT_FALSE(id.empty()) << h_->DaemonLog();
  agent.join();
  EXPECT_THAT(r.out, HasSubstr("CANCELLED 57014")) << r.out << h_->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("STILL 42")) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("RAN")));
  // The request is over: approving it now releases nothing.
  EXPECT_TRUE(h_->Approvals().empty());
  CommandResult late = h_->Cli({"approve", id});
  EXPECT_NE(late.exit_code, 0) << late.out;
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "2");
  bool withdrawn = false;
  std::string seen;
  for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_CANCEL)) {
    withdrawn |= e.reason() == "hold_withdrawn";
    absl::StrAppend(&seen, e.outcome(), "/", e.reason(), ": ", e.detail(), "\n");
  }
  EXPECT_TRUE(withdrawn) << seen;
}

// An approver deciding on a held extended-protocol statement sees the values bound to it,
// masked as results are (a card number shows its last four digits only) — and the audit
// trail and webhooks never carry them.
TEST_F(EvasionTest, ApproverSeesBoundParametersMasked) {
  ASSERT_EQ(Direct("CREATE PROCEDURE refund(card text, note text) LANGUAGE sql AS $$ SELECT 1 $$"), "");
  const std::string body = R"PY(
# CALL has no rule in the bank policy: the resource default holds it for review.
send(b"P", b"\0CALL refund($1, $2)\0\0\0")
v1, v2 = b"4111 1111 1111 1111", b"for Ada"
send(b"B", b"\0\0\0\0\0\x02" + struct.pack("!I", len(v1)) + v1 + struct.pack("!I", len(v2)) + v2 + b"\0\0")
send(b"E", b"\0\0\0\0\0")
send(b"S", b"")
until_ready()
)PY";
  AgentResult agent;
  JoinedThread t([&] { agent = RawProtocol(body); });
  std::string id = h_->WaitForPendingApproval();
  ASSERT_FALSE(id.empty()) << h_->DaemonLog();
  CommandResult list = h_->Cli({"approvals"});
  EXPECT_THAT(list.out, HasSubstr("CALL refund($1, $2)")) << list.out;
  EXPECT_THAT(list.out, HasSubstr("$1         **** **** **** 1111")) << list.out;
  EXPECT_THAT(list.out, HasSubstr("$2         for Ada")) << list.out;
  EXPECT_THAT(list.out, Not(HasSubstr("4111 1111 1111 1111")));
  EXPECT_EQ(h_->Cli({"deny", id, "--reason", "no refunds"}).exit_code, 0);
  t.join();
  EXPECT_THAT(agent.out, HasSubstr("no refunds")) << agent.out;
  for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_APPROVAL)) {
    EXPECT_EQ(e.approval().parameters_size(), 0) << "bound values are for the approver only";
    EXPECT_EQ(e.approval().protocol(), "postgres");
  }
}

// A card number, SSN or IBAN an agent writes into a statement (a literal, a bound value) is
// not kept in clear in the session recording either: the recording shows the statement with
// $n and empty values, and the originals open only with the auditor key (PCI DSS 3.5.1).
TEST_F(EvasionTest, StatementLiteralsAreSealedInTheRecording) {
  AgentResult q = Psql(std::vector<std::string>{"SELECT name FROM customers WHERE card_number = '4111 1111 1111 1111'",
                        "SELECT name FROM customers WHERE ssn = '078-05-1120'"});
  ASSERT_EQ(q.exit_code, 0) << q.out << h_->DaemonLog();
  AgentResult b = RawProtocol(R"PY(
send(b"P", b"\0SELECT name FROM customers WHERE iban = $1\0\0\0")
v = b"GB82WEST12345698765432"
send(b"B", b"\0\0\0\0\0\x01" + struct.pack("!I", len(v)) + v + b"\0\0")
send(b"E", b"\0\0\0\0\0")
send(b"S", b"")
until_ready()
)PY");
  ASSERT_EQ(b.exit_code, 0) << b.out << h_->DaemonLog();
  EXPECT_THAT(b.out, HasSubstr("Ada Lovelace"));  // the statement ran with the value
  std::vector<std::string> ids;
  ASSERT_TRUE(WaitFor([&] {
    ids.clear();
    for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_SESSION_END)) ids.push_back(e.session_id());
    return ids.size() >= 2;
  })) << h_->DaemonLog();
  std::string plain_all, unsealed_all;
  for (const std::string& id : ids) {
    auto file = ReadFile(absl::StrCat(h_->state_dir(), "/recordings/", id, ".rec"));
    ASSERT_TRUE(file.ok()) << file.status();
    ExpectNoSecrets(AgentResult{0, *file}, absl::StrCat("recording file of ", id));
    CommandResult plain = h_->Cli({"replay", id});
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    ExpectNoSecrets(AgentResult{0, plain.out}, absl::StrCat("replay of ", id));
    plain_all += plain.out;
    CommandResult unsealed = h_->Cli({"replay", id, "--unseal", absl::StrCat(dir_, "/auditor.key")});
    ASSERT_EQ(unsealed.exit_code, 0) << unsealed.err;
    unsealed_all += unsealed.out;
    EXPECT_EQ(h_->Cli({"verify", id}).exit_code, 0) << "the rewritten recording still verifies";
  }
  EXPECT_THAT(plain_all, HasSubstr("WHERE card_number = $1"));
  EXPECT_THAT(plain_all, HasSubstr("$1 = (withheld)"));
  EXPECT_THAT(unsealed_all, HasSubstr("4111 1111 1111 1111"));
  EXPECT_THAT(unsealed_all, HasSubstr("078-05-1120"));
  EXPECT_THAT(unsealed_all, HasSubstr("GB82WEST12345698765432"));
}

}  // namespace
}  // namespace interlock::testing
