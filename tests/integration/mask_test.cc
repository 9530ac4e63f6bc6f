// End-to-end tests of inline masking: a real PostgreSQL 15 with a seeded customers table,
// a real interlockd with a MASK policy, the real eBPF redirect, and unmodified clients
// (psql, psycopg2). Every query shape must come back masked; the agent's clients must
// still read well-formed results; memory must stay bounded on a 1,000,000-row result.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAppPassword[] = "mask-test-secret";
// Seeded values that must never reach the agent.
const char* const kSecrets[] = {"078-05-1120", "219-09-9999", "4111111111111111", "5500 0000 0000 0004",
                                "GB82WEST12345698765432", "DE89370400440532013000"};

constexpr char kPolicy[] = R"YAML(
mask_profiles:
  - name: pii
    columns:
      - {column: public.customers.ssn, mask: {style: MASK_STYLE_REDACT}}
      - {column: card_number, mask: {style: MASK_STYLE_PARTIAL, keep_last: 4}}
      - {column: customers.account, mask: {style: MASK_STYLE_KEYED_HASH}}
    detectors:
      - {detector: DETECTOR_SSN, mask: {style: MASK_STYLE_REDACT}}
      - {detector: DETECTOR_CARD, mask: {style: MASK_STYLE_PARTIAL}}
      - {detector: DETECTOR_IBAN, mask: {style: MASK_STYLE_KEYED_HASH}}
rules:
  - id: mask-reads
    match: {kinds: [STATEMENT_KIND_SELECT, STATEMENT_KIND_COPY, STATEMENT_KIND_FETCH, STATEMENT_KIND_DECLARE]}
    action: ACTION_MASK
    mask_profile: pii
  - id: housekeeping
    match: {kinds: [STATEMENT_KIND_TRANSACTION, STATEMENT_KIND_SET, STATEMENT_KIND_SHOW, STATEMENT_KIND_CLOSE_CURSOR]}
    action: ACTION_ALLOW
)YAML";

class MaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-masktest-");
    ::chmod(dir_.c_str(), 0755);
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.48"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
    ASSERT_TRUE(pg_->Psql("CREATE DATABASE appdb OWNER app").ok());
    ASSERT_TRUE(pg_->Psql(R"SQL(
CREATE TABLE customers(id int primary key, name text, ssn text, card_number varchar(24), account text, note text);
INSERT INTO customers VALUES
  (1, 'Ada', '078-05-1120', '4111111111111111', 'GB82WEST12345698765432', 'call me'),
  (2, 'Bob', '219-09-9999', '5500 0000 0000 0004', 'DE89370400440532013000', 'ssn 078-05-1120 on file');
CREATE TABLE transfers(id int, account text, amount numeric);
INSERT INTO transfers VALUES (10, 'GB82WEST12345698765432', 100), (11, 'DE89370400440532013000', 250);
CREATE VIEW customer_view AS SELECT id, name, ssn FROM customers;
ALTER TABLE customers OWNER TO app; ALTER TABLE transfers OWNER TO app; ALTER VIEW customer_view OWNER TO app;
)SQL",
                          "appdb")
                    .ok());
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, kAppPassword, 0600).ok());
    // The auditor's key pair: originals that masking replaces are kept sealed to it.
    CommandResult keygen = RunCommand({BinaryPath("interlock"), "auditor-keygen", "--out", absl::StrCat(dir_, "/auditor")});
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, kPolicy, 0644).ok());
    h_ = std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {{"appdb", pg_->address(), pg_->port(),
                       absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n"
                                    "      login: {user: app, database: appdb, password_ref: \"file:",
                                    password_file_, "\"}\n      sslmode: disable\n      allow_unverified_upstream: true\n")}},
        .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\nauditor_public_key_file: ", dir_,
                                   "/auditor.pub\n")});
    ASSERT_TRUE(h_->Start().ok()) << h_->DaemonLog();
  }
  void TearDown() override {
    h_.reset();
    pg_.reset();
    RemoveTree(dir_);
  }

  CommandResult Psql(const std::string& sql) {
    return h_->RunAgent("analyst", {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/psql", "-X", "-h", pg_->address(),
                                    "-p", absl::StrCat(pg_->port()), "-U", "agent", "-d", "x", "-v",
                                    "ON_ERROR_STOP=1", "-At", "-c", sql});
  }
  static void ExpectNoSecrets(const std::string& out, const std::string& shape) {
    for (const char* s : kSecrets) EXPECT_THAT(out, Not(HasSubstr(s))) << shape << ":\n" << out;
  }

  std::string dir_, password_file_, policy_file_;
  std::unique_ptr<PostgresServer> pg_;
  std::unique_ptr<InterlockdHarness> h_;
};

