// StatementGuard: policy decisions turned into forward / replace / hold / wait, the marker
// rewrite of a denial's ErrorResponse, and what a prepared name runs when Parse, Bind and
// Execute are pipelined (including a Parse the server rejects).
#include "userspace/proxy/pg/guard.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/policy/loader.h"
#include "userspace/sql/classify.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = codec::pg;

constexpr char kPolicy[] = R"YAML(
resources:
  - {resource: db, default_action: ACTION_REVIEW}
rules:
  - id: allow-select
    match: {kinds: [STATEMENT_KIND_SELECT, STATEMENT_KIND_TRANSACTION, STATEMENT_KIND_PREPARE,
                    STATEMENT_KIND_SET, STATEMENT_KIND_SHOW, STATEMENT_KIND_DEALLOCATE,
                    STATEMENT_KIND_RESET]}
    action: ACTION_ALLOW
  - id: review-delete
    match: {kinds: [STATEMENT_KIND_DELETE]}
    action: ACTION_REVIEW
    reason: deletes need a human
  - id: deny-drop
    match: {kinds: [STATEMENT_KIND_DDL]}
    action: ACTION_DENY
    reason: no schema changes
  - id: deny-lo-export
    match: {functions: [lo_export]}
    action: ACTION_DENY
  - id: deny-role
    match: {kinds: [STATEMENT_KIND_ROLE]}
    action: ACTION_DENY
    reason: no role changes
)YAML";

// Body of a message as the session passes it (without the 5-byte header).
std::string Body(const std::string& encoded) { return encoded.substr(5); }

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto eval = policy::LoadPolicyText(kPolicy, "test.yaml");
    ASSERT_TRUE(eval.ok()) << eval.status();
    policy_ = std::shared_ptr<const policy::PolicyEvaluator>(std::move(*eval));
    GuardOptions o;
    o.resource = "db";
    o.who.workload = "agent";
    o.nonce = "0123456789abcdef";
    guard_ = std::make_unique<StatementGuard>(o, &policy_);
  }

  GuardVerdict Front(const std::string& encoded) {
    auto v = guard_->OnFrontend(encoded[0], Body(encoded));
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : GuardVerdict{};
  }
  GuardVerdict Query(absl::string_view sql) { return Front(cpg::EncodeQuery(sql)); }
  GuardVerdict Parse(const std::string& name, const std::string& sql) {
    cpg::Parse p;
    p.statement = name;
    p.query = sql;
    return Front(cpg::Encode(p));
  }
  GuardVerdict Bind(const std::string& portal, const std::string& statement) {
    cpg::Bind b;
    b.portal = portal;
    b.statement = statement;
    return Front(cpg::Encode(b));
  }
  GuardVerdict Execute(const std::string& portal) {
    cpg::Execute e;
    e.portal = portal;
    return Front(cpg::Encode(e));
  }
  GuardVerdict Sync() { return Front(cpg::Encode(cpg::Sync{})); }
  std::optional<std::string> Back(const std::string& encoded) {
    return guard_->OnBackend(encoded[0], Body(encoded));
  }
  void Ready() { Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle)); }

  std::shared_ptr<const policy::PolicyEvaluator> policy_;
  std::unique_ptr<StatementGuard> guard_;
};

TEST_F(GuardTest, AllowedQueryIsForwardedWithItsDecision) {
  GuardVerdict v = Query("SELECT * FROM customers WHERE id = 1");
  EXPECT_EQ(v.kind, GuardVerdict::kForward);
  ASSERT_TRUE(v.decision.has_value());
  EXPECT_EQ(v.decision->action, v1::ACTION_ALLOW);
  EXPECT_EQ(v.audit.rule_id(), "allow-select");
  EXPECT_THAT(v.audit.statements(), ::testing::ElementsAre("SELECT r:customers no_limit star"));
}

TEST_F(GuardTest, DeniedQueryIsReplacedAndItsErrorRewritten) {
  GuardVerdict v = Query("DROP TABLE customers");
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  EXPECT_EQ(v.audit.rule_id(), "deny-drop");
  EXPECT_TRUE(v.audit.has_classification());
  // The replacement is a Query the server must reject, carrying the marker.
  auto q = cpg::ParseQuery(Body(v.replacement));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->query, "interlock_denied_0123456789abcdef_1");
  // The server's syntax error for it becomes interlockd's 42501 with the rule's reason.
  auto mine = Back(cpg::EncodeError("ERROR", "42601", "syntax error at or near \"interlock_denied_0123456789abcdef_1\""));
  ASSERT_TRUE(mine.has_value());
  auto e = cpg::ParseErrorResponse(Body(*mine));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->sqlstate(), "42501");
  EXPECT_EQ(e->message(), "interlock: no schema changes");
  EXPECT_THAT(std::string(e->detail()), ::testing::HasSubstr("deny-drop"));
  // Used once: a second identical error is not rewritten again.
  EXPECT_FALSE(Back(cpg::EncodeError("ERROR", "42601", "syntax error at or near \"interlock_denied_0123456789abcdef_1\""))
                   .has_value());
}

