// End-to-end tests of the PostgreSQL proxy: a real PostgreSQL 15 server started by the
// test (SCRAM, optional TLS), a real interlockd, the real eBPF redirect, and unmodified
// clients (psql, pgbench, psycopg2) started by `interlock run` with no database password
// in their environment.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "tests/testing/test_ca.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kAppPassword[] = "s3cret-only-interlockd-knows";



// A PostgreSQL server on 127.0.0.43 with role `app` (SCRAM) owning database `appdb`, and
// the password file interlockd reads (the agent never sees it).
class PgProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-pgtest-");
    agent_dir_ = MakeAgentDir("interlock-pgagent-");
    StartPostgres({.address = "127.0.0.43"});
  }
  void TearDown() override {
    pg_.reset();
    RemoveTree(dir_);
    RemoveTree(agent_dir_);
  }

  void StartPostgres(PostgresOptions opts) {
    pg_ = std::make_unique<PostgresServer>(std::move(opts));
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
    ASSERT_TRUE(pg_->Psql("CREATE DATABASE appdb OWNER app").ok());
    ASSERT_TRUE(pg_->Psql("CREATE TABLE accounts(id int primary key, owner text, balance numeric);"
                          "INSERT INTO accounts SELECT g, 'owner' || g, g * 10 FROM generate_series(1, 100) g;"
                          "ALTER TABLE accounts OWNER TO app",
                          "appdb")
                    .ok());
    WritePasswordFile(kAppPassword);
  }

  void WritePasswordFile(const std::string& secret) {
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, secret, 0600).ok());
  }

  // The throwaway server is plain TCP on loopback: unless `extra` verifies it with TLS,
  // the resource says allow_unverified_upstream (`allow_unverified` false: it does not,
  // and interlockd must refuse to send the password).
  ResourceSpec PgResource(const std::string& extra = "", bool allow_unverified = true) {
    bool verified = absl::StrContains(extra, "sslmode: verify-");
    return {"appdb", pg_->address(), pg_->port(),
            absl::StrCat("    protocol: PROTOCOL_POSTGRES\n", "    postgres:\n",
                         "      login: {user: app, database: appdb, password_ref: \"file:", password_file_,
                         "\"}\n", extra.empty() ? "      sslmode: disable\n" : extra,
                         allow_unverified && !verified ? "      allow_unverified_upstream: true\n" : "")};
  }

  // psql as the agent would run it: its own idea of user and database, no password.
  // `env` adds variables (e.g. a token in PGPASSWORD) after the inherited one is removed.
  std::vector<std::string> Psql(const std::string& sql, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "PGPASSWORD", "PGCONNECT_TIMEOUT=10"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), {"/usr/bin/psql", "-X", "-h", pg_->address(), "-p", absl::StrCat(pg_->port()),
                             "-U", "agent", "-d", "whatever", "-v", "ON_ERROR_STOP=1", "-Atc", sql});
    return argv;
  }

  std::string dir_;        // root's: password files, certificates, keys
  std::string agent_dir_;  // the agent's (uid nobody): scripts it runs, files it writes
  std::string password_file_;
  std::unique_ptr<PostgresServer> pg_;
};