TEST_F(MaskTest, EveryQueryShapeComesBackMasked) {
  const std::vector<std::string> shapes = {
      "SELECT * FROM customers ORDER BY id",
      "SELECT ssn AS x, card_number AS y, account AS z FROM customers ORDER BY id",
      "SELECT ssn || '', upper(ssn), substr(ssn, 1, 11), card_number || '' FROM customers ORDER BY id",
      "SELECT * FROM customer_view ORDER BY id",
      "WITH c AS (SELECT * FROM customers) SELECT ssn, card_number, account FROM c ORDER BY id",
      "SELECT row_to_json(c) FROM customers c ORDER BY id",
      "SELECT string_agg(ssn || ' ' || card_number || ' ' || account, ';') FROM customers",
      "SELECT note FROM customers ORDER BY id",
  };
  for (const std::string& q : shapes) {
    CommandResult r = Psql(q);
    ASSERT_EQ(r.exit_code, 0) << q << ": " << r.err << h_->DaemonLog();
    EXPECT_FALSE(r.out.empty()) << q;
    ExpectNoSecrets(r.out, q);
  }
  // Column styles: redact, partial (last 4 kept), keyed hash.
  CommandResult r = Psql("SELECT ssn, card_number, account FROM customers WHERE id = 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> f = absl::StrSplit(absl::StripTrailingAsciiWhitespace(r.out), '|');
  ASSERT_EQ(f.size(), 3u) << r.out;
  EXPECT_EQ(f[0], "[REDACTED]");
  EXPECT_EQ(f[1], "************1111");
  EXPECT_TRUE(absl::StartsWith(f[2], "pii_")) << f[2];
  // Non-sensitive columns are untouched.
  EXPECT_EQ(Psql("SELECT name FROM customers WHERE id = 2").out, "Bob\n");
  // Evidence: one masking event per statement, counts but no values.
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h_->AuditEvents(), v1::AUDIT_KIND_MASKING).empty(); }));
  bool column_event = false;
  std::string seen;
  for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_MASKING)) {
    if (!e.masking().columns().empty()) column_event = true;
    seen += e.masking().DebugString();
  }
  EXPECT_TRUE(column_event) << seen;
  auto audit = ReadFile(absl::StrCat(h_->state_dir(), "/audit/audit.jsonl"));
  ASSERT_TRUE(audit.ok());
  for (const char* s : {"4111111111111111", "GB82WEST12345698765432"}) {
    // The statement text is audited, not result values; these appear only in results.
    EXPECT_THAT(*audit, Not(HasSubstr(s)));
  }
}

// JSON built from masked columns is masked whole (the columns' rules, redacted); the result
// must stay valid JSON (a JSON string in its place), or the agent's JSON parser breaks.
TEST_F(MaskTest, JsonResultsStayValidJson) {
  for (const std::string q : {
           "SELECT row_to_json(t) FROM (SELECT id, card_number::bigint AS card, ssn FROM customers WHERE id = 1) t",
           "SELECT json_agg(card_number::bigint) FROM customers WHERE id = 1",
           "SELECT jsonb_build_object('n', card_number::bigint, 'note', note) FROM customers WHERE id = 1",
       }) {
    CommandResult r = Psql(q);
    ASSERT_EQ(r.exit_code, 0) << q << ": " << r.err << h_->DaemonLog();
    ExpectNoSecrets(r.out, q);
    google::protobuf::Value doc;
    const std::string text(absl::StripTrailingAsciiWhitespace(r.out));
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &doc).ok()) << q << ":\n" << text;
    // Computed from masked columns (derivation): redacted whole, as a JSON string.
    EXPECT_THAT(text, HasSubstr("[REDACTED]")) << text;
  }
}