TEST_F(GuardTest, OtherErrorsAndForeignMarkersPassUnchanged) {
  Query("DROP TABLE t");
  EXPECT_FALSE(Back(cpg::EncodeError("ERROR", "42P01", "relation \"x\" does not exist")).has_value());
  EXPECT_FALSE(Back(cpg::EncodeError("ERROR", "42601", "syntax error at or near \"interlock_denied_ffffffffffffffff_1\""))
                   .has_value());
}

TEST_F(GuardTest, UnparseableQueryGetsASyntaxErrorNotPermissionDenied) {
  GuardVerdict v = Query("SELEC 1");
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  auto mine = Back(cpg::EncodeError("ERROR", "42601", "syntax error at or near \"interlock_denied_0123456789abcdef_1\""));
  ASSERT_TRUE(mine.has_value());
  auto e = cpg::ParseErrorResponse(Body(*mine));
  EXPECT_EQ(e->sqlstate(), "42601");
  EXPECT_THAT(std::string(e->message()), ::testing::HasSubstr("SELEC"));
}

TEST_F(GuardTest, ReviewHoldsTheExactText) {
  GuardVerdict v = Query("DELETE FROM customers WHERE id = 7");
  ASSERT_EQ(v.kind, GuardVerdict::kHold);
  EXPECT_EQ(v.review.statement, "DELETE FROM customers WHERE id = 7");
  EXPECT_EQ(v.review.protocol, "simple");
  EXPECT_EQ(v.review.statement_sha256.size(), 64u);
  EXPECT_EQ(v.review.fingerprint.size(), 16u);
  EXPECT_EQ(v.decision->review_timeout, absl::Minutes(5));
  // Denied after review: a replacement Query, and the agent's error names the approval.
  std::string repl = guard_->DenyHeld('Q', "interlock: approval apr-1 denied: no", "Policy rule.");
  auto q = cpg::ParseQuery(Body(repl));
  ASSERT_TRUE(q.ok());
  auto mine = Back(cpg::EncodeError("ERROR", "42601", absl::StrCat("syntax error at or near \"", q->query, "\"")));
  ASSERT_TRUE(mine.has_value());
  EXPECT_EQ(cpg::ParseErrorResponse(Body(*mine))->message(), "interlock: approval apr-1 denied: no");
}

// A cancel that withdraws a hold reaches the server only when something sent before the
// held statement may still run there; otherwise it would cancel the agent's next statement.
TEST_F(GuardTest, EarlierWorkInFlightIsWhatWasSentBeforeTheHeldStatement) {
  ASSERT_EQ(Query("DELETE FROM customers WHERE id = 7").kind, GuardVerdict::kHold);
  EXPECT_FALSE(guard_->EarlierWorkInFlight()) << "nothing before it";
  guard_->DenyHeld('Q', "withdrawn", "");
  Ready();
  ASSERT_EQ(Query("SELECT 1").kind, GuardVerdict::kForward);  // not answered yet
  ASSERT_EQ(Query("DELETE FROM customers WHERE id = 8").kind, GuardVerdict::kHold);
  EXPECT_TRUE(guard_->EarlierWorkInFlight()) << "SELECT 1 may still run";
  guard_->DenyHeld('Q', "withdrawn", "");
  Ready();
  Ready();
  // The extended protocol: an Execute earlier in the held one's batch may still run.
  ASSERT_EQ(Parse("a", "SELECT 1").kind, GuardVerdict::kForward);
  ASSERT_EQ(Parse("b", "DELETE FROM customers WHERE id = 9").kind, GuardVerdict::kForward);
  ASSERT_EQ(Bind("pa", "a").kind, GuardVerdict::kForward);
  ASSERT_EQ(Execute("pa").kind, GuardVerdict::kForward);
  ASSERT_EQ(Bind("pb", "b").kind, GuardVerdict::kForward);
  ASSERT_EQ(Execute("pb").kind, GuardVerdict::kHold);
  EXPECT_TRUE(guard_->EarlierWorkInFlight());
}

TEST_F(GuardTest, MultiStatementTakesTheStrictest) {
  EXPECT_EQ(Query("SELECT 1; DELETE FROM t WHERE a = 1").kind, GuardVerdict::kHold);
  Ready();
  EXPECT_EQ(Query("SELECT 1; DROP TABLE t; DELETE FROM t").kind, GuardVerdict::kReplace);
}

