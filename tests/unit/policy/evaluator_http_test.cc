// The policy evaluator on HTTP requests (policy.proto HttpMatch): which rules apply to which
// protocol, path segment globs, query/header/body conditions, and the fail-closed reading
// of a body that cannot be judged.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/policy/refused_match.h"
#include "userspace/policy/evaluator.h"
#include "userspace/policy/loader.h"
#include "userspace/sql/classify.h"

namespace interlock::policy {
namespace {

constexpr char kApiPolicy[] = R"YAML(
resources:
  - {resource: crm-api, default_action: ACTION_DENY}
rules:
  - id: read-customers
    match: {resources: [crm-api], http: {methods: [GET, HEAD], paths: ["/v1/customers", "/v1/customers/*"]}}
    action: ACTION_ALLOW
  - id: mask-customers
    match: {resources: [crm-api], http: {paths: ["/v1/customers/**"]}}
    action: ACTION_MASK
    mask_profile: pii
  - id: review-deletes
    match: {http: {methods: [DELETE], paths: ["/v1/**"]}}
    action: ACTION_REVIEW
    review_timeout_s: 60
  - id: deny-admin
    match: {http: {paths: ["/admin/**", "/**/internal"]}}
    action: ACTION_DENY
    reason: admin endpoints are off limits
  - id: deny-export-param
    match: {http: {query: {format: "csv*"}}}
    action: ACTION_DENY
  - id: deny-big-transfers
    match: {http: {methods: [POST], paths: ["/v1/transfers"], json: {"/amount": "??????*"}}}
    action: ACTION_DENY
  - id: allow-transfers
    match: {http: {methods: [POST], paths: ["/v1/transfers"]}}
    action: ACTION_ALLOW
  - id: deny-debug-header
    match: {http: {headers: {x-debug: "*"}}}
    action: ACTION_DENY
  - id: sql-reads
    match: {kinds: [STATEMENT_KIND_SELECT]}
    action: ACTION_ALLOW
  - id: freeze-intern
    subject: {workloads: [intern]}
    action: ACTION_DENY
mask_profiles:
  - {name: pii}
)YAML";

class HttpPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto eval = LoadPolicyText(kApiPolicy, "api.yaml");
    ASSERT_TRUE(eval.ok()) << eval.status();
    eval_ = std::move(*eval);
  }
  Decision Judge(HttpRequestFacts req, const SubjectFacts& who = {.workload = "agent"}) const {
    if (req.host.empty()) req.host = "api.internal";
    return eval_->Evaluate(who, "crm-api", Operation{&req});
  }
  std::unique_ptr<PolicyEvaluator> eval_;
};

TEST_F(HttpPolicyTest, MethodsAndPathSegmentGlobs) {
  EXPECT_EQ(Judge({.method = "HEAD", .path = "/v1/customers/7"}).rule_id, "mask-customers");
  // The mask rule (stricter than allow) covers /v1/customers itself too ("**" spans no
  // segment as well), but not its siblings.
  EXPECT_EQ(Judge({.method = "GET", .path = "/v1/customers"}).rule_id, "mask-customers");
  EXPECT_EQ(Judge({.method = "GET", .path = "/v1/customersx"}).source, "default");
  EXPECT_EQ(Judge({.method = "GET", .path = "/v1/customers/7"}).mask_profile, "pii");
  // "*" stays within one segment; without a rule the resource default (deny) decides.
  Decision deeper = Judge({.method = "POST", .path = "/v1/customers/7/notes"});
  EXPECT_EQ(deeper.rule_id, "mask-customers");  // "**" spans segments
  Decision other = Judge({.method = "GET", .path = "/v1/orders"});
  EXPECT_EQ(other.action, v1::ACTION_DENY);
  EXPECT_EQ(other.source, "default");
  // Methods are case-sensitive tokens: "get" is another method.
  EXPECT_EQ(Judge({.method = "POST", .path = "/v1/transfers"}).rule_id, "allow-transfers");
  EXPECT_EQ(Judge({.method = "post", .path = "/v1/transfers"}).source, "default");
}

