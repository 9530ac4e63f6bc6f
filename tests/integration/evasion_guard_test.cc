// The guard judges what the server will run: an unprivileged agent tries to make the server
// read a statement differently from the guard (parser settings changed in the same write),
// to change its role by every spelling and at startup, and to reuse an approval window for
// a prepared name it re-prepared. Each case runs through the real redirect against the
// shipped bank policy (evasion_fixture.h) and checks, as the superuser, that nothing the
// policy holds or denies ran.
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "interlock/v1/approval.pb.h"
#include "interlock/v1/events.pb.h"
#include "tests/integration/evasion_fixture.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A PostgreSQL client of a few lines that writes exactly the bytes it is told to, several
// messages in one write: what no library sends by itself. argv: host port mode [k=v ...].
constexpr char kRawClient[] = R"PY(
import socket, struct, sys, time
def msg(t, body): return t + struct.pack('!i', len(body) + 4) + body
def cstr(s): return s.encode('latin1') + b'\0'
def startup(params):
    body = struct.pack('!i', 196608) + b''.join(cstr(k) + cstr(v) for k, v in params) + b'\0'
    return struct.pack('!i', len(body) + 4) + body
def Q(sql): return msg(b'Q', cstr(sql))
def P(sql): return msg(b'P', b'\0' + cstr(sql) + struct.pack('!h', 0))
B = msg(b'B', b'\0\0' + struct.pack('!hhh', 0, 0, 0))
E = msg(b'E', b'\0' + struct.pack('!i', 0))
S = msg(b'S', b'')
def F(oid, args):
    body = struct.pack('!ih', oid, 0) + struct.pack('!h', len(args))
    for a in args: body += struct.pack('!i', len(a)) + a.encode()
    return msg(b'F', body + struct.pack('!h', 0))
def read(sock, rfqs, timeout):
    sock.settimeout(timeout)
    buf = b''; n = 0
    try:
        while n < rfqs:
            while len(buf) < 5 or len(buf) < 1 + struct.unpack('!i', buf[1:5])[0]:
                d = sock.recv(65536)
                if not d: print('CLOSED'); return
                buf += d
            l = struct.unpack('!i', buf[1:5])[0]; t = buf[0:1]; body = buf[5:1 + l]; buf = buf[1 + l:]
            if t in (b'E', b'N'):
                f = dict((x[:1].decode(), x[1:].decode('latin1')) for x in body.split(b'\0') if x)
                print(t.decode(), f.get('S'), f.get('C'), f.get('M'))
            elif t == b'C': print('C', body[:-1].decode())
            elif t == b'D': print('D', body)
            elif t == b'Z': print('Z'); n += 1
            elif t == b'S': print('S', body.split(b'\0')[:2])
    except socket.timeout:
        print('TIMEOUT')
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=30)
s.sendall(startup([('user', 'agent'), ('database', 'bank')]))
read(s, 1, 30)
crafted = "SELECT 'a\\' , ' ; DELETE FROM customers; -- '"
if mode == 'simple':
    s.sendall(Q("SET standard_conforming_strings = off") + Q(crafted))
    read(s, 2, 5)
elif mode == 'set_config':
    s.sendall(Q("SELECT set_config('standard_conforming_strings', 'off', false)") + Q(crafted))
    read(s, 2, 5)
elif mode == 'extended':
    s.sendall(P("SET standard_conforming_strings = off") + B + E + P(crafted) + B + E + S)
    read(s, 1, 10)
elif mode == 'extended_two_batches':
    s.sendall(P("SET standard_conforming_strings = off") + B + E + S + P(crafted) + B + E + S)
    read(s, 2, 5)
elif mode == 'sjis':
    # In SJIS 0x95 0x5c is one character: the server ends the string at the next quote.
    s.sendall(Q("SET client_encoding = 'SJIS'"))
    read(s, 1, 10)
    s.sendall(Q("SELECT E'\x95\\' ; DELETE FROM customers; -- '"))
    read(s, 1, 10)
elif mode == 'sjis_pipelined':
    s.sendall(Q("SET client_encoding = 'SJIS'") + Q("SELECT E'\x95\\' ; DELETE FROM customers; -- '"))
    read(s, 2, 10)
