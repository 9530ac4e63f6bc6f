// Masking is a property of the data: every way an agent can get a customer's SSN, card
// number or IBAN back — whatever the statement kind, the decision, the message type or
// the result format — comes back masked. One case per class of leak, each through the
// real redirect with the shipped bank policy (evasion_fixture.h).
#include "tests/integration/evasion_fixture.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

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
  ExpectNoSecrets(r, "cast errors");
}

TEST_F(EvasionTest, RaisedNoticesAndErrorsAreMasked) {
  AgentResult r = Python("cur.execute(\"SELECT complain(ssn) FROM customers WHERE id = 1\")");
  EXPECT_THAT(r.out, HasSubstr("ERROR"));
  ExpectNoSecrets(r, "RAISE NOTICE / EXCEPTION with DETAIL and HINT");
}

TEST_F(EvasionTest, CursorsDeclaredEarlierAreMasked) {
  AgentResult r = Psql(std::string("BEGIN; DECLARE c CURSOR FOR SELECT ssn, card_number, iban FROM customers WHERE id > 0; "
                        "FETCH ALL FROM c; COMMIT"));
  ExpectNoSecrets(r, "FETCH from a cursor declared earlier");
}

TEST_F(EvasionTest, ReturningClausesAreMasked) {
  AgentResult r = Psql({"UPDATE customers SET note = note WHERE id = 1 RETURNING ssn, card_number, iban",
                        "DELETE FROM customers WHERE id = 99 RETURNING ssn",
                        "INSERT INTO customers SELECT 3, name, ssn, card_number, iban, note FROM customers "
                        "WHERE id = 2 RETURNING *"});
  ExpectNoSecrets(r, "RETURNING");
}

TEST_F(EvasionTest, PreparedStatementsAreMasked) {
  AgentResult r = Psql(std::string("PREPARE p AS SELECT ssn, card_number FROM customers WHERE id = $1; EXECUTE p(1)"));
  ExpectNoSecrets(r, "EXECUTE of a prepared statement");
}

TEST_F(EvasionTest, DerivedValuesAreMasked) {
  AgentResult r = Psql({"SELECT reverse(ssn), translate(ssn, '-', '') FROM customers WHERE id = 1",
                        "SELECT encode(convert_to(ssn, 'UTF8'), 'hex') FROM customers WHERE id = 1",
                        "SELECT substr(ssn, 1, 3), substr(ssn, 5, 2), substr(ssn, 8) FROM customers WHERE id = 1",
                        "SELECT ssn::bytea, ARRAY[ssn], row(ssn) FROM customers WHERE id = 1",
                        "SELECT tax_id FROM customer_directory WHERE id = 1"});
  ExpectNoSecrets(r, "derived values");
}

TEST_F(EvasionTest, SessionSideChannelsAreMasked) {
  AgentResult r = Python(R"PY(cur.execute("LISTEN leak")
cur.execute("SELECT pg_notify('leak', ssn) FROM customers WHERE id = 1")
cur.execute("SELECT set_config('application_name', ssn, false) FROM customers WHERE id = 1")
cur.execute("SELECT 1")
print(cur.fetchall()))PY");
  ExpectNoSecrets(r, "NOTIFY payload and ParameterStatus");
}

}  // namespace
}  // namespace interlock::testing