TEST_F(PgProxyTest, PsqlLogsInWithTheInjectedCredentialAndEveryStatementIsAudited) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("billing-agent",
                               Psql("SELECT current_user, current_database(); "
                                    "SELECT count(*) FROM accounts WHERE balance > 500"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(r.out, "app|appdb\n50\n");

  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto events = h.AuditEvents();
  auto statements = OfKind(events, v1::AUDIT_KIND_STATEMENT);
  ASSERT_EQ(statements.size(), 1u);  // psql -c sends one simple Query with both statements
  const v1::StatementInfo& s = statements[0].statement();
  EXPECT_EQ(s.protocol(), "simple");
  EXPECT_THAT(s.text(), HasSubstr("SELECT count(*) FROM accounts"));
  EXPECT_EQ(s.text_sha256().size(), 64u);
  EXPECT_EQ(s.database(), "appdb");
  EXPECT_EQ(s.user(), "app");
  EXPECT_THAT(s.command_tags(), ::testing::ElementsAre("SELECT 1", "SELECT 1"));
  EXPECT_EQ(s.rows(), 2u);
  EXPECT_EQ(s.status(), "ok");
  EXPECT_EQ(statements[0].identity().workload(), "billing-agent");
  EXPECT_EQ(statements[0].identity().comm(), "psql");

  bool upstream_login = false;
  for (const auto& e : OfKind(events, v1::AUDIT_KIND_AUTH)) {
    if (e.reason() == "upstream_login") {
      upstream_login = true;
      EXPECT_THAT(e.detail(), HasSubstr("SCRAM-SHA-256"));
    }
  }
  EXPECT_TRUE(upstream_login);
  // The secret appears nowhere the agent or an auditor reads.
  auto audit_text = ReadFile(absl::StrCat(h.state_dir(), "/audit/audit.jsonl"));
  EXPECT_THAT(*audit_text, ::testing::Not(HasSubstr(kAppPassword)));
  std::string id = statements[0].session_id();
  auto rec = ReadFile(absl::StrCat(h.state_dir(), "/recordings/", id, ".rec"));
  ASSERT_TRUE(rec.ok());
  EXPECT_THAT(*rec, ::testing::Not(HasSubstr(kAppPassword)));
  EXPECT_EQ(h.Cli({"verify", id}).exit_code, 0);
  EXPECT_THAT(h.Cli({"replay", id}).out, ::testing::ContainsRegex("Query: SELECT.*[|] 50 +[|]"));
}

TEST_F(PgProxyTest, WrongUpstreamSecretGivesTheAgentAClearError) {
  WritePasswordFile("not-the-password");
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("billing-agent", Psql("SELECT 1"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("interlock: could not log in to resource appdb with its configured credential"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("not-the-password")));
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_AUTH)) {
      if (e.reason() == "upstream_login_failed" && e.outcome() == "denied") return true;
    }
    return false;
  }));
}

TEST_F(PgProxyTest, PgbenchSimpleExtendedAndPreparedModes) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::vector<std::string> base = {"/usr/bin/env", "-u", "PGPASSWORD", PgBin("pgbench"), "-h", pg_->address(),
                                   "-p", absl::StrCat(pg_->port()), "-U", "agent"};
  std::vector<std::string> init = base;
  init.insert(init.end(), {"-i", "-s", "1", "-q", "whatever"});
  CommandResult r = h.RunAgent("bench", init);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* mode : {"simple", "extended", "prepared"}) {
    std::vector<std::string> run = base;
    run.insert(run.end(), {"-M", mode, "-c", "4", "-t", "200", "whatever"});
    r = h.RunAgent("bench", run);
    ASSERT_EQ(r.exit_code, 0) << mode << "\n" << r.out << r.err << h.DaemonLog();
    EXPECT_THAT(r.out, HasSubstr("number of transactions actually processed: 800/800")) << mode;
    EXPECT_THAT(r.out, HasSubstr("number of failed transactions: 0")) << mode;
  }
}

TEST_F(PgProxyTest, Psycopg2CursorsCopyTransactionsNotifyAndCancel) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::string script = absl::StrCat(agent_dir_, "/agent.py");
  std::ofstream(script) << R"PY(
import io, sys, threading, time, select
import psycopg2, psycopg2.extensions
dsn = "host=%s port=%s user=agent dbname=whatever connect_timeout=10" % (sys.argv[1], sys.argv[2])
conn = psycopg2.connect(dsn)
cur = conn.cursor()
# transactions: rollback leaves no trace, commit does
cur.execute("CREATE TABLE t (id int, v text)")
conn.commit()
cur.execute("INSERT INTO t VALUES (1, 'gone')")
conn.rollback()
cur.execute("INSERT INTO t VALUES (%s, %s)", (2, "kept"))
conn.commit()
cur.execute("SELECT id, v FROM t ORDER BY id")
assert cur.fetchall() == [(2, "kept")], "transactions"
# server-side (named) cursor, fetched in batches
named = conn.cursor("big")
named.itersize = 7
named.execute("SELECT id FROM accounts ORDER BY id")
assert [r[0] for r in named] == list(range(1, 101)), "named cursor"
named.close()
conn.commit()
# COPY both ways
cur.copy_expert("COPY t FROM STDIN", io.StringIO("".join("%d\tcopied\n" % i for i in range(3, 1003))))
out = io.StringIO()
cur.copy_expert("COPY (SELECT id FROM t ORDER BY id) TO STDOUT", out)
assert out.getvalue().split() == [str(i) for i in [2] + list(range(3, 1003))], "copy"
conn.commit()
# LISTEN/NOTIFY across two sessions
listener = psycopg2.connect(dsn)
listener.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
listener.cursor().execute("LISTEN ch")
cur.execute("NOTIFY ch, 'hello'")
conn.commit()
deadline = time.time() + 10
got = None
while time.time() < deadline and got is None:
    if select.select([listener], [], [], 1) != ([], [], []):
        listener.poll()
        if listener.notifies:
            got = listener.notifies.pop(0).payload