TEST_F(GuardTest, ParseDeniedIsReplacedUnderTheSameName) {
  GuardVerdict v = Parse("s1", "DROP TABLE customers");
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  auto p = cpg::ParseParse(Body(v.replacement));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->statement, "s1");
  EXPECT_EQ(p->query, "interlock_denied_0123456789abcdef_1");
}

TEST_F(GuardTest, ExecuteOfReviewedStatementHoldsWithParameterHash) {
  EXPECT_EQ(Parse("", "DELETE FROM customers WHERE id = $1").kind, GuardVerdict::kForward);
  cpg::Bind b;
  b.statement = "";
  b.params.push_back(absl::string_view("7"));
  EXPECT_EQ(Front(cpg::Encode(b)).kind, GuardVerdict::kForward);
  GuardVerdict v = Execute("");
  ASSERT_EQ(v.kind, GuardVerdict::kHold);
  EXPECT_EQ(v.review.statement, "DELETE FROM customers WHERE id = $1");
  EXPECT_EQ(v.review.protocol, "extended");
  EXPECT_EQ(v.review.parameters_sha256.size(), 64u);
  // Denied: Execute of a portal that cannot exist.
  std::string repl = guard_->DenyHeld('E', "no", "");
  auto e = cpg::ParseExecute(Body(repl));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->portal, "interlock_denied_0123456789abcdef_1");
}

TEST_F(GuardTest, ExecuteOfAllowedStatementForwards) {
  Parse("s", "SELECT 1");
  Bind("", "s");
  GuardVerdict v = Execute("");
  EXPECT_EQ(v.kind, GuardVerdict::kForward);
  EXPECT_EQ(v.decision->action, v1::ACTION_ALLOW);
}

TEST_F(GuardTest, BindAfterAnUnansweredEarlierBatchWaits) {
  // Batch 1 prepares "s"; before the server answers, batch 2 binds it. The guard cannot
  // know yet whether the Parse succeeded, so the Bind waits.
  Parse("s", "SELECT 1");
  Sync();
  EXPECT_EQ(Bind("", "s").kind, GuardVerdict::kWait);
  Back(cpg::Encode(cpg::ParseComplete{}));
  Ready();
  EXPECT_EQ(Bind("", "s").kind, GuardVerdict::kForward);
  EXPECT_EQ(Execute("").kind, GuardVerdict::kForward);
}

TEST_F(GuardTest, RejectedParseDoesNotRenameWhatAPortalRuns) {
  // "s" holds a DELETE (reviewed at Execute). A later Parse of "s" as a SELECT is refused
  // by the server (already exists): Execute must still be judged as the DELETE.
  Parse("s", "DELETE FROM customers WHERE id = 1");
  Sync();
  Back(cpg::Encode(cpg::ParseComplete{}));
  Ready();
  Parse("s", "SELECT 1");
  Sync();
  Back(cpg::EncodeError("ERROR", "42P05", "prepared statement \"s\" already exists"));
  Ready();
  Bind("", "s");
  EXPECT_EQ(Execute("").kind, GuardVerdict::kHold);
}

TEST_F(GuardTest, FailedParseDoesNotLeaveAStaleAllowedStatement) {
  // Parse of an allowed SELECT fails upstream (no such table); a later Parse under the same
  // name succeeds with a DELETE: Execute is judged as the DELETE.
  Parse("s", "SELECT * FROM nope");
  Sync();
  Back(cpg::EncodeError("ERROR", "42P01", "relation \"nope\" does not exist"));
  Ready();
  Parse("s", "DELETE FROM customers");
  Sync();
  Back(cpg::Encode(cpg::ParseComplete{}));
  Ready();
  Bind("", "s");
  EXPECT_EQ(Execute("").kind, GuardVerdict::kHold);
}

TEST_F(GuardTest, SqlExecuteIsJudgedAsWhatWasPrepared) {
  EXPECT_EQ(Query("PREPARE d AS DELETE FROM customers").kind, GuardVerdict::kForward);
  Ready();
  EXPECT_EQ(Query("EXECUTE d").kind, GuardVerdict::kHold);
  Ready();
  EXPECT_EQ(Query("PREPARE q AS SELECT 1").kind, GuardVerdict::kForward);
  Ready();
  EXPECT_EQ(Query("EXECUTE q").kind, GuardVerdict::kForward);
}