elif mode == 'parse_role':
    s.sendall(P("SELECT set_config('role', 'bank_admin', false)") + B + E + S + Q("SELECT current_user"))
    read(s, 2, 10)
elif mode == 'fastpath_role':
    s.sendall(F(2078, ['role', 'bank_admin', 'f']))
    read(s, 1, 10)
    s.sendall(Q("SELECT current_user"))
    read(s, 1, 10)
s.close()
)PY";

class EvasionGuardTest : public EvasionTest {
 protected:
  void SetUp() override {
    EvasionTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    // A role the login role may switch to: had the guard let a role change through, the
    // server would have made it.
    Direct("CREATE ROLE bank_admin NOLOGIN");
    Direct("GRANT bank_admin TO bank_rw");
    ASSERT_EQ(Direct("SELECT pg_has_role('bank_rw', 'bank_admin', 'MEMBER')"), "t");
    raw_client_ = absl::StrCat(dir_, "/raw_client.py");
    std::ofstream(raw_client_) << kRawClient;
    ::chmod(raw_client_.c_str(), 0644);
  }

  AgentResult Raw(const std::string& mode) {
    CommandResult r = h_->RunAgent(
        "billing-agent", {"/usr/bin/python3", raw_client_, pg_->address(), absl::StrCat(pg_->port()), mode},
        AgentOptions{.timeout_s = 60});
    return {r.exit_code, absl::StrCat(r.out, "\n", r.err)};
  }

  // psql as the agent with extra environment (PGOPTIONS, PGCLIENTENCODING, ...).
  AgentResult PsqlWithEnv(const std::vector<std::string>& env, const std::string& sql) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "PGPASSWORD"};
    argv.insert(argv.end(), env.begin(), env.end());
    for (const char* a : {"/usr/bin/psql", "-X", "-At", "-h"}) argv.push_back(a);
    argv.insert(argv.end(), {pg_->address(), "-p", absl::StrCat(pg_->port()), "-U", "agent", "-d", "bank", "-c", sql});
    CommandResult r = h_->RunAgent("billing-agent", argv, AgentOptions{.timeout_s = 60});
    return {r.exit_code, absl::StrCat(r.out, "\n", r.err)};
  }

  std::vector<v1::AuditEvent> EventsOf(v1::AuditKind kind) {
    std::vector<v1::AuditEvent> out;
    for (v1::AuditEvent& e : h_->AuditEvents()) {
      if (e.kind() == kind) out.push_back(std::move(e));
    }
    return out;
  }

  std::vector<v1::ApprovalRequest> Pending() {
    CommandResult r = h_->Cli({"approvals", "--json"});
    std::vector<v1::ApprovalRequest> out;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      v1::ApprovalRequest a;
      if (google::protobuf::util::JsonStringToMessage(std::string(line), &a).ok()) out.push_back(a);
    }
    return out;
  }

  std::string raw_client_;
};

// SET standard_conforming_strings = off and, in the same write, a string that reads as one
// harmless SELECT with the setting on and as a SELECT plus `DELETE FROM customers` with it
// off. The guard must judge the second message as the server reads it.
TEST_F(EvasionGuardTest, PipelinedSettingChangeDoesNotRunAHiddenDelete) {
  for (const char* mode : {"simple", "set_config", "extended", "extended_two_batches", "sjis", "sjis_pipelined"}) {
    AgentResult r = Raw(mode);
    EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "2") << mode << ":\n" << r.out << h_->DaemonLog();
    EXPECT_THAT(r.out, Not(HasSubstr("C DELETE"))) << mode << ":\n" << r.out;
  }
  // A client-only client_encoding set mid-session: non-ASCII text is refused.
  AgentResult sjis = Raw("sjis");
  EXPECT_THAT(sjis.out, HasSubstr("client_encoding SJIS cannot be analysed")) << sjis.out;
  // The two-Query form reached the guard's hold for the DELETE it now sees (the agent hung
  // up before anyone approved); the single-batch extended form was refused outright.
  bool held_delete = false;
  for (const v1::AuditEvent& e : EventsOf(v1::AUDIT_KIND_POLICY_DECISION)) {
    for (const std::string& s : e.decision().statements()) held_delete |= absl::StrContains(s, "DELETE w:customers");
  }
  EXPECT_TRUE(held_delete) << h_->DaemonLog();
}

