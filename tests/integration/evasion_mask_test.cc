// Masking is a property of the data: every way an agent can get a customer's SSN, card
// number or IBAN back — whatever the statement kind, the decision, the message type or
// the result format — comes back masked. One case per class of leak, each through the
// real redirect with the shipped bank policy (evasion_fixture.h).
#include <atomic>

#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "interlock/v1/approval.pb.h"
#include "tests/integration/evasion_fixture.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The statement held for approval (waits up to 30 s for it), approved from outside the
// workload with the CLI, as an operator would. Returns its statement ("" when none came).
std::string ApproveNextHold(InterlockdHarness& h) {
  std::string id, statement;
  WaitFor([&] {
    CommandResult r = h.Cli({"approvals", "--json"});
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      v1::ApprovalRequest a;
      if (google::protobuf::util::JsonStringToMessage(std::string(line), &a).ok() && !a.id().empty()) {
        id = a.id();
        statement = a.statement();
        return true;
      }
    }
    return false;
  }, 30);
  if (id.empty()) return "";
  CommandResult ok = h.Cli({"approve", id, "--reason", "evasion test"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  return statement;
}

// The agent ran its statements to the end (not held until it gave up, not refused) and
// got masked values back.
void ExpectRanMasked(const AgentResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 0) << what << ":\n" << r.out;
  EXPECT_THAT(r.out, HasSubstr("[REDACTED]")) << what;
}

// The baseline the other cases are measured against: a plain read is masked.
TEST_F(EvasionTest, PlainReadIsMasked) {
  AgentResult r = Psql("SELECT ssn, card_number, iban FROM customers WHERE id = 1");
  EXPECT_EQ(r.exit_code, 0) << r.out << h_->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("[REDACTED]"));
  ExpectNoSecrets(r, "plain read");
}

TEST_F(EvasionTest, CastErrorsDoNotEchoValues) {
  AgentResult r = Psql({"SELECT ssn::int FROM customers WHERE id = 1",
                        "SELECT card_number::int FROM customers WHERE id = 1",
                        "SELECT iban::numeric FROM customers WHERE id = 2"});
  // The server's errors still reach the agent, with the value masked.
  EXPECT_THAT(r.out, HasSubstr("invalid input syntax for type integer: \"[REDACTED]\"")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("22P02"));
  ExpectNoSecrets(r, "cast errors");
}

TEST_F(EvasionTest, ConstraintViolationsDoNotEchoValues) {
  // A NOT NULL violation's detail is the whole failing row.
  AgentResult r = Psql("INSERT INTO customers SELECT NULL, name, ssn, card_number, iban, note FROM customers "
                       "WHERE id = 1");
  EXPECT_THAT(r.out, HasSubstr("23502"));
  EXPECT_THAT(r.out, HasSubstr("Failing row contains ([REDACTED])")) << r.out;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("Ada Lovelace")));  // no detector knows a name
  ExpectNoSecrets(r, "constraint violation");
}

TEST_F(EvasionTest, RaisedNoticesAndErrorsAreMasked) {
  AgentResult r = Python("cur.execute(\"SELECT complain(ssn) FROM customers WHERE id = 1\")");
  EXPECT_THAT(r.out, HasSubstr("ERROR"));
  EXPECT_THAT(r.out, HasSubstr("saw [REDACTED]"));
  EXPECT_THAT(r.out, HasSubstr("DIAG message_detail [REDACTED]"));
  EXPECT_THAT(r.out, HasSubstr("DIAG message_hint [REDACTED]"));
  ExpectNoSecrets(r, "RAISE NOTICE / EXCEPTION with DETAIL and HINT");
}

TEST_F(EvasionTest, CursorsDeclaredEarlierAreMasked) {
  AgentResult r = Psql(std::string("BEGIN; DECLARE c CURSOR FOR SELECT ssn, card_number, iban FROM customers WHERE id > 0; "
                        "FETCH ALL FROM c; COMMIT"));
  ExpectRanMasked(r, "FETCH from a cursor declared earlier");
  ExpectNoSecrets(r, "FETCH from a cursor declared earlier");
}

