#include "userspace/policy/evaluator.h"

#include <algorithm>
#include <cstdint>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/policy/glob.h"

namespace interlock::policy {

namespace {

// "public.customers" matches patterns "public.customers", "customers", "public.*", "*".
// A table the statement names without a schema is resolved by the session's search_path,
// which the agent controls: it matches a pattern for any schema ("public.customers" matches
// `customers`), so a qualified pattern cannot be walked around by leaving the schema out.
bool TableMatches(const std::string& pattern, const v1::TableRef& t) {
  if (!HasGlobMeta(pattern) && pattern.find('\0') == std::string::npos) {
    // A plain name (most patterns): the same three readings as below, without building
    // the qualified name. Names from the parser hold no NUL.
    absl::string_view p = pattern;
    const std::string& schema = t.schema();
    const std::string& name = t.name();
    if (schema.empty() ? p == name
                       : p.size() == schema.size() + 1 + name.size() && absl::StartsWith(p, schema) &&
                             p[schema.size()] == '.' && absl::EndsWith(p, name)) {
      return true;
    }
    size_t dot = p.rfind('.');
    if (dot == absl::string_view::npos) return p == name;
    return schema.empty() && p.substr(dot + 1) == name;
  }
  std::string qualified = t.schema().empty() ? t.name() : absl::StrCat(t.schema(), ".", t.name());
  if (Glob(pattern, qualified)) return true;
  size_t dot = pattern.rfind('.');
  if (dot == std::string::npos) return Glob(pattern, t.name());
  return t.schema().empty() && Glob(pattern.substr(dot + 1), t.name());
}

template <typename Refs>
bool AnyTable(const google::protobuf::RepeatedPtrField<std::string>& patterns, const Refs& refs) {
  for (const auto& p : patterns) {
    for (const auto& t : refs) {
      if (TableMatches(p, t)) return true;
    }
  }
  return false;
}

bool SubjectMatches(const v1::Subject& s, const SubjectFacts& who) {
  if (!s.workloads().empty() && !AnyGlob(s.workloads(), who.workload)) return false;
  if (!s.cgroups().empty()) {
    bool ok = false;
    for (const auto& prefix : s.cgroups()) {
      if (who.cgroup_path == prefix || absl::StartsWith(who.cgroup_path, absl::StrCat(prefix, "/"))) ok = true;
    }
    if (!ok) return false;
  }
  if (!s.units().empty()) {
    bool ok = false;
    for (absl::string_view part : absl::StrSplit(who.cgroup_path, '/', absl::SkipEmpty())) {
      ok |= AnyGlob(s.units(), part);
    }
    if (!ok) return false;
  }
  if (!s.uids().empty()) {
    bool ok = false;
    for (uint32_t u : s.uids()) ok |= u == who.uid;
    if (!ok) return false;
  }
  // Token claims: a rule that names any claim never matches a request without a token.
  bool wants_token = !s.subs().empty() || !s.groups().empty() || !s.claims().empty();
  if (wants_token && !who.has_token) return false;
  if (!s.subs().empty() && !AnyGlob(s.subs(), who.sub)) return false;
  if (!s.groups().empty()) {
    bool ok = false;
    for (const auto& g : who.groups) ok |= AnyGlob(s.groups(), g);
    if (!ok) return false;
  }
  for (const auto& [name, pattern] : s.claims()) {
    auto it = who.claims.find(name);
    if (it == who.claims.end() || !Glob(pattern, it->second)) return false;
  }
  return true;
}

// Statements that run the statement they wrap: EXPLAIN ANALYZE, and DECLARE CURSOR (its
// rows are the query's, fetched later).
bool RunsWrapped(const v1::SqlStatement& st) {
  return st.explain_analyze() || st.kind() == v1::STATEMENT_KIND_DECLARE;
}

bool IsCursorOfSelect(const v1::SqlStatement& st) {
  return st.kind() == v1::STATEMENT_KIND_DECLARE && st.inner_kind() == v1::STATEMENT_KIND_SELECT;
}

// How many SQL conditions the match sets (0: not a SQL rule).
int SqlConditions(const v1::Match& m) {
  int n = !m.kinds().empty() + !m.tables().empty() + !m.tables_written().empty();
  n += m.no_where() + m.no_limit() + !m.functions().empty() + m.multi_statement() + m.parse_error();
  n += (m.estimated_rows_gt() > 0) + m.copy_program() + m.copy_to() + m.selects_star() + m.executes_sql_text();
  n += m.full_table();
  return n;
}

bool HasSqlConditions(const v1::Match& m) { return SqlConditions(m) > 0; }

int HttpConditions(const v1::Match& m) {
  if (!m.has_http()) return 0;
  const v1::HttpMatch& h = m.http();
  return !h.methods().empty() + !h.hosts().empty() + !h.paths().empty() + h.query_size() + h.headers_size() +
         h.json_size();
}

int Specificity(const v1::Rule& r) {
  const v1::Match& m = r.match();
  const v1::Subject& s = r.subject();
  int n = !m.resources().empty() + SqlConditions(m) + HttpConditions(m) + SshConditions(m.ssh());
  n += !s.workloads().empty() + !s.cgroups().empty() + !s.uids().empty() + !s.subs().empty();
  n += !s.groups().empty() + !s.claims().empty() + !s.units().empty();
  return n;
}

// full_table defaults (policy.proto).
constexpr double kDefaultFullTableFraction = 0.9;
constexpr uint64_t kDefaultFullTableMinRows = 100;

// The tables a full_table condition compares the statement with: an UPDATE's or DELETE's
// target, every table a SELECT or an INSERT reads (INSERT ... SELECT copies rows out);
// narrowed to the rule's `tables` when it has any.
std::vector<const v1::TableRef*> FullTableCandidates(const v1::Match& m, const v1::SqlStatement& st) {
  auto runs = [&](v1::StatementKind k) {
    return st.kind() == k || (st.explain_analyze() && st.inner_kind() == k);
  };
  const google::protobuf::RepeatedPtrField<v1::TableRef>* refs = nullptr;
  if (runs(v1::STATEMENT_KIND_UPDATE) || runs(v1::STATEMENT_KIND_DELETE)) refs = &st.tables_written();
  else if (st.kind() == v1::STATEMENT_KIND_SELECT || runs(v1::STATEMENT_KIND_INSERT)) {
    refs = &st.tables_read();
  }
  std::vector<const v1::TableRef*> out;
  if (refs == nullptr) return out;
  for (const v1::TableRef& t : *refs) {
    bool named = m.tables().empty();
    for (const auto& p : m.tables()) named |= TableMatches(p, t);
    if (named) out.push_back(&t);
  }
  return out;
}

// Whether the statement's estimate reaches the fraction of some candidate table's (any
// estimate that could not be obtained: yes).
bool TouchesWholeTable(const v1::Match& m, const std::vector<const v1::TableRef*>& tables,
                       const StatementEstimate& est) {
  double fraction = m.full_table_fraction() > 0 ? m.full_table_fraction() : kDefaultFullTableFraction;
  uint64_t min_rows = m.full_table_min_rows() > 0 ? m.full_table_min_rows() : kDefaultFullTableMinRows;
  int64_t rows = *est.rows;
  for (const v1::TableRef* t : tables) {
    auto it = est.table_rows.find(t->qualified_name());
    int64_t table_rows = it == est.table_rows.end() ? kEstimateFailed : it->second;
    if (rows == kEstimateFailed || table_rows == kEstimateFailed) return true;
    if (table_rows < 0 || static_cast<uint64_t>(table_rows) < min_rows) continue;
    if (static_cast<double>(rows) >= fraction * static_cast<double>(table_rows)) return true;
  }
  return false;
}

// Whether the SQL conditions of `m` hold for statement `st` (nullptr: the string did not
// parse); `m.resources` is checked by the caller.
// `est`: the planner's estimates for the statement, when known. A rule with
// estimated_rows_gt or full_table holds only with a row estimate; without one,
// `*wants_estimate` is set when every other condition holds, and the tables a full_table
// rule compares with are appended to `*wanted_tables`.
bool SqlMatchHolds(const v1::Match& m, const v1::SqlClassification& sql, const v1::SqlStatement* st,
                   const StatementEstimate* est, bool* wants_estimate,
                   std::vector<v1::TableRef>* wanted_tables) {
  if (m.has_http() || m.has_ssh()) return false;  // an HTTP or SSH rule
  if (m.parse_error()) return sql.parse_error();
  if (st == nullptr) return false;  // only parse_error rules speak about unparsable input
  if (m.multi_statement() && !sql.multi_statement()) return false;
  if (!m.kinds().empty()) {
    // EXPLAIN ANALYZE runs its statement, and a cursor's rows are its query's: each is also
    // that statement's kind (a DECLARE is judged like the SELECT it will run).
    bool ok = false;
    for (int k : m.kinds()) ok |= k == st->kind() || (RunsWrapped(*st) && k == st->inner_kind());
    if (!ok) return false;
  }
  if (!m.tables().empty() && !AnyTable(m.tables(), st->tables_read()) &&
      !AnyTable(m.tables(), st->tables_written())) {
    return false;
  }
  if (!m.tables_written().empty() && !AnyTable(m.tables_written(), st->tables_written())) return false;
  if (m.no_where()) {
    auto runs = [&](v1::StatementKind k) {
      return st->kind() == k || (RunsWrapped(*st) && st->inner_kind() == k);
    };
    bool filtered_kind = runs(v1::STATEMENT_KIND_UPDATE) || runs(v1::STATEMENT_KIND_DELETE) ||
                         st->kind() == v1::STATEMENT_KIND_SELECT || IsCursorOfSelect(*st);
    if (!filtered_kind || st->has_where()) return false;
  }
  if (m.no_limit() && ((st->kind() != v1::STATEMENT_KIND_SELECT && !IsCursorOfSelect(*st)) || st->has_limit())) {
    return false;
  }
  if (!m.functions().empty()) {
    bool ok = false;
    for (const auto& f : st->functions()) {
      std::string name = absl::AsciiStrToLower(f);
      std::string bare = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
      ok |= AnyGlob(m.functions(), name) || AnyGlob(m.functions(), bare);
    }
    if (!ok) return false;
  }
  if (m.copy_program() && !st->copy().program()) return false;
  if (m.executes_sql_text() && !st->executes_sql_text()) return false;
  if (m.copy_to() && !(st->kind() == v1::STATEMENT_KIND_COPY && st->copy().direction() == v1::CopyInfo::DIRECTION_TO)) {
    return false;
  }
  if (m.selects_star() && !st->selects_star()) return false;
  std::vector<const v1::TableRef*> whole;
  if (m.full_table()) {
    whole = FullTableCandidates(m, *st);
    if (whole.empty()) return false;  // no table to compare with: no EXPLAIN either
  }
  if (m.estimated_rows_gt() == 0 && !m.full_table()) return true;
  if (est == nullptr || !est->rows.has_value()) {
    *wants_estimate = true;
    for (const v1::TableRef* t : whole) wanted_tables->push_back(*t);
    return false;
  }
  if (m.estimated_rows_gt() > 0 &&
      *est->rows <= static_cast<int64_t>(std::min<uint64_t>(m.estimated_rows_gt(), INT64_MAX))) {
    return false;
  }
  return !m.full_table() || TouchesWholeTable(m, whole, *est);
}

// Whether `pattern`'s segments match `path`'s: "*" and other globs within one segment,
// "**" (a whole segment) any number of segments, also none.
bool SegmentsMatch(const std::vector<absl::string_view>& pattern, size_t p,
                   const std::vector<absl::string_view>& path, size_t i) {
  for (; p < pattern.size(); ++p, ++i) {
    if (pattern[p] == "**") {
      for (size_t j = i; j <= path.size(); ++j) {
        if (SegmentsMatch(pattern, p + 1, path, j)) return true;
      }
      return false;
    }
    if (i >= path.size() || !Glob(pattern[p], path[i])) return false;
  }
  return i == path.size();
}

// Splits "/a/b/" into {"a", "b", ""}: a trailing slash is a segment of its own, so
// "/admin/*" does not match "/admin" but matches "/admin/".
std::vector<absl::string_view> PathSegments(absl::string_view path) {
  if (absl::StartsWith(path, "/")) path.remove_prefix(1);
  return absl::StrSplit(path, '/');
}

bool AnyPathGlob(const google::protobuf::RepeatedPtrField<std::string>& patterns, absl::string_view path) {
  std::vector<absl::string_view> segments = PathSegments(path);
  for (const std::string& p : patterns) {
    if (SegmentsMatch(PathSegments(p), 0, segments, 0)) return true;
  }
  return false;
}

// Every name -> glob entry holds ("*": present). Names compare ignoring ASCII case (header
// names are case-insensitive; .NET's and Go's binders read query names so too). A name
// given more than once may be read either way by the upstream: for a rule that refuses or
// holds (`strict_any`), one matching value is enough; for one that lets through, every
// value of the name must match, and there must be one.
bool FieldsHold(const google::protobuf::Map<std::string, std::string>& wanted,
                const std::vector<std::pair<std::string, std::string>>& fields, bool strict_any) {
  for (const auto& [name, pattern] : wanted) {
    bool any = false, all = true;
    for (const auto& [n, v] : fields) {
      if (!absl::EqualsIgnoreCase(n, name)) continue;
      const bool m = Glob(pattern, v);
      any |= m;
      all &= m;
    }
    if (!(strict_any ? any : any && all)) return false;
  }
  return true;
}

// Whether the `http` conditions of `m` hold for `req` (a rule without them: whether it has
// no other protocol's conditions either, i.e. applies to every protocol). `action`: the
// rule's, for body conditions on a body that cannot be judged (they hold only for DENY and
// REVIEW).
bool HttpMatchHolds(const v1::Match& m, const HttpRequestFacts& req, v1::Action action) {
  if (HasSqlConditions(m) || m.has_ssh()) return false;
  if (!m.has_http()) return true;
  const v1::HttpMatch& h = m.http();
  if (!h.methods().empty() &&
      std::find(h.methods().begin(), h.methods().end(), req.method) == h.methods().end()) {
    return false;
  }
  if (!h.hosts().empty() && !AnyGlob(h.hosts(), req.host)) return false;
  if (!h.paths().empty() && !AnyPathGlob(h.paths(), req.path)) return false;
  const bool refuses = Severity(action) >= Severity(v1::ACTION_REVIEW);
  if (!FieldsHold(h.query(), req.query, refuses) || !FieldsHold(h.headers(), req.headers, refuses)) return false;
  if (h.json().empty()) return true;
  if (req.body == HttpRequestFacts::Body::kUnjudgable) return Severity(action) >= Severity(v1::ACTION_REVIEW);
  for (const auto& [pointer, pattern] : h.json()) {
    auto it = req.json_fields.find(pointer);
    if (it == req.json_fields.end() || !Glob(pattern, it->second)) return false;
  }
  return true;
}

bool ValidHeaderName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (absl::ascii_isupper(c) || !(absl::ascii_isalnum(c) || absl::StrContains("!#$%&'*+-.^_`|~", c))) {
      return false;
    }
  }
  return true;
}