TEST_F(HttpPolicyTest, DoubleStarMatchesAnyDepthAlsoNone) {
  EXPECT_EQ(Judge({.method = "GET", .path = "/admin"}).rule_id, "deny-admin");
  EXPECT_EQ(Judge({.method = "GET", .path = "/admin/"}).rule_id, "deny-admin");
  EXPECT_EQ(Judge({.method = "GET", .path = "/admin/users/1"}).rule_id, "deny-admin");
  EXPECT_EQ(Judge({.method = "GET", .path = "/internal"}).rule_id, "deny-admin");
  EXPECT_EQ(Judge({.method = "GET", .path = "/v1/customers/internal"}).rule_id, "deny-admin");
  EXPECT_EQ(Judge({.method = "GET", .path = "/administrator"}).source, "default");
  Decision d = Judge({.method = "GET", .path = "/admin/x"});
  EXPECT_EQ(d.reason, "admin endpoints are off limits");
}

TEST_F(HttpPolicyTest, ReviewCarriesItsTimeout) {
  Decision d = Judge({.method = "DELETE", .path = "/v1/customers/7"});
  EXPECT_EQ(d.action, v1::ACTION_REVIEW);
  EXPECT_EQ(d.rule_id, "review-deletes");
  EXPECT_EQ(d.review_timeout, absl::Seconds(60));
}

TEST_F(HttpPolicyTest, QueryAndHeaderConditions) {
  HttpRequestFacts csv{.method = "GET", .path = "/v1/customers", .query = {{"page", "2"}, {"format", "csv"}}};
  EXPECT_EQ(Judge(csv).rule_id, "deny-export-param");
  HttpRequestFacts json{.method = "GET", .path = "/v1/customers", .query = {{"format", "json"}}};
  EXPECT_EQ(Judge(json).rule_id, "mask-customers");
  // A header sent twice holds when any of its values matches.
  HttpRequestFacts debug{.method = "GET", .path = "/v1/customers", .headers = {{"accept", "*/*"}, {"x-debug", ""}}};
  EXPECT_EQ(Judge(debug).rule_id, "deny-debug-header");
}

TEST_F(HttpPolicyTest, JsonBodyConditionsAndAnUnjudgableBodyFailsClosed) {
  HttpRequestFacts big{.method = "POST", .path = "/v1/transfers", .body = HttpRequestFacts::Body::kJudged,
                       .json_fields = {{"/amount", "1500000"}}};
  EXPECT_EQ(Judge(big).rule_id, "deny-big-transfers");
  HttpRequestFacts small = big;
  small.json_fields = {{"/amount", "25"}};
  EXPECT_EQ(Judge(small).rule_id, "allow-transfers");
  HttpRequestFacts missing = big;
  missing.json_fields.clear();
  EXPECT_EQ(Judge(missing).rule_id, "allow-transfers");
  // Not JSON, or over the size limit: the deny rule holds, whatever the amount.
  HttpRequestFacts opaque{.method = "POST", .path = "/v1/transfers", .body = HttpRequestFacts::Body::kUnjudgable};
  EXPECT_EQ(Judge(opaque).rule_id, "deny-big-transfers");
  EXPECT_THAT(eval_->JsonPointersFor({.workload = "agent"}, "crm-api"), ::testing::ElementsAre("/amount"));
}

TEST_F(HttpPolicyTest, RulesApplyToTheirOwnProtocolOnly) {
  // A SQL rule never decides an HTTP request; a rule with only a subject decides both.
  EXPECT_NE(Judge({.method = "GET", .path = "/v1/orders"}).rule_id, "sql-reads");
  auto sql = sql::Classify("SELECT 1");
  ASSERT_TRUE(sql.ok());
  Decision by_sql = eval_->Evaluate({.workload = "agent"}, "crm-api", Operation{&*sql});
  EXPECT_EQ(by_sql.rule_id, "sql-reads");
  // An HTTP rule never decides a SQL statement: DELETE /v1/** is not DELETE FROM.
  auto del = sql::Classify("DELETE FROM customers WHERE id = 1");
  EXPECT_EQ(eval_->Evaluate({.workload = "agent"}, "crm-api", *del).source, "default");
  EXPECT_EQ(Judge({.method = "GET", .path = "/v1/customers"}, {.workload = "intern"}).rule_id, "freeze-intern");
  EXPECT_EQ(eval_->Evaluate({.workload = "intern"}, "crm-api", *sql).rule_id, "freeze-intern");
}