TEST_F(EvasionTest, NamedCursorFetchesAreMasked) {
  // psycopg2's named (server-side) cursor: DECLARE, then FETCH FORWARD n, each its own query.
  AgentResult r = Python(R"PY(conn.autocommit = False
nc = conn.cursor("nc")
nc.itersize = 1
nc.execute("SELECT id, ssn, card_number, iban FROM customers WHERE id > 0 ORDER BY id")
for row in nc: print("ROW", row)
nc.close()
conn.commit())PY");
  ExpectRanMasked(r, "named cursor");
  EXPECT_THAT(r.out, HasSubstr("ROW (2, '[REDACTED]'"));
  ExpectNoSecrets(r, "named cursor");
}

TEST_F(EvasionTest, ReturningClausesAreMasked) {
  AgentResult r = Psql({"UPDATE customers SET note = note WHERE id = 1 RETURNING ssn, card_number, iban",
                        "DELETE FROM customers WHERE id = 99 RETURNING ssn",
                        "INSERT INTO customers SELECT 3, name, ssn, card_number, iban, note FROM customers "
                        "WHERE id = 2 RETURNING *"});
  ExpectRanMasked(r, "RETURNING");
  EXPECT_THAT(r.out, HasSubstr("UPDATE 1"));
  EXPECT_THAT(r.out, HasSubstr("INSERT 0 1"));
  ExpectNoSecrets(r, "RETURNING");
}

TEST_F(EvasionTest, PreparedStatementsAreMasked) {
  // Prepared and executed in one string (the EXECUTE is judged as what the PREPARE before
  // it holds), and in two. interlockd cannot ask the planner about a SQL-level EXECUTE (the
  // name exists only in the agent's session), so the full-table rules hold it (fail
  // closed): an approver lets each run; the values stay masked.
  AgentResult r;
  std::atomic<bool> done{false};
  {
    JoinedThread agent([&] {
      r = Psql({"PREPARE p AS SELECT ssn, card_number FROM customers WHERE id = $1; EXECUTE p(1)",
                "PREPARE q AS UPDATE customers SET note = note WHERE id = $1 RETURNING ssn, iban", "EXECUTE q(2)"});
      done = true;
    });
    while (!done) {
      std::string id = h_->WaitForPendingApproval(1);
      if (!id.empty()) {
        EXPECT_EQ(h_->Cli({"approve", id, "--reason", "evasion test"}).exit_code, 0);
      }
    }
  }
  ExpectRanMasked(r, "EXECUTE of a prepared statement");
  EXPECT_THAT(r.out, HasSubstr("UPDATE 1"));
  ExpectNoSecrets(r, "EXECUTE of a prepared statement");
}

// The extended protocol with every result column in binary (what psycopg 3, JDBC and
// asyncpg can ask for), spoken by hand: a text column under a column rule, and bytea,
// text[], record and numeric expressions that only the detectors can see into.
TEST_F(EvasionTest, BinaryResultsOfTheExtendedProtocolAreMasked) {
  AgentResult r = RawProtocol(R"PY(
q = (b"SELECT ssn, ssn::bytea, ARRAY[ssn, card_number], row(id, ssn, iban), "
     b"translate(card_number, ' ', '')::numeric FROM customers WHERE id = 1")
send(b"P", b"\0" + q + b"\0\0\0")
send(b"B", b"\0\0\0\0\0\0\0\x01\0\x01")  # unnamed portal and statement; every result column binary
send(b"D", b"P\0")
send(b"E", b"\0\0\0\0\0")
send(b"S", b"")
until_ready()
)PY");
  ExpectRanMasked(r, "binary results");
  EXPECT_THAT(r.out, HasSubstr("\nD ")) << r.out;  // the row came back
  // The expressions are computed from masked columns (derivation): withheld whole, NULL
  // in binary (-1 length), rather than scanned for what a detector recognises.
  EXPECT_THAT(r.out, HasSubstr("\\xff\\xff\\xff\\xff")) << r.out;
  ExpectNoSecrets(r, "binary results");
}