assert got == "hello", "notify"
# cancel a running statement from another thread
def cancel_soon():
    time.sleep(0.5)
    conn.cancel()
threading.Thread(target=cancel_soon).start()
t0 = time.time()
try:
    cur.execute("SELECT pg_sleep(30)")
    print("cancel did not interrupt")
    sys.exit(1)
except psycopg2.extensions.QueryCanceledError:
    pass
assert time.time() - t0 < 10, "cancel took too long"
conn.rollback()
print("ok")
)PY";
  CommandResult r = h.RunAgent("py-agent", {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/python3", script,
                                            pg_->address(), absl::StrCat(pg_->port())},
                               false, 120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(r.out, "ok\n");
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_CANCEL).empty(); }));
  auto cancels = OfKind(h.AuditEvents(), v1::AUDIT_KIND_CANCEL);
  EXPECT_EQ(cancels[0].outcome(), "allowed");
  bool cancelled = false;
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_STATEMENT)) {
    if (absl::StrContains(e.statement().text(), "pg_sleep")) {
      cancelled = true;
      EXPECT_EQ(e.statement().status(), "cancelled");
      EXPECT_EQ(e.statement().sqlstate(), "57014");
    }
  }
  EXPECT_TRUE(cancelled);
}

TEST_F(PgProxyTest, PsqlCopyBothWays) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::string out_file = absl::StrCat(agent_dir_, "/accounts.csv");
  CommandResult r = h.RunAgent(
      "copier", Psql(absl::StrCat("\\copy (SELECT id, owner FROM accounts ORDER BY id) TO '", out_file,
                                  "' WITH (FORMAT csv)")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto csv = ReadFile(out_file);
  ASSERT_TRUE(csv.ok());
  EXPECT_THAT(*csv, HasSubstr("100,owner100\n"));
  r = h.RunAgent("copier", Psql("CREATE TABLE copy_in (id int, owner text)"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = h.RunAgent("copier", Psql(absl::StrCat("\\copy copy_in FROM '", out_file, "' WITH (FORMAT csv)")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = h.RunAgent("copier", Psql("SELECT count(*), sum(id) FROM copy_in"));
  EXPECT_EQ(r.out, "100|5050\n");
}

// A session interlockd ends for being idle is told so in PostgreSQL's words: a FATAL
// ErrorResponse, SQLSTATE 57P05 (as the server's own idle_session_timeout), then the end of
// the stream — not a reset. (libpq 15 itself, like psql and psycopg2 on it, shows such a
// message only when it reads before writing again, for the server's own timeout too; a
// client waiting on the socket, as LISTEN loops do, reads it.) Read here by a minimal wire
// client as the agent, through the redirect.
TEST_F(PgProxyTest, AnIdleSessionEndedByInterlockdIsToldWhy) {
  InterlockdHarness h({.resources = {PgResource()}, .idle_ms = 1500});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::string script = absl::StrCat(agent_dir_, "/idle.py");
  std::ofstream(script) << R"PY(
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
def recvn(n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("eof after %d of %d bytes" % (len(out), n))
        out += chunk
    return out
def message():
    head = recvn(5)
    return head[:1], recvn(struct.unpack("!I", head[1:])[0] - 4)
params = b"user\0agent\0database\0whatever\0\0"
s.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
while message()[0] != b"Z":
    pass
kind, body = message()  # nothing sent: what comes is interlockd's
fields = {f[:1].decode(): f[1:].decode() for f in body.split(b"\0") if f}
print(kind.decode(), fields.get("S"), fields.get("C"), fields.get("M"))
print("then:", "eof" if s.recv(1) == b"" else "more")
)PY";
  CommandResult r = h.RunAgent("py-agent", {"/usr/bin/python3", script, pg_->address(), absl::StrCat(pg_->port())},
                               false, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(r.out,
            "E FATAL 57P05 interlock: terminating connection due to idle timeout (timeouts.idle_ms)\n"
            "then: eof\n")
      << r.err;
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  EXPECT_EQ(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)[0].outcome(), "idle_timeout");
}

TEST_F(PgProxyTest, MalformedStartupGetsAProtocolErrorAndAnAuditEvent) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // Not PostgreSQL: the first four bytes read as an absurd startup length.
  CommandResult r = h.RunAgent("fuzzer", {BinaryPath("interlock-probe"), "connect", pg_->address(),
                                          absl::StrCat(pg_->port()), "--message", "GET / HTTP/1.0\r\n\r\n"});
  EXPECT_THAT(r.out, HasSubstr("08P01")) << r.out << r.err;
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_PROTOCOL_ERROR).empty(); }));
  EXPECT_EQ(OfKind(h.AuditEvents(), v1::AUDIT_KIND_PROTOCOL_ERROR)[0].reason(), "bad_startup");
}