TEST(HttpPolicy, AnAllowRuleWithBodyConditionsNeverAllowsABodyItCannotRead) {
  auto eval = LoadPolicyText(R"YAML(
rules:
  - id: allow-usd
    match: {http: {methods: [POST], json: {"/currency": "USD"}}}
    action: ACTION_ALLOW
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  HttpRequestFacts usd{.method = "POST", .path = "/pay", .body = HttpRequestFacts::Body::kJudged,
                       .json_fields = {{"/currency", "USD"}}};
  EXPECT_EQ((*eval)->Evaluate({}, "api", Operation{&usd}).rule_id, "allow-usd");
  HttpRequestFacts opaque{.method = "POST", .path = "/pay", .body = HttpRequestFacts::Body::kUnjudgable};
  Decision d = (*eval)->Evaluate({}, "api", Operation{&opaque});
  EXPECT_EQ(d.source, "default");
  EXPECT_EQ(d.action, v1::ACTION_REVIEW);
}

// Query parameters and headers as the upstream may read them: a query name whatever its
// case (.NET and Go binders read "Force" as "force"), and a name given twice, of which the
// upstream may take either — a DENY or REVIEW rule holds when any of the values matches,
// an ALLOW or MASK rule only when every one does.
TEST(HttpPolicy, QueryNamesAnyCaseAndRepeatedParametersAreJudgedStrictly) {
  auto eval = LoadPolicyText(R"YAML(
resources:
  - {resource: api, default_action: ACTION_DENY}
rules:
  - id: no-force
    match: {http: {query: {force: "true"}}}
    action: ACTION_DENY
  - id: small-pages
    match: {http: {query: {limit: "?"}, headers: {x-tenant: "acme"}}}
    action: ACTION_ALLOW
)YAML", "p.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  auto decide = [&](std::vector<std::pair<std::string, std::string>> query,
                    std::vector<std::pair<std::string, std::string>> headers = {{"x-tenant", "acme"}}) {
    HttpRequestFacts r{.method = "GET", .path = "/v1/x"};
    r.query = std::move(query);
    r.headers = std::move(headers);
    return (*eval)->Evaluate({}, "api", Operation{&r});
  };
  EXPECT_EQ(decide({{"limit", "5"}}).rule_id, "small-pages");
  for (const char* name : {"force", "Force", "FORCE"}) {
    EXPECT_EQ(decide({{name, "true"}, {"limit", "5"}}).rule_id, "no-force") << name;
  }
  EXPECT_EQ(decide({{"force", "false"}, {"force", "true"}, {"limit", "5"}}).rule_id, "no-force");
  // Allowed only when every value of the name is allowed.
  Decision twice = decide({{"limit", "5"}, {"limit", "100000"}});
  EXPECT_NE(twice.rule_id, "small-pages");
  EXPECT_EQ(twice.action, v1::ACTION_DENY);
  EXPECT_NE(decide({{"limit", "5"}, {"LIMIT", "100000"}}).rule_id, "small-pages");
  EXPECT_NE(decide({{"limit", "5"}}, {{"x-tenant", "acme"}, {"x-tenant", "other"}}).rule_id, "small-pages");
}

TEST(HttpPolicyLoad, ProblemsNameTheRuleAndField) {
  ExpectRefusedMatch("{kinds: [STATEMENT_KIND_SELECT], http: {methods: [GET]}}", "a rule matches one protocol");
  ExpectRefusedMatch("{http: {paths: [\"v1/x\"]}}", "does not start with /");
  ExpectRefusedMatch("{http: {headers: {X-Debug: \"*\"}}}", "not a lowercase header name");
  ExpectRefusedMatch("{http: {methods: [\"GE T\"]}}", "not a method token");
  ExpectRefusedMatch("{http: {json: {amount: \"1\"}}}", "not a JSON pointer");
}

}  // namespace
}  // namespace interlock::policy