TEST_F(GuardTest, SqlExecuteInTheSameStringIsJudgedAsWhatItPrepares) {
  // Prepared and run in one Query: the EXECUTE is what the PREPARE before it holds, not an
  // unknown statement left to the resource default.
  GuardVerdict v = Query("PREPARE q2 AS SELECT 1; EXECUTE q2");
  EXPECT_EQ(v.kind, GuardVerdict::kForward);
  EXPECT_EQ(v.decision->rule_id, "allow-select");
  Ready();
  EXPECT_EQ(Query("PREPARE d2 AS DELETE FROM customers; EXECUTE d2").kind, GuardVerdict::kHold);
  Ready();
  // An EXECUTE before its PREPARE in the string runs nothing prepared there.
  EXPECT_EQ(Query("EXECUTE q3; PREPARE q3 AS SELECT 1").decision->source, "default");
}

TEST_F(GuardTest, FunctionCallByOid) {
  cpg::FunctionCall f;
  f.function_oid = 765;  // lo_export
  GuardVerdict v = Front(cpg::Encode(f));
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  EXPECT_EQ(v.audit.rule_id(), "deny-lo-export");
  f.function_oid = 954;  // loread: no rule -> the resource default (review)
  EXPECT_EQ(Front(cpg::Encode(f)).kind, GuardVerdict::kHold);
  EXPECT_EQ(FunctionNameForOid(12345), "oid:12345");
}

TEST_F(GuardTest, QueryInsideAnOpenBatchIsRefused) {
  Parse("", "SELECT 1");
  auto v = guard_->OnFrontend('Q', Body(cpg::EncodeQuery("SELECT 1")));
  EXPECT_TRUE(absl::IsInvalidArgument(v.status()));
}

TEST_F(GuardTest, StandardConformingStringsOffChangesWhatIsRead) {
  // With standard_conforming_strings off, the backslash escapes the quote and the DROP is
  // a real statement.
  Back(cpg::EncodeParameterStatus("standard_conforming_strings", "off"));
  EXPECT_FALSE(guard_->settings().standard_conforming_strings);
  GuardVerdict v = Query("SELECT 'a\\' , ' ; DROP TABLE customers; -- '");
  EXPECT_EQ(v.kind, GuardVerdict::kReplace);
}

TEST_F(GuardTest, TheSameTextIsReadAgainWhenTheSettingsChange) {
  // ClassifyText remembers the session's recent texts: a text judged harmless under
  // standard_conforming_strings on must not keep that reading once it is off.
  const char* text = "SELECT 'a\\' , ' ; DROP TABLE customers; -- '";
  auto judged = [&](absl::string_view sql) {
    GuardVerdict v = Query(sql);
    Ready();  // answered: the next one is read with the settings reported by then
    return v.kind;
  };
  EXPECT_EQ(judged(text), GuardVerdict::kForward);
  EXPECT_EQ(judged(text), GuardVerdict::kForward);
  Back(cpg::EncodeParameterStatus("standard_conforming_strings", "off"));
  EXPECT_EQ(judged(text), GuardVerdict::kReplace);
  Back(cpg::EncodeParameterStatus("standard_conforming_strings", "on"));
  EXPECT_EQ(judged(text), GuardVerdict::kForward);
  // More distinct texts than are remembered: each still judged as itself.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(judged(absl::StrCat("SELECT ", i)), GuardVerdict::kForward);
    EXPECT_EQ(judged(absl::StrCat("DROP TABLE customers", std::string(i % 3, ' '))), GuardVerdict::kReplace);
  }
}

TEST_F(GuardTest, ATextOfAShapeReadBeforeIsJudgedAsItself) {
  // The guard reuses a reading for a new text of the same shape only where no literal can
  // change it. set_config's parameter is a literal the guard reads itself: the second text
  // has the first one's shape and is a role change.
  auto judged = [&](absl::string_view sql) {
    GuardVerdict v = Query(sql);
    Ready();
    return v;
  };
  EXPECT_EQ(judged("SELECT set_config('application_name', 'x', false)").kind, GuardVerdict::kForward);
  GuardVerdict role = judged("SELECT set_config('role', 'postgres', false)");
  EXPECT_EQ(role.kind, GuardVerdict::kReplace);
  EXPECT_EQ(role.audit.rule_id(), "deny-role");
  EXPECT_EQ(judged("SELECT set_config('application_name', 'y', false)").kind, GuardVerdict::kForward);
  // LIMIT's count is read: a new count is read again.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(judged(absl::StrCat("SELECT * FROM accounts WHERE id > 0 LIMIT ", 10 + i)).kind, GuardVerdict::kForward);
  }
  // Literals of a shape read before: the same decision, statement after statement.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(judged(absl::StrCat("SELECT * FROM accounts WHERE id = ", i)).kind, GuardVerdict::kForward) << i;
    EXPECT_EQ(judged(absl::StrCat("DELETE FROM customers WHERE id = ", i)).kind,
              judged("DELETE FROM customers WHERE id = 1000").kind) << i;
  }
}