// Whether `r` speaks about `who` on `resource` at all (its subject and match.resources).
bool Concerns(const v1::Rule& r, const SubjectFacts& who, absl::string_view resource) {
  if (!r.match().resources().empty() && !AnyGlob(r.match().resources(), resource)) return false;
  return SubjectMatches(r.subject(), who);
}

// Precedence between two applicable rules (policy.proto): the stricter action, then the
// more specific rule, then the earlier one (`best`, seen first).
bool Outranks(const v1::Rule& r, const v1::Rule* best) {
  if (best == nullptr || Severity(r.action()) > Severity(best->action())) return true;
  return Severity(r.action()) == Severity(best->action()) && Specificity(r) > Specificity(*best);
}

void DecideByRule(const v1::Rule& r, Decision* d) {
  d->action = r.action();
  d->rule_id = r.id();
  d->reason = r.reason().empty() ? r.description() : r.reason();
  d->mask_profile = r.mask_profile();
  if (r.review_timeout_s() > 0) d->review_timeout = absl::Seconds(r.review_timeout_s());
  d->source = "rule";
}

void DecideByDefault(const v1::ResourcePolicy& rp, Decision* d) {
  d->action = rp.default_action() != v1::ACTION_UNSPECIFIED ? rp.default_action() : v1::ACTION_REVIEW;
  d->reason = "no rule matched: resource default";
  d->source = "default";
}