// A hostile agent opens sessions that each park a large half-sent message in interlockd
// (within the per-message limit). Past the global memory budget a session is ended with
// 53200 and new ones are refused the same way, audited; interlockd lives on and serves
// the next agent once the memory is given back.
TEST_F(PgProxyTest, MemoryBudgetRefusesSessionsInsteadOfGrowingWithoutBound) {
  InterlockdHarness h({.resources = {PgResource()}, .extra_yaml = "memory_budget_mib: 32\n"});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  const char* script = R"PY(
import socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])
def startup():
    s = socket.create_connection((host, port), timeout=20)
    body = struct.pack('!I', 196608) + b'user\0agent\0database\0whatever\0\0'
    s.sendall(struct.pack('!I', len(body) + 4) + body)
    buf = b''
    while True:
        d = s.recv(65536)
        if not d:
            return s, 'closed'
        buf += d
        i = 0
        while i + 5 <= len(buf):
            t, n = buf[i:i+1], struct.unpack('!I', buf[i+1:i+5])[0]
            if i + 1 + n > len(buf):
                break
            if t == b'Z':
                return s, 'ready'
            if t == b'E':
                return s, 'error ' + buf[i+5:i+1+n].decode('utf-8', 'replace')
            i += 1 + n
held, out = [], []
for k in range(6):
    s, state = startup()
    out.append('startup ' + state)
    if state != 'ready':
        continue
    s.sendall(b'Q' + struct.pack('!I', 15 << 20))  # claims 15 MiB ...
    try:
        s.sendall(b'x' * (12 << 20))                # ... sends 12 and stops
    except OSError as e:
        out.append('send ' + str(e))
    held.append(s)
    time.sleep(0.2)
for s in held:
    s.settimeout(2)
    data = b''
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    out.append('reply ' + data.decode('utf-8', 'replace'))
print('\n'.join(out).replace('\0', ' '))
)PY";
  CommandResult r = h.RunAgent("hog", {"/usr/bin/python3", "-c", script, pg_->address(),
                                       absl::StrCat(pg_->port())});
  EXPECT_THAT(r.out, HasSubstr("53200")) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("memory budget")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("startup ready")) << r.out;
  ASSERT_TRUE(h.running());
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)) {
      if (e.outcome() == "memory_budget") return true;
    }
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_REJECTED)) {
      if (e.reason() == "memory_budget") return true;
    }
    return false;
  })) << h.DaemonLog();

  // The hog is gone, its memory given back: the next agent is served.
  ASSERT_TRUE(WaitFor([&] { return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() +
                                       OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_REJECTED).size() >= 6; }))
      << r.out;
  CommandResult ok = h.RunAgent("reader", Psql("SELECT count(*) FROM accounts"));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err << h.DaemonLog();
  EXPECT_EQ(ok.out, "100\n");
}