TEST_F(GuardTest, AShapesSharedReadingIsEveryTextsOwnWhateverItsLength) {
  // Texts of one shape share one reading (no copy) while their length stays; a text of
  // another length gets its own, and the shape keeps that one. Each held DELETE's audited
  // classification is the reading a fresh parse of its own text gives.
  const std::vector<std::string> texts = {
      "DELETE FROM customers WHERE id = 1",     "DELETE FROM customers WHERE id = 2",
      "DELETE FROM customers WHERE id = 12345", "DELETE FROM customers WHERE id = 7 ;  ",
      "DELETE FROM customers WHERE id = 12346", "DELETE FROM customers WHERE id = 3",
      "DELETE FROM customers WHERE id = 3",     "DELETE FROM customers WHERE id = 1"};
  for (const std::string& text : texts) {
    GuardVerdict v = Query(text);
    ASSERT_EQ(v.kind, GuardVerdict::kHold) << text;
    EXPECT_EQ(v.review.statement, text);
    auto fresh = sql::ClassifyShaped(text, guard_->settings());
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(v.audit.classification(), fresh->classification))
        << text << "\n" << v.audit.classification().DebugString() << "\n" << fresh->classification.DebugString();
    guard_->DenyHeld('Q', "withdrawn", "");
    Ready();
  }
}

TEST_F(GuardTest, PolicyReloadAppliesToTheNextDecision) {
  Parse("s", "DELETE FROM customers WHERE id = 1");
  Bind("", "s");
  auto relaxed = policy::LoadPolicyText("rules: [{id: all, action: ACTION_ALLOW}]", "p.yaml");
  ASSERT_TRUE(relaxed.ok());
  policy_ = std::move(*relaxed);
  EXPECT_EQ(Execute("").kind, GuardVerdict::kForward);
}

TEST_F(GuardTest, EstimatesAreAskedForThenDecide) {
  auto eval = policy::LoadPolicyText(R"YAML(
rules:
  - {id: reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_ALLOW}
  - {id: big, match: {kinds: [STATEMENT_KIND_SELECT], estimated_rows_gt: 100}, action: ACTION_DENY}
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok());
  policy_ = std::move(*eval);
  GuardVerdict v = Query("SELECT 1; SELECT * FROM customers");
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  ASSERT_EQ(v.estimates.size(), 2u);
  EXPECT_EQ(v.estimates[1].sql, "SELECT * FROM customers");
  RowEstimates est = {{.rows = 1}, {.rows = 100000}};
  auto again = guard_->OnFrontend('Q', Body(cpg::EncodeQuery("SELECT 1; SELECT * FROM customers")), &est);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, GuardVerdict::kReplace);
  EXPECT_EQ(again->audit.rule_id(), "big");
  // Extended: the estimate request carries the bound parameters.
  Ready();
  Parse("s", "SELECT * FROM customers WHERE id = $1");
  cpg::Bind b;
  b.statement = "s";
  b.params.push_back(absl::string_view("42"));
  Front(cpg::Encode(b));
  cpg::Execute e;
  v = Front(cpg::Encode(e));
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  EXPECT_EQ(v.estimates[0].sql, "SELECT * FROM customers WHERE id = $1");
  ASSERT_EQ(v.estimates[0].params.size(), 1u);
  EXPECT_EQ(*v.estimates[0].params[0], "42");
  est = {{.rows = 1}};
  again = guard_->OnFrontend('E', Body(cpg::Encode(e)), &est);
  EXPECT_EQ(again->kind, GuardVerdict::kForward);
}