// A load-time problem when `m` has more than one protocol's conditions (`where`: "rules[3]").
void CheckOneProtocol(const v1::Match& m, const std::string& where, std::vector<std::string>* problems) {
  if (HasSqlConditions(m) + m.has_http() + m.has_ssh() <= 1) return;
  std::vector<absl::string_view> kinds;
  if (HasSqlConditions(m)) kinds.push_back("SQL conditions");
  if (m.has_http()) kinds.push_back("an http block");
  if (m.has_ssh()) kinds.push_back("an ssh block");
  problems->push_back(absl::StrCat(where, ".match: has ", absl::StrJoin(kinds, " and "),
                                   "; a rule matches one protocol (write one rule each)"));
}

// Load-time problems of one rule's http block (`where`: "rules[3]").
void CheckHttpMatch(const v1::Match& m, const std::string& where, std::vector<std::string>* problems) {
  if (!m.has_http()) return;
  const v1::HttpMatch& h = m.http();
  for (const std::string& method : h.methods()) {
    if (method.empty() || !ValidHeaderName(absl::AsciiStrToLower(method))) {
      problems->push_back(absl::StrCat(where, ".match.http.methods: \"", method, "\" is not a method token"));
    }
  }
  for (const std::string& path : h.paths()) {
    if (!absl::StartsWith(path, "/")) {
      problems->push_back(absl::StrCat(where, ".match.http.paths: \"", path, "\" does not start with /"));
    }
  }
  for (const auto& [name, glob] : h.headers()) {
    if (!ValidHeaderName(name)) {
      problems->push_back(absl::StrCat(where, ".match.http.headers: \"", name,
                                       "\" is not a lowercase header name"));
    }
  }
  for (const auto& [pointer, glob] : h.json()) {
    if (!pointer.empty() && pointer[0] != '/') {
      problems->push_back(absl::StrCat(where, ".match.http.json: \"", pointer,
                                       "\" is not a JSON pointer (RFC 6901: \"\" or /a/b)"));
    }
  }
}

}  // namespace