TEST_F(PgProxyTest, TokenModeAcceptsOnlyTheRightToken) {
  const std::string token = "agent-token-5f2c";
  // The digest the operator puts in the config, computed independently of our code.
  CommandResult digest = RunCommand({"/bin/sh", "-c", absl::StrCat("printf %s '", token, "' | sha256sum")});
  std::string hex = digest.out.substr(0, 64);
  InterlockdHarness h({.resources = {PgResource(absl::StrCat(
      "      sslmode: disable\n      agent_auth: AGENT_AUTH_TOKEN\n      token_sha256: [\"", hex, "\"]\n"))}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("tok", Psql("SELECT current_user", {absl::StrCat("PGPASSWORD=", token)}));
  ASSERT_EQ(r.exit_code, 0) << r.err << h.DaemonLog();
  EXPECT_EQ(r.out, "app\n");
  r = h.RunAgent("tok", Psql("SELECT 1", {"PGPASSWORD=wrong-token"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("interlock: token authentication failed"));
  // The token is not in the recording.
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START)) {
    auto rec = ReadFile(absl::StrCat(h.state_dir(), "/recordings/", e.session_id(), ".rec"));
    ASSERT_TRUE(rec.ok());
    EXPECT_THAT(*rec, ::testing::Not(HasSubstr(token)));
  }
}

// Issue 12 item 8: a resource whose password would go to an unverified server does not
// load — interlockd refuses to start, naming file, line and field — so no agent session
// can ever make it send the password to whoever answers at the address. (The run-time
// check behind it is unit-tested in upstream_login_test: no config reaches it.)
TEST_F(PgProxyTest, PasswordForAnUnverifiedServerIsRefusedAtStart) {
  for (const char* mode : {"disable", "prefer", "require"}) {
    SCOPED_TRACE(mode);
    InterlockdHarness h({.resources = {PgResource(absl::StrCat("      sslmode: ", mode, "\n"),
                                                  /*allow_unverified=*/false)}});
    absl::Status st = h.Start();
    ASSERT_FALSE(st.ok());
    EXPECT_THAT(std::string(st.message()),
                HasSubstr(absl::StrCat("resources[0].postgres.login.password_ref: the upstream password would be "
                                       "sent to a server whose identity is not verified (sslmode ",
                                       mode, ")")));
    EXPECT_THAT(std::string(st.message()), HasSubstr("allow_unverified_upstream: true"));
    EXPECT_THAT(std::string(st.message()), ::testing::Not(HasSubstr(kAppPassword)));
    // `interlock teardown` (the harness's cleanup) loads the same file: make it loadable.
    auto yaml = ReadFile(h.config_path());
    ASSERT_TRUE(yaml.ok());
    ASSERT_TRUE(WriteFileAtomic(h.config_path(),
                                absl::StrReplaceAll(*yaml, {{absl::StrCat("      sslmode: ", mode, "\n"),
                                                             absl::StrCat("      sslmode: ", mode,
                                                                          "\n      allow_unverified_upstream: true\n")}}),
                                0600)
                    .ok());
  }
}

TEST_F(PgProxyTest, UpstreamTlsVerifyFullWithChannelBinding) {
  std::string certs = absl::StrCat(dir_, "/certs");
  ASSERT_EQ(::mkdir(certs.c_str(), 0755), 0);
  auto ca = TestCa::Create(certs);
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto leaf = (*ca)->Issue("server", {.dns_names = {"db.test"}, .ips = {"127.0.0.44"}});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  pg_.reset();
  StartPostgres({.address = "127.0.0.44", .ssl_cert_file = leaf->cert_file, .ssl_key_file = leaf->key_file});
  InterlockdHarness h({.resources = {PgResource(absl::StrCat(
      "      sslmode: verify-full\n      sslrootcert: \"", (*ca)->cert_file(), "\"\n"))}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("tls-agent", Psql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"));
  ASSERT_EQ(r.exit_code, 0) << r.err << h.DaemonLog() << [&] {
    std::string d;
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_AUTH)) d += e.detail() + "\n";
    return d;
  }();
  EXPECT_EQ(r.out, "t\n");
  bool plus = false;
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_AUTH)) {
    if (e.reason() == "upstream_login") plus = absl::StrContains(e.detail(), "SCRAM-SHA-256-PLUS");
  }
  EXPECT_TRUE(plus) << "channel binding (SCRAM-SHA-256-PLUS) expected over TLS";

  // A certificate for another name fails verify-full, with an audit reason.
  InterlockdHarness wrong({.resources = {PgResource(absl::StrCat(
      "      sslmode: verify-full\n      sslservername: other.test\n      sslrootcert: \"",
      (*ca)->cert_file(), "\"\n"))}});
  ASSERT_TRUE(wrong.Start().ok()) << wrong.DaemonLog();
  r = wrong.RunAgent("tls-agent", Psql("SELECT 1"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("interlock: TLS to resource appdb failed"));
}

TEST_F(PgProxyTest, UpstreamLoginIsMappedPerWorkload) {
  ASSERT_TRUE(pg_->Psql("CREATE ROLE reader LOGIN PASSWORD 'reader-pass'; "
                        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader", "postgres").ok());
  ASSERT_TRUE(pg_->Psql("GRANT SELECT ON accounts TO reader", "appdb").ok());
  std::string reader_pw = absl::StrCat(dir_, "/reader.pw");
  ASSERT_TRUE(WriteFileAtomic(reader_pw, "reader-pass", 0600).ok());
  InterlockdHarness h({.resources = {PgResource(absl::StrCat(
      "      sslmode: disable\n      by_workload:\n        reporting: {user: reader, database: appdb, "
      "password_ref: \"file:", reader_pw, "\"}\n"))}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("reporting", Psql("SELECT current_user, count(*) FROM accounts"));
  ASSERT_EQ(r.exit_code, 0) << r.err << h.DaemonLog();
  EXPECT_EQ(r.out, "reader|100\n");
  // The read-only role cannot write, whatever the agent tries.
  r = h.RunAgent("reporting", Psql("DELETE FROM accounts"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("permission denied"));
  // Another workload gets the resource's default login.
  r = h.RunAgent("billing-agent", Psql("SELECT current_user"));
  EXPECT_EQ(r.out, "app\n") << r.err;
}

TEST_F(PgProxyTest, Md5UpstreamAuthentication) {
  pg_.reset();
  StartPostgres({.address = "127.0.0.48", .auth_method = "md5", .password_encryption = "md5"});
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("md5-agent", Psql("SELECT current_user"));
  ASSERT_EQ(r.exit_code, 0) << r.err << h.DaemonLog();
  EXPECT_EQ(r.out, "app\n");
  bool md5 = false;
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_AUTH)) {
    if (e.reason() == "upstream_login") md5 = absl::StrContains(e.detail(), "with md5");
  }
  EXPECT_TRUE(md5);
}

TEST_F(PgProxyTest, OptionalTlsTowardsTheAgent) {
  std::string certs = absl::StrCat(dir_, "/agent-certs");
  ASSERT_EQ(::mkdir(certs.c_str(), 0755), 0);
  auto ca = TestCa::Create(certs, "local-ca");
  ASSERT_TRUE(ca.ok()) << ca.status();
  // The agent dials the resource's own address; interlockd presents a certificate for it.
  auto leaf = (*ca)->Issue("agent-facing", {.ips = {pg_->address()}});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  InterlockdHarness h({.resources = {PgResource(absl::StrCat(
      "      sslmode: disable\n      agent_tls_cert_file: \"", leaf->cert_file, "\"\n",
      "      agent_tls_key_file: \"", leaf->key_file, "\"\n"))}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // The agent trusts the CA through a copy of its certificate in its own directory (the
  // CA's directory holds its key and is root's).
  std::string agent_ca = absl::StrCat(agent_dir_, "/ca.pem");
  ASSERT_TRUE(WriteFileAtomic(agent_ca, *ReadFile((*ca)->cert_file()), 0644).ok());
  std::vector<std::string> argv = {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/psql", "-X", "-Atc",
                                   "SELECT current_user",
                                   absl::StrCat("host=", pg_->address(), " port=", pg_->port(),
                                                " user=agent dbname=x sslmode=verify-full sslrootcert=",
                                                agent_ca)};
  CommandResult r = h.RunAgent("tls-agent", argv);
  ASSERT_EQ(r.exit_code, 0) << r.err << h.DaemonLog();
  EXPECT_EQ(r.out, "app\n");
  // Without agent TLS configured, an agent that requires TLS is told it is not offered.
  InterlockdHarness plain({.resources = {PgResource()}});
  ASSERT_TRUE(plain.Start().ok()) << plain.DaemonLog();
  argv.back() = absl::StrCat("host=", pg_->address(), " port=", pg_->port(), " user=agent dbname=x sslmode=require");
  r = plain.RunAgent("tls-agent", argv);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("server does not support SSL"));
}

}  // namespace
}  // namespace interlock::testing