// full_table: the guard asks for the statement's estimate and the whole table's (its EXPLAIN
// names the table exactly as the statement did, every part quoted), then decides.
TEST_F(GuardTest, FullTableAsksForTheWholeTableThenDecides) {
  auto eval = policy::LoadPolicyText(R"YAML(
rules:
  - {id: reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_ALLOW}
  - {id: writes, match: {kinds: [STATEMENT_KIND_DELETE, STATEMENT_KIND_UPDATE]}, action: ACTION_ALLOW}
  - {id: whole-customers, match: {tables: [customers], full_table: true}, action: ACTION_REVIEW}
  - {id: prepare, match: {kinds: [STATEMENT_KIND_PREPARE]}, action: ACTION_ALLOW}
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  policy_ = std::move(*eval);
  const std::string q = "SELECT 1; DELETE FROM public.\"customers\" WHERE true";
  GuardVerdict v = Query(q);
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  ASSERT_EQ(v.estimates.size(), 1u);
  EXPECT_EQ(v.estimates[0].statement_index, 1);
  EXPECT_EQ(v.estimates[0].sql, "DELETE FROM public.\"customers\" WHERE true");
  ASSERT_EQ(v.estimates[0].tables.size(), 1u);
  EXPECT_EQ(v.estimates[0].tables[0].name, "public.customers");
  EXPECT_EQ(v.estimates[0].tables[0].sql, "SELECT * FROM \"public\".\"customers\"");
  // The DELETE touches every row: held.
  RowEstimates est(2);
  est[1].rows = 1000;
  est[1].table_rows["public.customers"] = 1000;
  auto again = guard_->OnFrontend('Q', Body(cpg::EncodeQuery(q)), &est);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, GuardVerdict::kHold);
  EXPECT_EQ(again->audit.rule_id(), "whole-customers");
  Ready();
  // A narrow one runs.
  v = Query("DELETE FROM customers WHERE id = 3");
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  est = RowEstimates(1);
  est[0].rows = 1;
  est[0].table_rows["customers"] = 1000;
  again = guard_->OnFrontend('Q', Body(cpg::EncodeQuery("DELETE FROM customers WHERE id = 3")), &est);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, GuardVerdict::kForward);
  Ready();
  // The table's estimate could not be obtained: held (fail closed).
  v = Query("SELECT * FROM customers WHERE id = 3");
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  est[0].table_rows["customers"] = policy::kEstimateFailed;
  again = guard_->OnFrontend('Q', Body(cpg::EncodeQuery("SELECT * FROM customers WHERE id = 3")), &est);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, GuardVerdict::kHold);
  Ready();
  // A name with a quote in it is quoted back exactly.
  v = Query("SELECT * FROM \"we\"\"ird\" JOIN customers ON true");
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  ASSERT_EQ(v.estimates[0].tables.size(), 1u);  // only the rule's `tables`
  EXPECT_EQ(v.estimates[0].tables[0].sql, "SELECT * FROM \"customers\"");
  // Extended protocol: the portal's statement, its parameters, and the table.
  Ready();
  Parse("s", "UPDATE customers SET note = $1 WHERE 1 = 1");
  cpg::Bind b;
  b.statement = "s";
  b.params.push_back(absl::string_view(""));
  Front(cpg::Encode(b));
  cpg::Execute e;
  v = Front(cpg::Encode(e));
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  EXPECT_EQ(v.estimates[0].sql, "UPDATE customers SET note = $1 WHERE 1 = 1");
  ASSERT_EQ(v.estimates[0].params.size(), 1u);
  ASSERT_EQ(v.estimates[0].tables.size(), 1u);
  EXPECT_EQ(v.estimates[0].tables[0].sql, "SELECT * FROM \"customers\"");
  EXPECT_TRUE(v.estimates[0].tables[0].name == "customers");
  est = RowEstimates(1);
  est[0].rows = 1000;
  est[0].table_rows["customers"] = 1000;
  again = guard_->OnFrontend('E', Body(cpg::Encode(e)), &est);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, GuardVerdict::kHold);
  Sync();
  Ready();
  // SQL EXECUTE: judged as what it runs, and explained as written (interlockd's connection
  // has no such prepared statement: the estimate fails, and the rule applies).
  EXPECT_EQ(Query("PREPARE p AS DELETE FROM customers WHERE id = $1").kind, GuardVerdict::kForward);
  Ready();
  v = Query("EXECUTE p(3)");
  ASSERT_EQ(v.kind, GuardVerdict::kEstimate);
  EXPECT_EQ(v.estimates[0].sql, "EXECUTE p(3)");
  ASSERT_EQ(v.estimates[0].tables.size(), 1u);
  EXPECT_EQ(v.estimates[0].tables[0].sql, "SELECT * FROM \"customers\"");
  est = RowEstimates(1);
  est[0].rows = policy::kEstimateFailed;
  est[0].table_rows["customers"] = 1000;
  again = guard_->OnFrontend('Q', Body(cpg::EncodeQuery("EXECUTE p(3)")), &est);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, GuardVerdict::kHold);
}

TEST_F(GuardTest, MalformedMessagesAreErrorsNotCrashes) {
  for (char type : {'Q', 'P', 'B', 'E', 'C', 'F'}) {
    auto v = guard_->OnFrontend(type, std::string("\xff\xff\xff", 3));
    EXPECT_FALSE(v.ok()) << type;
  }
}


// ---- The server's parser state -----------------------------------------------------------

// Under standard_conforming_strings on, one SELECT of two strings; off, a SELECT and a
// DELETE of every customer.
constexpr char kCrafted[] = "SELECT 'a\\' , ' ; DELETE FROM customers; -- '";