absl::string_view ActionName(v1::Action action) {
  switch (action) {
    case v1::ACTION_ALLOW: return "ALLOW";
    case v1::ACTION_DENY: return "DENY";
    case v1::ACTION_REVIEW: return "REVIEW";
    case v1::ACTION_MASK: return "MASK";
    default: return "UNSPECIFIED";
  }
}

int Severity(v1::Action action) {
  switch (action) {
    case v1::ACTION_DENY: return 4;
    case v1::ACTION_REVIEW: return 3;
    case v1::ACTION_MASK: return 2;
    case v1::ACTION_ALLOW: return 1;
    default: return 4;  // unknown: as strict as it gets
  }
}

absl::StatusOr<std::unique_ptr<PolicyEvaluator>> PolicyEvaluator::Create(v1::Policy policy) {
  std::vector<std::string> problems;
  std::vector<std::unique_ptr<SshMatcher>> ssh(policy.rules_size());
  absl::flat_hash_set<std::string> ids;
  absl::flat_hash_set<std::string> profiles;
  for (int i = 0; i < policy.mask_profiles_size(); ++i) {
    const std::string& name = policy.mask_profiles(i).name();
    std::string where = absl::StrCat("mask_profiles[", i, "]");
    if (name.empty()) problems.push_back(absl::StrCat(where, ".name: required"));
    else if (!profiles.insert(name).second) problems.push_back(absl::StrCat(where, ".name: duplicate \"", name, "\""));
  }
  for (int i = 0; i < policy.rules_size(); ++i) {
    const v1::Rule& r = policy.rules(i);
    std::string where = absl::StrCat("rules[", i, "]");
    if (r.id().empty()) problems.push_back(absl::StrCat(where, ".id: required"));
    if (!r.id().empty() && !ids.insert(r.id()).second) {
      problems.push_back(absl::StrCat(where, ".id: duplicate id \"", r.id(), "\""));
    }
    if (r.action() == v1::ACTION_UNSPECIFIED) problems.push_back(absl::StrCat(where, ".action: required"));
    double fraction = r.match().full_table_fraction();
    if (!(fraction >= 0 && fraction <= 1)) {
      problems.push_back(absl::StrCat(where, ".match.full_table_fraction: ", fraction, " is not in (0, 1]"));
    }
    CheckOneProtocol(r.match(), where, &problems);
    CheckHttpMatch(r.match(), where, &problems);
    if (r.match().has_ssh()) {
      auto matcher = SshMatcher::Create(r.match().ssh(), absl::StrCat(where, ".match"), r.id());
      if (matcher.ok()) ssh[i] = std::move(*matcher);
      else problems.emplace_back(matcher.status().message());
    }
    if (r.action() == v1::ACTION_MASK && r.mask_profile().empty()) {
      problems.push_back(absl::StrCat(where, ".mask_profile: required for ACTION_MASK"));
    } else if (r.action() == v1::ACTION_MASK && !profiles.contains(r.mask_profile())) {
      problems.push_back(absl::StrCat(where, ".mask_profile: no mask_profiles entry named \"", r.mask_profile(), "\""));
    }
  }
  absl::flat_hash_set<std::string> resources;
  for (int i = 0; i < policy.resources_size(); ++i) {
    if (!resources.insert(policy.resources(i).resource()).second) {
      problems.push_back(absl::StrCat("resources[", i, "].resource: duplicate \"",
                                      policy.resources(i).resource(), "\""));
    }
  }
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) absl::StrAppend(&msg, msg.empty() ? "" : "\n", p);
    return absl::InvalidArgumentError(msg);
  }
  return std::unique_ptr<PolicyEvaluator>(new PolicyEvaluator(std::move(policy), std::move(ssh)));
}