TEST_F(MaskTest, OriginalsAreSealedForTheAuditorOnly) {
  CommandResult r = Psql("SELECT name, ssn, card_number FROM customers WHERE id = 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoSecrets(r.out, "read");
  std::string id;
  ASSERT_TRUE(WaitFor([&] {
    auto ends = OfKind(h_->AuditEvents(), v1::AUDIT_KIND_SESSION_END);
    if (ends.empty()) return false;
    id = ends.back().session_id();
    return true;
  }));
  // The recording holds what the agent saw; the originals only open with the auditor key.
  CommandResult plain = h_->Cli({"replay", id});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ExpectNoSecrets(plain.out, "replay");
  EXPECT_THAT(plain.out, HasSubstr("[sealed original"));
  CommandResult unsealed = h_->Cli({"replay", id, "--unseal", absl::StrCat(dir_, "/auditor.key")});
  ASSERT_EQ(unsealed.exit_code, 0) << unsealed.err;
  EXPECT_THAT(unsealed.out, HasSubstr("078-05-1120"));
  EXPECT_THAT(unsealed.out, HasSubstr("4111111111111111"));
  EXPECT_EQ(h_->Cli({"verify", id}).exit_code, 0);
  // Another key cannot open them.
  CommandResult other = RunCommand({BinaryPath("interlock"), "auditor-keygen", "--out", absl::StrCat(dir_, "/other")});
  ASSERT_EQ(other.exit_code, 0);
  CommandResult wrong = h_->Cli({"replay", id, "--unseal", absl::StrCat(dir_, "/other.key")});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.out + wrong.err, Not(HasSubstr("078-05-1120")));
}

TEST_F(MaskTest, KeyedHashPseudonymsJoinAcrossQueries) {
  CommandResult a = Psql("SELECT account FROM customers WHERE id = 1");
  CommandResult t = Psql("SELECT account FROM transfers WHERE id = 10");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(t.exit_code, 0) << t.err;
  // customers.account by column rule, transfers.account by the IBAN detector: same key,
  // same style, same pseudonym.
  EXPECT_EQ(a.out, t.out);
  EXPECT_TRUE(absl::StartsWith(a.out, "pii_"));
  EXPECT_NE(Psql("SELECT account FROM customers WHERE id = 2").out, a.out);
}

TEST_F(MaskTest, CopyToStdoutIsMaskedAndPsycopg2ReadsMaskedRows) {
  CommandResult r = Psql("COPY (SELECT * FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv)");
  ASSERT_EQ(r.exit_code, 0) << r.err << h_->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("Ada"));
  ExpectNoSecrets(r.out, "COPY csv");
  r = Psql("COPY customers TO STDOUT");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoSecrets(r.out, "COPY text");

  std::string script = absl::StrCat(dir_, "/agent.py");
  std::ofstream(script) << R"PY(
import io, sys, psycopg2
conn = psycopg2.connect("host=%s port=%s user=agent dbname=x connect_timeout=10" % (sys.argv[1], sys.argv[2]))
cur = conn.cursor()
cur.execute("SELECT id, ssn, card_number, account FROM customers WHERE id = %s", (2,))
print(cur.fetchone())
named = conn.cursor("c")
named.execute("SELECT ssn FROM customers ORDER BY id")
print([r[0] for r in named])
named.close()
out = io.StringIO()
cur.copy_expert("COPY (SELECT ssn, card_number FROM customers) TO STDOUT", out)
print(out.getvalue().replace("\n", "|"))
)PY";
  ::chmod(script.c_str(), 0644);
  r = h_->RunAgent("analyst", {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/python3", script, pg_->address(),
                               absl::StrCat(pg_->port())});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h_->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("(2, '[REDACTED]', '**** **** **** 0004', 'pii_"));
  ExpectNoSecrets(r.out, "psycopg2");
}