TEST_F(GuardTest, PipelinedSettingChangeMakesAnAmbiguousQueryWait) {
  // Both Query messages arrive in one write: the SET is not answered yet when the second
  // one is judged.
  EXPECT_EQ(Query("SET standard_conforming_strings = off").kind, GuardVerdict::kForward);
  EXPECT_EQ(Query(kCrafted).kind, GuardVerdict::kWait);
  // The server answers the SET: ParameterStatus, then ReadyForQuery. Now it is read as the
  // server will read it, and the DELETE without WHERE is seen.
  Back(cpg::EncodeParameterStatus("standard_conforming_strings", "off"));
  Ready();
  GuardVerdict v = Query(kCrafted);
  EXPECT_EQ(v.kind, GuardVerdict::kHold);
  EXPECT_THAT(v.audit.statements(), ::testing::Contains(::testing::HasSubstr("DELETE")));
}

TEST_F(GuardTest, AnySettingChangeRouteIsCoveredBecauseTheTextIsCheckedNotTheCause) {
  // set_config, RESET ALL, DISCARD ALL, a function, a ROLLBACK reverting a SET: the guard
  // does not need to recognise the cause, every ambiguous text behind unanswered messages
  // waits.
  for (const char* first : {"SELECT set_config('standard_conforming_strings', 'off', false)", "RESET ALL",
                             "SELECT my_function()", "ROLLBACK", "DISCARD ALL"}) {
    SetUp();
    Query(first);
    EXPECT_EQ(Query(kCrafted).kind, GuardVerdict::kWait) << first;
  }
}

TEST_F(GuardTest, UnambiguousPipelinedQueryDoesNotWait) {
  Query("SET standard_conforming_strings = off");
  EXPECT_EQ(Query("SELECT 1").kind, GuardVerdict::kForward);
  // A backslash that reads the same either way.
  EXPECT_EQ(Query("SELECT E'a\\'b', 'c:\\dir'").kind, GuardVerdict::kForward);
}

TEST_F(GuardTest, ExtendedSameBatchSettingChangeThenAmbiguousParseIsRefused) {
  // Parse/Bind/Execute of the SET and a Parse of the crafted text before one Sync: the
  // server answers only at the Sync, so the guard cannot wait; it refuses.
  Parse("", "SET standard_conforming_strings = off");
  Bind("", "");
  EXPECT_EQ(Execute("").kind, GuardVerdict::kForward);
  GuardVerdict v = Parse("", kCrafted);
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  EXPECT_EQ(v.audit.source(), "parser_state");
  // Without an Execute before it, the same text in the same batch is read at once.
  Sync();
  Ready();
  EXPECT_EQ(Parse("", kCrafted).kind, GuardVerdict::kForward);
}

TEST_F(GuardTest, ExtendedLaterBatchWaitsForTheEarlierOne) {
  Parse("", "SET standard_conforming_strings = off");
  Bind("", "");
  Execute("");
  Sync();
  EXPECT_EQ(Parse("", kCrafted).kind, GuardVerdict::kWait);
  Back(cpg::Encode(cpg::ParseComplete{}));
  Back(cpg::Encode(cpg::BindComplete{}));
  Back(cpg::EncodeParameterStatus("standard_conforming_strings", "off"));
  Ready();
  // Read with the setting off: the DELETE is a statement of its own (the server refuses
  // two statements in one Parse; what matters is that the guard sees it).
  EXPECT_EQ(Parse("", kCrafted).kind, GuardVerdict::kForward);
  Bind("", "");
  GuardVerdict v = Execute("");
  EXPECT_EQ(v.kind, GuardVerdict::kHold);
  EXPECT_THAT(v.audit.statements(), ::testing::Contains(::testing::HasSubstr("DELETE")));
}

TEST_F(GuardTest, OneQueryStringIsReadWithTheSettingsAtItsStart) {
  // PostgreSQL lexes the whole simple-query string before running any of it
  // (exec_simple_query -> pg_parse_query), so the SET does not change how the rest reads:
  // the server runs a SET and a SELECT of two strings, as the guard reads it.
  GuardVerdict v = Query(absl::StrCat("SET standard_conforming_strings = off; ", kCrafted));
  EXPECT_EQ(v.kind, GuardVerdict::kForward);
  EXPECT_THAT(v.audit.statements(), ::testing::ElementsAre("SET", "SELECT no_limit"));
}