PolicyEvaluator::PolicyEvaluator(v1::Policy policy, std::vector<std::unique_ptr<SshMatcher>> ssh)
    : policy_(std::move(policy)), ssh_(std::move(ssh)) {}

const v1::ResourcePolicy& PolicyEvaluator::ForResource(absl::string_view resource) const {
  for (const auto& r : policy_.resources()) {
    if (r.resource() == resource) return r;
  }
  return empty_resource_;
}

std::vector<std::string> PolicyEvaluator::MaskProfilesFor(const SubjectFacts& who,
                                                          absl::string_view resource) const {
  std::vector<std::string> out;
  if (policy_.mask_profiles().empty()) return out;
  for (const v1::Rule& r : policy_.rules()) {
    if (r.action() != v1::ACTION_MASK || r.mask_profile().empty()) continue;
    if (!r.match().resources().empty() && !AnyGlob(r.match().resources(), resource)) continue;
    if (!SubjectMatches(r.subject(), who)) continue;
    if (std::find(out.begin(), out.end(), r.mask_profile()) == out.end()) out.push_back(r.mask_profile());
  }
  return out;
}

Decision PolicyEvaluator::EvaluateOne(const SubjectFacts& who, absl::string_view resource,
                                      const v1::SqlClassification& sql, int index,
                                      const StatementEstimates* estimates) const {
  const v1::SqlStatement* st = sql.parse_error() ? nullptr : &sql.statements(index);
  const StatementEstimate* est = nullptr;
  if (estimates != nullptr && index < static_cast<int>(estimates->size())) est = &(*estimates)[index];
  const v1::Rule* best = nullptr;
  // Rules that need an estimate to decide, with the tables they compare with.
  std::vector<std::pair<const v1::Rule*, std::vector<v1::TableRef>>> wanting;
  for (const v1::Rule& r : policy_.rules()) {
    if (!Concerns(r, who, resource)) continue;
    bool wants = false;
    std::vector<v1::TableRef> tables;
    if (!SqlMatchHolds(r.match(), sql, st, est, &wants, &tables)) {
      if (wants) wanting.emplace_back(&r, std::move(tables));
      continue;
    }
    if (Outranks(r, best)) best = &r;
  }
  Decision d;
  d.statement_index = index;
  // An estimate matters only if its rule could make the decision stricter.
  auto note_estimate = [&](v1::Action decided) {
    bool needed = false;
    std::vector<v1::TableRef> tables;
    absl::flat_hash_set<std::string> seen;
    for (const auto& [rule, wanted] : wanting) {
      if (Severity(rule->action()) <= Severity(decided)) continue;
      needed = true;
      for (const v1::TableRef& t : wanted) {
        if (seen.insert(t.qualified_name()).second) tables.push_back(t);
      }
    }
    if (!needed) return;
    d.needs_estimate.push_back(index);
    if (!tables.empty()) d.needs_table_estimates[index] = std::move(tables);
  };
  if (best != nullptr) {
    note_estimate(best->action());
    DecideByRule(*best, &d);
    return d;
  }
  const v1::ResourcePolicy& rp = ForResource(resource);
  if (sql.parse_error()) {
    d.action = rp.parse_error_action() != v1::ACTION_UNSPECIFIED ? rp.parse_error_action() : v1::ACTION_DENY;
    d.reason = absl::StrCat("statement does not parse: ", sql.error());
    d.source = "parse_error_default";
    return d;
  }
  DecideByDefault(rp, &d);
  note_estimate(d.action);
  return d;
}

