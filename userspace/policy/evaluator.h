// PolicyEvaluator: the pure decision function of Interlock —
//   (who, which resource, what operation: a SQL statement string, an HTTP request or an
//    SSH channel request)
//     -> allow | deny | review | mask, with the rule
// and reason. No I/O, no clock: tested with tables (tests/unit/policy/).
// Precedence is documented in schemas/interlock/v1/policy.proto.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto eval, PolicyEvaluator::Create(policy));
//   Decision d = eval->Evaluate(who, "billing-db", classification);
//   if (d.action == v1::ACTION_REVIEW) hold(d.rule_id, d.reason, d.review_timeout);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/policy.pb.h"
#include "interlock/v1/sql.pb.h"
#include "userspace/policy/operation.h"
#include "userspace/policy/ssh_match.h"

namespace interlock::policy {

// The facts about the requester a rule's subject is matched against.
struct SubjectFacts {
  std::string workload;
  std::string cgroup_path;
  uint32_t uid = 0;
  // From a verified token, when one was presented.
  bool has_token = false;
  std::string sub;
  std::vector<std::string> groups;
  std::map<std::string, std::string> claims;
};

struct Decision {
  v1::Action action = v1::ACTION_DENY;
  // The deciding rule; empty when the resource default decided.
  std::string rule_id;
  std::string reason;
  std::string mask_profile;
  absl::Duration review_timeout = absl::Minutes(5);
  // Index of the statement (in a multi-statement string) that decided.
  int statement_index = 0;
  // "rule", "default", "parse_error_default".
  std::string source;
  // Statements (indexes) whose planner row estimate could make this decision stricter: a
  // rule with estimated_rows_gt or full_table matches them in every other respect. The
  // caller asks the planner (EXPLAIN on interlockd's own connection) and evaluates again
  // with the estimates; empty when no rule asks.
  std::vector<int> needs_estimate;
  // For statements in needs_estimate, by index: the tables whose whole-table estimate a
  // full_table rule compares the statement's with (StatementEstimate::table_rows).
  std::map<int, std::vector<v1::TableRef>> needs_table_estimates;
};

// An estimate that could not be obtained (the planner is unreachable, the EXPLAIN was
// refused): every condition that needs it holds (fail closed).
inline constexpr int64_t kEstimateFailed = INT64_MAX;

// The planner's estimates for one statement of the judged string (Decision::needs_estimate).
struct StatementEstimate {
  // Rows the statement returns (SELECT) or changes (UPDATE/DELETE/INSERT/MERGE); nullopt:
  // not asked; kEstimateFailed: asked, none obtained.
  std::optional<int64_t> rows;
  // Rows of whole tables (`EXPLAIN SELECT * FROM t`) for full_table rules, keyed by the
  // TableRef's qualified_name as the statement wrote it. Given `rows`, a table asked for
  // and missing counts as kEstimateFailed.
  std::map<std::string, int64_t> table_rows;
};
// Per statement index of the judged string.
using StatementEstimates = std::vector<StatementEstimate>;

// "DENY", "REVIEW", ...
absl::string_view ActionName(v1::Action action);

class PolicyEvaluator {
 public:
  // Validates the policy: unique non-empty rule ids, an action on every rule, a
  // mask_profile on MASK rules, full_table_fraction in [0, 1], ResourcePolicy names unique,
  // at most one protocol's conditions per rule, valid http and ssh blocks (ssh
  // command_regex patterns are compiled here, once). INVALID_ARGUMENT, one line per problem,
  // naming the rule and field ("rules[3].match.ssh.requests[0]: ...").
  static absl::StatusOr<std::unique_ptr<PolicyEvaluator>> Create(v1::Policy policy);

  // `estimates`: per statement, the planner's estimates when known (see
  // Decision::needs_estimate); a rule with estimated_rows_gt or full_table holds only with
  // them.
  Decision Evaluate(const SubjectFacts& who, absl::string_view resource, const v1::SqlClassification& sql,
                    const StatementEstimates* estimates = nullptr) const;
  // Any protocol's operation: SQL as above (`estimates` apply only to SQL); HTTP and SSH by
  // the rules whose match applies to that protocol (an `http` or `ssh` block, or no
  // protocol's conditions at all), else the resource's default_action.
  Decision Evaluate(const SubjectFacts& who, absl::string_view resource, const Operation& op,
                    const StatementEstimates* estimates = nullptr) const;

  // The JSON pointers HttpMatch.json conditions of the rules concerning `who` on
  // `resource` ask about, sorted, each once: the HTTP session reads a request body and
  // fills HttpRequestFacts::json_fields only when this is not empty.
  std::vector<std::string> JsonPointersFor(const SubjectFacts& who, absl::string_view resource) const;

  // The mask profiles that apply to `who` on `resource` whatever the statement: those of
  // every MASK rule whose subject matches `who` and whose match.resources (when given)
  // matches `resource`, in rule order, each named once. The session masks every value it
  // returns to the agent with them (the "floor"), so a value a MASK rule protects cannot
  // be had through another statement kind, an approval, or an error message. Empty when
  // none applies (the session then relays results untouched).
  std::vector<std::string> MaskProfilesFor(const SubjectFacts& who, absl::string_view resource) const;

  // The resource's defaults (a default-constructed entry when not listed).
  const v1::ResourcePolicy& ForResource(absl::string_view resource) const;
  const v1::Policy& policy() const { return policy_; }

 private:
  PolicyEvaluator(v1::Policy policy, std::vector<std::unique_ptr<SshMatcher>> ssh);
  // The decision of the strictest rule concerning `who` on `resource` for which
  // `holds(index, rule)`, else the resource's default.
  template <typename Holds>
  Decision DecideOne(const SubjectFacts& who, absl::string_view resource, Holds holds) const;
  Decision EvaluateHttp(const SubjectFacts& who, absl::string_view resource, const HttpRequestFacts& req) const;
  Decision EvaluateSsh(const SubjectFacts& who, absl::string_view resource, const SshRequestFacts& req) const;
  Decision EvaluateOne(const SubjectFacts& who, absl::string_view resource, const v1::SqlClassification& sql,
                       int index, const StatementEstimates* estimates) const;

  v1::Policy policy_;
  // Per rule (by index): its compiled `ssh` block, nullptr without one.
  std::vector<std::unique_ptr<SshMatcher>> ssh_;
  v1::ResourcePolicy empty_resource_;
};

// Severity order used for precedence: DENY > REVIEW > MASK > ALLOW.
int Severity(v1::Action action);

}  // namespace interlock::policy