TEST_F(EvasionTest, DerivedValuesAreMasked) {
  AgentResult r = Psql({"SELECT reverse(ssn), translate(ssn, '-', '') FROM customers WHERE id = 1",
                        "SELECT encode(convert_to(ssn, 'UTF8'), 'hex') FROM customers WHERE id = 1",
                        "SELECT substr(ssn, 1, 3), substr(ssn, 5, 2), substr(ssn, 8) FROM customers WHERE id = 1",
                        "SELECT ssn::bytea, ARRAY[ssn], row(ssn) FROM customers WHERE id = 1",
                        "SELECT tax_id FROM customer_directory WHERE id = 1"});
  ExpectNoSecrets(r, "derived values");
}

// A view renaming a masked column, and a child table inheriting from the masked table, take
// the table's column rules, not just its detectors: the values here look like nothing a
// detector knows, so only the rule can mask them.
TEST_F(EvasionTest, ViewsAndChildTablesTakeTheTablesColumnRules) {
  ASSERT_EQ(Direct("SET ROLE bank_rw; "
                   "CREATE TABLE customers_archive () INHERITS (customers); "
                   "INSERT INTO customers_archive VALUES (9, 'Old', 'ssn-of-old', 'card-of-old', 'iban-of-old', ''); "
                   "CREATE VIEW archive_directory AS SELECT id, upper(ssn) AS shouted FROM customers_archive"),
            "");
  AgentResult r = Psql({"SELECT ssn FROM ONLY customers_archive WHERE id = 9",
                        "SELECT shouted FROM archive_directory WHERE id = 9",
                        "SELECT tax_id FROM customer_directory WHERE id = 1"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("ssn-of-old"))) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("SSN-OF-OLD"))) << r.out;
  EXPECT_THAT(r.out, HasSubstr("[REDACTED]\n[REDACTED]\n[REDACTED]")) << r.out;
}

TEST_F(EvasionTest, SessionSideChannelsAreMasked) {
  // LISTEN has no rule of its own in the bank policy: the resource default holds it for a
  // human, who approves it here; everything after runs as the policy says.
  AgentResult r;
  {
    JoinedThread agent([&] {
      r = Python(R"PY(cur.execute("LISTEN leak")
cur.execute("SELECT pg_notify('leak', ssn) FROM customers WHERE id = 1")
cur.execute("SELECT set_config('application_name', ssn, false) FROM customers WHERE id = 1")
cur.execute("SELECT 1")
print("ROWS", cur.fetchall()))PY");
    });
    EXPECT_EQ(ApproveNextHold(*h_), "LISTEN leak");
  }
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("ROWS [(1,)]"));
  EXPECT_THAT(r.out, HasSubstr("NOTIFY leak [REDACTED]"));
  EXPECT_THAT(r.out, HasSubstr("PARAM application_name [REDACTED]"));
  ExpectNoSecrets(r, "NOTIFY payload and ParameterStatus");
}

TEST_F(EvasionTest, HeldFullTableReadApprovedComesBackMasked) {
  // REVIEW beats MASK in precedence: the approved statement runs, its values stay masked.
  AgentResult r;
  {
    JoinedThread agent([&] { r = Psql("SELECT * FROM customers ORDER BY id"); });
    EXPECT_EQ(ApproveNextHold(*h_), "SELECT * FROM customers ORDER BY id");
  }
  ExpectRanMasked(r, "approved full-table read");
  EXPECT_THAT(r.out, HasSubstr("Ada Lovelace"));  // what no rule masks comes back as it is
  ExpectNoSecrets(r, "approved full-table read");
}

TEST_F(EvasionTest, CopyToReleasedAfterApprovalIsMasked) {
  AgentResult r;
  {
    JoinedThread agent([&] { r = Psql("COPY (SELECT id, ssn, card_number, iban FROM customers) TO STDOUT"); });
    EXPECT_THAT(ApproveNextHold(*h_), HasSubstr("COPY"));
  }
  ExpectRanMasked(r, "approved COPY TO");
  EXPECT_THAT(r.out, HasSubstr("pii_"));  // IBANs keyed-hashed by the pii detectors
  ExpectNoSecrets(r, "approved COPY TO");
}

}  // namespace
}  // namespace interlock::testing