TEST_F(GuardTest, ClientOnlyEncodingReadsAsciiAndRefusesTheRest) {
  Back(cpg::EncodeParameterStatus("client_encoding", "SJIS"));
  EXPECT_EQ(Query("SELECT 1").kind, GuardVerdict::kForward);
  Ready();
  // In SJIS 0x95 0x5c is one character: the quote after it ends the string and the DELETE
  // runs. The guard, reading bytes, would see an escaped quote.
  GuardVerdict v = Query("SELECT E'\x95\\' ; DELETE FROM customers; -- '");
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  EXPECT_EQ(v.audit.source(), "client_encoding");
  EXPECT_EQ(Parse("", "SELECT '\x95\x40'").kind, GuardVerdict::kReplace);
}

TEST_F(GuardTest, PipelinedEncodingChangeMakesNonAsciiBeforeBackslashWait) {
  Query("SET client_encoding = 'SJIS'");
  EXPECT_EQ(Query("SELECT E'\x95\\' ; DELETE FROM customers; -- '").kind, GuardVerdict::kWait);
  EXPECT_EQ(Query("SELECT 'caf\xc3\xa9'").kind, GuardVerdict::kForward);
}

// ---- Role changes by any route ---------------------------------------------------------

TEST_F(GuardTest, EveryRoleChangeSpellingIsARoleChange) {
  for (const char* sql : {"SET ROLE postgres", "SET SESSION ROLE postgres", "SET LOCAL ROLE postgres",
                          "SET role TO DEFAULT", "SET \"role\" = 'postgres'", "RESET ROLE",
                          "SET SESSION AUTHORIZATION postgres", "SET SESSION AUTHORIZATION DEFAULT",
                          "RESET SESSION AUTHORIZATION", "SELECT set_config('role', 'postgres', false)",
                          "SELECT set_config('ROLE', 'postgres', true)",
                          "SELECT pg_catalog.set_config('session_authorization', 'postgres', false)",
                          "SELECT 1 FROM customers WHERE set_config('role', 'postgres', false) IS NOT NULL",
                          "SELECT set_config(n, 'postgres', false) FROM (VALUES ('role')) v(n)",
                          "SELECT set_config('ro' || 'le', 'postgres', false)",
                          "SELECT 1; SELECT set_config('role', 'postgres', false)",
                          "PREPARE p AS SELECT set_config('role', $1, false)",
                          "EXPLAIN ANALYZE SELECT set_config('role', 'postgres', false)"}) {
    GuardVerdict v = Query(sql);
    EXPECT_EQ(v.kind, GuardVerdict::kReplace) << sql;
    EXPECT_EQ(v.audit.rule_id(), "deny-role") << sql;
    Ready();
  }
  for (const char* sql : {"SELECT set_config('role', 'postgres', false)",
                          "SELECT set_config($1, $2, false)"}) {
    EXPECT_EQ(Parse("", sql).kind, GuardVerdict::kReplace) << sql;
  }
  Sync();
  Ready();
  // Other parameters through set_config are settings, not role changes.
  EXPECT_EQ(Query("SELECT set_config('application_name', 'x', false)").kind, GuardVerdict::kForward);
}

TEST_F(GuardTest, FastPathSetConfigOfRoleIsARoleChange) {
  cpg::FunctionCall f;
  f.function_oid = 2078;  // set_config(text, text, bool)
  f.args = {absl::string_view("role"), absl::string_view("postgres"), absl::string_view("f")};
  GuardVerdict v = Front(cpg::Encode(f));
  ASSERT_EQ(v.kind, GuardVerdict::kReplace);
  EXPECT_EQ(v.audit.rule_id(), "deny-role");
}

// ---- Approval windows are keyed on what runs -------------------------------------------

TEST_F(GuardTest, ExecuteFingerprintChangesWhenTheNameIsPreparedAgain) {
  Query("PREPARE p AS DELETE FROM accounts WHERE id = 1");
  Ready();
  GuardVerdict first = Query("EXECUTE p");
  ASSERT_EQ(first.kind, GuardVerdict::kHold);
  Ready();
  GuardVerdict same = Query("EXECUTE p");
  EXPECT_EQ(same.review.fingerprint, first.review.fingerprint);  // a window covers the same one
  Ready();
  Query("DEALLOCATE p; PREPARE p AS DELETE FROM customers WHERE id > 0");
  Ready();
  GuardVerdict again = Query("EXECUTE p");
  ASSERT_EQ(again.kind, GuardVerdict::kHold);
  EXPECT_NE(again.review.fingerprint, first.review.fingerprint);
  EXPECT_EQ(again.audit.fingerprint(), again.review.fingerprint);
  // The extended protocol binding the SQL-prepared name: the same key.
  Parse("", "SELECT 1");
  Bind("", "p");
  GuardVerdict e = Execute("");
  ASSERT_EQ(e.kind, GuardVerdict::kHold);
  EXPECT_NE(e.review.fingerprint, first.review.fingerprint);
}

}  // namespace
}  // namespace interlock::proxy::pg