// One session per spelling; each must be denied by deny-role-changes, and the session
// must still be bank_rw afterwards.
TEST_F(EvasionGuardTest, EveryRoleChangeSpellingIsRefused) {
  for (const char* sql : {"SET ROLE bank_admin", "SET SESSION ROLE bank_admin", "SET LOCAL ROLE bank_admin",
                          "SET \"role\" = 'bank_admin'", "SET SESSION AUTHORIZATION bank_admin", "RESET ROLE",
                          "SELECT set_config('role', 'bank_admin', false)",
                          "SELECT set_config('ROLE', 'bank_admin', false)",
                          "SELECT pg_catalog.set_config('role', 'bank_admin', false)",
                          "SELECT set_config('session_authorization', 'bank_admin', false)",
                          "SELECT id FROM customers WHERE set_config('role', 'bank_admin', false) IS NOT NULL",
                          "SELECT set_config(n, 'bank_admin', false) FROM (VALUES ('role')) v(n)",
                          "PREPARE p AS SELECT set_config('role', 'bank_admin', false)"}) {
    AgentResult r = Psql(std::vector<std::string>{sql, "SELECT current_user"});
    EXPECT_THAT(r.out, HasSubstr("role and privilege changes are not for agents")) << sql << ":\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("bank_rw")) << sql << ":\n" << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("bank_admin\n"))) << sql << ":\n" << r.out;
  }
  // Extended protocol (Parse of set_config) and the fast-path FunctionCall of set_config.
  for (const char* mode : {"parse_role", "fastpath_role"}) {
    AgentResult r = Raw(mode);
    EXPECT_THAT(r.out, HasSubstr("E ERROR 42501")) << mode << ":\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("bank_rw")) << mode << ":\n" << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("bank_admin'"))) << mode << ":\n" << r.out;
  }
}

// Startup parameters are settings applied before any statement: only an allow-list passes.
// The guard remembers the readings of the shapes a session sent (the text but for its
// literals' values). An agent that warms a shape up with a harmless literal and then sends
// the same shape with the literal that matters, in the same session, is judged on the
// second text: set_config's parameter is read by the guard itself, so its readings are
// never reused by shape (the sql layer's literals: ClassifyShaped.* in tests/unit/sql).
TEST_F(EvasionGuardTest, AShapeWarmedUpWithAHarmlessLiteralIsJudgedOnTheLiteralThatMatters) {
  AgentResult r = Psql(std::vector<std::string>{
      "SELECT set_config('application_name', 'warm', false)", "SELECT set_config('application_name', 'up', false)",
      "SELECT set_config('role', 'bank_admin', false)", "SELECT current_user"});
  EXPECT_THAT(r.out, HasSubstr("role and privilege changes are not for agents")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("bank_rw")) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("bank_admin\n"))) << r.out;
  // The same through a shape read many times with a literal in a WHERE clause first.
  std::vector<std::string> sqls;
  for (int i = 0; i < 5; ++i) {
    sqls.push_back(absl::StrCat("SELECT x FROM (VALUES (1)) v(x) WHERE set_config('application_name', 'x", i,
                                "', false) IS NOT NULL"));
  }
  sqls.push_back("SELECT x FROM (VALUES (1)) v(x) WHERE set_config('role', 'bank_admin', false) IS NOT NULL");
  sqls.push_back("SELECT current_user");
  AgentResult w = Psql(sqls);
  EXPECT_THAT(w.out, HasSubstr("role and privilege changes are not for agents")) << w.out;
  EXPECT_THAT(w.out, HasSubstr("bank_rw")) << w.out;
  EXPECT_THAT(w.out, Not(HasSubstr("bank_admin\n"))) << w.out;
}