TEST_F(MaskTest, AMillionRowsStreamWithBoundedMemory) {
  const int64_t before = ProcessMemoryKib(h_->pid(), "VmRSS:");
  // 1,000,000 rows, three masked columns per row; psql counts what it receives.
  CommandResult r = h_->RunAgent(
      "analyst",
      {"/bin/sh", "-c",
       absl::StrCat("/usr/bin/psql -X -h ", pg_->address(), " -p ", pg_->port(),
                    " -U agent -d x -At -c \"SELECT g, '078-05-1120', '4111111111111111', "
                    "'GB82WEST12345698765432' FROM generate_series(1, 1000000) g\" | "
                    "awk -F'|' '$2 == \"078-05-1120\" {bad++} END {print NR, bad+0}'")},
      false, 600);
  ASSERT_EQ(r.exit_code, 0) << r.err << h_->DaemonLog();
  EXPECT_EQ(r.out, "1000000 0\n");
  const int64_t peak = ProcessMemoryKib(h_->pid(), "VmHWM:");
  // The result is ~60 MB on the wire; interlockd holds one row at a time.
  EXPECT_LT(peak - before, 48 * 1024) << "before " << before << " kB, peak " << peak << " kB";
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_MASKING)) {
      if (e.masking().rows() == 1000000) return true;
    }
    return false;
  }));
}