template <typename Holds>
Decision PolicyEvaluator::DecideOne(const SubjectFacts& who, absl::string_view resource, Holds holds) const {
  const v1::Rule* best = nullptr;
  for (int i = 0; i < policy_.rules_size(); ++i) {
    const v1::Rule& r = policy_.rules(i);
    if (Concerns(r, who, resource) && holds(i, r) && Outranks(r, best)) best = &r;
  }
  Decision d;
  if (best != nullptr) DecideByRule(*best, &d);
  else DecideByDefault(ForResource(resource), &d);
  return d;
}

Decision PolicyEvaluator::EvaluateHttp(const SubjectFacts& who, absl::string_view resource,
                                       const HttpRequestFacts& req) const {
  return DecideOne(who, resource, [&](int, const v1::Rule& r) { return HttpMatchHolds(r.match(), req, r.action()); });
}

// A rule applies to SSH requests through its `ssh` block, or when it has no protocol's
// conditions at all.
Decision PolicyEvaluator::EvaluateSsh(const SubjectFacts& who, absl::string_view resource,
                                      const SshRequestFacts& req) const {
  return DecideOne(who, resource, [&](int i, const v1::Rule& r) {
    if (ssh_[i] != nullptr) return ssh_[i]->Holds(req, r.action());
    return !HasSqlConditions(r.match()) && !r.match().has_http();
  });
}