TEST_F(EvasionGuardTest, StartupParametersOutsideTheAllowListAreRefused) {
  for (const char* options : {"PGOPTIONS=-c role=bank_admin", "PGOPTIONS=--role=bank_admin",
                              "PGOPTIONS=-c session_authorization=bank_admin",
                              "PGOPTIONS=--session-authorization=bank_admin",
                              "PGOPTIONS=-c standard_conforming_strings=off", "PGOPTIONS=-F",
                              "PGCLIENTENCODING=SJIS", "PGCLIENTENCODING=GBK"}) {
    AgentResult r = PsqlWithEnv({options}, "SELECT current_user");
    EXPECT_NE(r.exit_code, 0) << options << ":\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("FATAL")) << options << ":\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("interlock:")) << options << ":\n" << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("bank_admin\n"))) << options << ":\n" << r.out;
  }
  // psycopg2's options= is the same startup parameter.
  CommandResult py = h_->RunAgent(
      "billing-agent",
      {"/usr/bin/python3", "-c",
       "import sys, psycopg2\n"
       "try:\n"
       "    psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user='agent', dbname='bank',"
       " options='-c role=bank_admin')\n"
       "    print('CONNECTED')\n"
       "except psycopg2.OperationalError as e:\n"
       "    print('REFUSED', e)\n",
       pg_->address(), absl::StrCat(pg_->port())},
      AgentOptions{.timeout_s = 60});
  EXPECT_THAT(py.out, HasSubstr("REFUSED")) << py.out << py.err;
  EXPECT_THAT(py.out, HasSubstr("role")) << py.out << py.err;
  // What clients send by default, and harmless settings, still pass.
  AgentResult ok = PsqlWithEnv({"PGOPTIONS=-c statement_timeout=5s", "PGAPPNAME=report", "PGCLIENTENCODING=UTF8"},
                               "SELECT current_user || ' ' || current_setting('statement_timeout')");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("bank_rw 5s"));
  int refused = 0;
  for (const v1::AuditEvent& e : EventsOf(v1::AUDIT_KIND_AUTH)) {
    refused += e.outcome() == "denied" && e.reason() == "startup_parameter";
  }
  EXPECT_GE(refused, 9) << h_->DaemonLog();
}

// An approval window for `EXECUTE p` covers that prepared statement, not whatever the agent
// prepares under the same name later.
TEST_F(EvasionGuardTest, ApprovalWindowDoesNotCoverARePreparedName) {
  std::string script = absl::StrCat(dir_, "/window.py");
  std::ofstream(script) << R"PY(
import sys, psycopg2
conn = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user="agent", dbname="bank", connect_timeout=30)
conn.autocommit = True
cur = conn.cursor()
cur.execute("PREPARE p AS UPDATE accounts SET balance = balance + 1")
cur.execute("EXECUTE p")   # held: an UPDATE without WHERE; approved with --for
print("first", cur.rowcount, flush=True)
cur.execute("EXECUTE p")   # the window covers the same statement
print("second", cur.rowcount, flush=True)
cur.execute("DEALLOCATE p; PREPARE p AS DELETE FROM customers")
try:
    cur.execute("EXECUTE p")   # must be held again, and the test denies it
    print("third", cur.rowcount, flush=True)
except psycopg2.Error as e:
    print("ERROR", e.pgcode, e.pgerror, flush=True)
)PY";
  ::chmod(script.c_str(), 0644);
  CommandResult r;
  {
    JoinedThread agent([&] {
      r = h_->RunAgent("billing-agent",
                       {"/usr/bin/python3", script, pg_->address(), absl::StrCat(pg_->port())},
                       AgentOptions{.timeout_s = 120});
    });
    std::vector<v1::ApprovalRequest> p;
    ASSERT_TRUE(WaitFor([&] { return !(p = Pending()).empty(); }, 30)) << h_->DaemonLog();
    std::string first = p[0].id();
    ASSERT_EQ(h_->Cli({"approve", first, "--for", "10m"}).exit_code, 0);
    // The re-prepared DELETE is held as a new request, not released by the window.
    ASSERT_TRUE(WaitFor([&] {
      p = Pending();
      return !p.empty() && p[0].id() != first;
    }, 30)) << h_->DaemonLog();
    EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "2");
    EXPECT_EQ(h_->Cli({"deny", p[0].id(), "--reason", "re-prepared as a DELETE"}).exit_code, 0);
  }
  EXPECT_THAT(r.out, HasSubstr("first 2"));
  EXPECT_THAT(r.out, HasSubstr("second 2"));
  EXPECT_THAT(r.out, HasSubstr("re-prepared as a DELETE"));
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "2");
  EXPECT_EQ(Direct("SELECT sum(balance) FROM accounts"), "354");
}

}  // namespace
}  // namespace interlock::testing