// The database's unix socket (unix_path): an enrolled psql that connects to the socket
// path is redirected to interlockd's unix listener and proxied like TCP — credential
// injected, result masked, identity (workload, uid, comm) from the kernel; getpeername()
// shows the agent the path it asked for. A process outside every enrollment that dials
// interlockd's listener directly gets no session. A default-deny enrollment is refused
// unlisted paths and abstract sockets; a plain one is left alone there.
TEST_F(MaskTest, UnixSocketPathIsRedirectedProxiedAndMasked) {
  h_.reset();  // this test's interlockd protects the socket path too
  const std::string sock = absl::StrCat(pg_->socket_dir(), "/.s.PGSQL.", pg_->port());
  const std::string unix_dir = absl::StrCat(dir_, "/listeners");
  h_ = std::make_unique<InterlockdHarness>(HarnessOptions{
      .resources = {{"appdb", pg_->address(), pg_->port(),
                     absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    unix_path: ", sock,
                                  "\n    postgres:\n      login: {user: app, database: appdb, "
                                  "password_ref: \"file:",
                                  password_file_, "\"}\n      sslmode: disable\n"
                                  "      allow_unverified_upstream: true\n")}},
      .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\n"),
      .listener_yaml = absl::StrCat("  unix_dir: ", unix_dir, "\n")});
  ASSERT_TRUE(h_->Start().ok()) << h_->DaemonLog();

  CommandResult r = h_->RunAgent(
      "analyst", {"/usr/bin/env", "-u", "PGPASSWORD", "PGCONNECT_TIMEOUT=10", "/usr/bin/psql", "-X",
                  "-h", pg_->socket_dir(), "-p", absl::StrCat(pg_->port()), "-U", "agent", "-d",
                  "x", "-v", "ON_ERROR_STOP=1", "-At", "-c",
                  "SELECT current_user, name, ssn, card_number FROM customers WHERE id = 1"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h_->DaemonLog();
  EXPECT_EQ(r.out, "app|Ada|[REDACTED]|************1111\n");
  ASSERT_TRUE(WaitFor(
      [&] { return !OfKind(h_->AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto starts = OfKind(h_->AuditEvents(), v1::AUDIT_KIND_SESSION_START);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].resource(), "appdb");
  EXPECT_EQ(starts[0].original_destination().address(), sock);
  EXPECT_EQ(starts[0].upstream().address(), sock);
  EXPECT_EQ(starts[0].identity().workload(), "analyst");
  EXPECT_EQ(starts[0].identity().uid(), kAgentUid);
  EXPECT_EQ(starts[0].identity().comm(), "psql");
  EXPECT_NE(starts[0].identity().pid(), 0u);
  EXPECT_FALSE(OfKind(h_->AuditEvents(), v1::AUDIT_KIND_MASKING).empty());

  // getpeername() shows the agent the path it dialled, not interlockd's listener.
  const std::string peer_py = absl::StrCat(
      "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('", sock,
      "')\nprint(s.getpeername())\n");
  r = h_->RunAgent("analyst", {"/usr/bin/python3", "-c", peer_py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h_->DaemonLog();
  EXPECT_EQ(r.out, absl::StrCat(sock, "\n"));

  // Someone outside every enrollment (nobody, in the test's own cgroup) dials
  // interlockd's listener directly: no session, nothing from the database.
  const std::string listener = absl::StrCat(unix_dir, "/appdb.sock");
  const std::string direct_py = absl::StrCat(
      "import socket, struct\ns = socket.socket(socket.AF_UNIX)\ns.connect('", listener,
      "')\nbody = struct.pack('!I', 196608) + b'user\\0agent\\0database\\0x\\0\\0'\n"
      "s.settimeout(5)\n"
      "try:\n    s.sendall(struct.pack('!I', len(body) + 4) + body)\n"
      "    print('got', len(s.recv(4096)))\n"
      "except (ConnectionResetError, BrokenPipeError):\n    print('got 0')\n");
  CommandResult direct = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                     "--clear-groups", "--", "/usr/bin/python3", "-c", direct_py});
  EXPECT_EQ(direct.out, "got 0\n") << direct.out << direct.err;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_SESSION_REJECTED)) {
      if (e.reason() == "not_enrolled") return true;
    }
    return false;
  })) << h_->DaemonLog();
  for (const auto& e : OfKind(h_->AuditEvents(), v1::AUDIT_KIND_SESSION_START)) {
    EXPECT_EQ(e.identity().workload(), "analyst");  // none for the direct dialer
  }

  // Unlisted paths and abstract sockets: refused for default-deny, untouched otherwise.
  const std::string other = absl::StrCat(dir_, "/other.sock");
  const std::string try_py = absl::StrCat(
      "import socket\nfor a in ['", other, "', '\\0interlock-test-", ::getpid(), "']:\n"
      "    s = socket.socket(socket.AF_UNIX)\n"
      "    try:\n        s.connect(a); print('connected')\n"
      "    except OSError as e:\n        print(e.errno)\n");
  r = h_->RunAgent("strict", {"/usr/bin/python3", "-c", try_py}, /*default_deny=*/true);
  EXPECT_EQ(r.out, "1\n1\n") << r.err;  // EPERM twice
  r = h_->RunAgent("loose", {"/usr/bin/python3", "-c", try_py});
  EXPECT_EQ(r.out, "2\n111\n") << r.err;  // ENOENT, ECONNREFUSED: the kernel's own answers
  // Datagrams to the protected path, connected or not, are refused for everyone enrolled.
  const std::string dgram_py = absl::StrCat(
      "import socket\nfor connect in [True, False]:\n"
      "    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
      "    try:\n        s.connect('", sock, "') if connect else s.sendto(b'x', '", sock, "')\n"
      "        print('sent')\n"
      "    except OSError as e:\n        print(e.errno)\n");
  r = h_->RunAgent("loose", {"/usr/bin/python3", "-c", dgram_py});
  EXPECT_EQ(r.out, "1\n1\n") << r.err;
}

}  // namespace
}  // namespace interlock::testing