Decision PolicyEvaluator::Evaluate(const SubjectFacts& who, absl::string_view resource, const Operation& op,
                                   const StatementEstimates* estimates) const {
  if (const auto* req = std::get_if<const HttpRequestFacts*>(&op)) return EvaluateHttp(who, resource, **req);
  if (const auto* req = std::get_if<const SshRequestFacts*>(&op)) return EvaluateSsh(who, resource, **req);
  return Evaluate(who, resource, *std::get<const v1::SqlClassification*>(op), estimates);
}

std::vector<std::string> PolicyEvaluator::JsonPointersFor(const SubjectFacts& who, absl::string_view resource) const {
  std::vector<std::string> out;
  for (const v1::Rule& r : policy_.rules()) {
    if (!r.match().has_http() || !Concerns(r, who, resource)) continue;
    for (const auto& [pointer, glob] : r.match().http().json()) {
      if (std::find(out.begin(), out.end(), pointer) == out.end()) out.push_back(pointer);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Decision PolicyEvaluator::Evaluate(const SubjectFacts& who, absl::string_view resource,
                                   const v1::SqlClassification& sql,
                                   const StatementEstimates* estimates) const {
  if (sql.parse_error() || sql.statements().empty()) {
    if (!sql.parse_error() && sql.statements().empty()) {
      // Empty query (only comments or whitespace): nothing runs.
      Decision d;
      d.action = v1::ACTION_ALLOW;
      d.reason = "empty statement";
      d.source = "default";
      return d;
    }
    return EvaluateOne(who, resource, sql, 0, estimates);
  }
  Decision worst;
  bool first = true;
  std::vector<int> needs;
  std::map<int, std::vector<v1::TableRef>> table_needs;
  for (int i = 0; i < sql.statements_size(); ++i) {
    Decision d = EvaluateOne(who, resource, sql, i, estimates);
    needs.insert(needs.end(), d.needs_estimate.begin(), d.needs_estimate.end());
    table_needs.merge(d.needs_table_estimates);
    if (first || Severity(d.action) > Severity(worst.action)) {
      worst = std::move(d);
      first = false;
    }
  }
  // Estimates that could not change the outcome any more are not asked for.
  worst.needs_estimate.clear();
  worst.needs_table_estimates.clear();
  if (Severity(worst.action) < Severity(v1::ACTION_DENY)) {
    worst.needs_estimate = std::move(needs);
    worst.needs_table_estimates = std::move(table_needs);
  }
  return worst;
}

}  // namespace interlock::policy
