#include "userspace/proxy/pg/guard.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/status_macros.h"
#include "userspace/proxy/pg/statement_tracker.h"
#include "userspace/sql/normalize.h"
#include "userspace/sql/set_config.h"

namespace interlock::proxy::pg {

namespace cpg = codec::pg;

namespace {

constexpr absl::string_view kMarkerPrefix = "interlock_denied_";

absl::string_view KindName(v1::StatementKind k) {
  const std::string& full = v1::StatementKind_Name(k);
  absl::string_view v = full;
  absl::ConsumePrefix(&v, "STATEMENT_KIND_");
  return v;
}

// Classify never fails open: an internal failure is judged as a parse error. `holds_for_shape`
// (may be null): sql::ClassifyShaped's answer, false on failure.
v1::SqlClassification ClassifyOrError(absl::string_view text, const sql::SessionSettings& s,
                                      bool* holds_for_shape = nullptr) {
  absl::StatusOr<sql::ShapedClassification> c = sql::ClassifyShaped(text, s);
  if (holds_for_shape != nullptr) *holds_for_shape = c.ok() && c->holds_for_shape;
  if (c.ok()) return std::move(c->classification);
  v1::SqlClassification e;
  e.set_parse_error(true);
  e.set_error(absl::StrCat("classifier failure: ", c.status().message()));
  return e;
}

// Hash of bound values as they are on the wire: (length or -1, bytes) each.
std::string ParamsSha256(const std::vector<std::optional<absl::string_view>>& params) {
  std::string buf;
  for (const auto& p : params) {
    int32_t len = p.has_value() ? static_cast<int32_t>(p->size()) : -1;
    buf.append(reinterpret_cast<const char*>(&len), sizeof len);
    if (p.has_value()) buf.append(p->data(), p->size());
  }
  return params.empty() ? std::string() : Sha256Hex(buf);
}

// The whole-table EXPLAINs a full_table rule needs for statement `index`. Every name part
// is quoted, so the SQL names exactly the relation the statement named (a keyword or any
// other character cannot change what it reads).
std::vector<TableEstimateNeed> TableNeeds(const policy::Decision& d, int index) {
  std::vector<TableEstimateNeed> out;
  auto it = d.needs_table_estimates.find(index);
  if (it == d.needs_table_estimates.end()) return out;
  for (const v1::TableRef& t : it->second) {
    std::vector<std::string> parts;
    for (const std::string* part : {&t.catalog(), &t.schema(), &t.name()}) {
      if (!part->empty()) parts.push_back(absl::StrCat("\"", absl::StrReplaceAll(*part, {{"\"", "\"\""}}), "\""));
    }
    out.push_back({t.qualified_name(), absl::StrCat("SELECT * FROM ", absl::StrJoin(parts, "."))});
  }
  return out;
}

bool IsAscii(absl::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// A non-ASCII byte right before a backslash: in a client-only encoding the two may be one
// character, and the backslash not an escape.
bool HighByteBeforeBackslash(absl::string_view text) {
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) >= 0x80 && text[i + 1] == '\\') return true;
  }
  return false;
}

// Two classifications of the same text that split and read it alike (constants aside).
bool SameReading(const v1::SqlClassification& a, const v1::SqlClassification& b) {
  if (a.parse_error() != b.parse_error()) return false;
  if (a.parse_error()) return true;
  if (a.fingerprint() != b.fingerprint() || a.statements_size() != b.statements_size()) return false;
  for (int i = 0; i < a.statements_size(); ++i) {
    const v1::SqlStatement& x = a.statements(i);
    const v1::SqlStatement& y = b.statements(i);
    if (x.kind() != y.kind() || x.location() != y.location() || x.length() != y.length() ||
        x.SerializeAsString() != y.SerializeAsString()) {
      return false;
    }
  }
  return true;
}

bool CallsSetConfig(const v1::SqlStatement& s) {
  for (const std::string& f : s.functions()) {
    if (absl::EndsWith(f, "set_config")) return true;
  }
  return false;
}

// set_config(name, ...) of role or session_authorization, or of a name that is not a
// constant (it may be either): a role change, like SET ROLE.
bool SetsRole(absl::string_view parameter) {
  return parameter.empty() || parameter == "role" || parameter == "session_authorization";
}

void MarkRole(v1::SqlStatement* s, absl::string_view parameter) {
  s->set_kind(v1::STATEMENT_KIND_ROLE);
  s->set_kind_detail(absl::StrCat("set_config(", parameter.empty() ? "?" : parameter, ")"));
}

}  // namespace

std::string SummarizeStatement(const v1::SqlStatement& s) {
  std::string out(KindName(s.kind()));
  if (s.kind() == v1::STATEMENT_KIND_EXPLAIN || s.kind() == v1::STATEMENT_KIND_PREPARE ||
      s.kind() == v1::STATEMENT_KIND_DECLARE) {
    absl::StrAppend(&out, "(", KindName(s.inner_kind()), ")");
  }
  auto names = [](const auto& refs) {
    std::vector<std::string> v;
    for (const auto& t : refs) v.push_back(t.qualified_name());
    return absl::StrJoin(v, ",");
  };
  if (!s.tables_written().empty()) absl::StrAppend(&out, " w:", names(s.tables_written()));
  if (!s.tables_read().empty()) absl::StrAppend(&out, " r:", names(s.tables_read()));
  if (!s.functions().empty()) absl::StrAppend(&out, " f:", absl::StrJoin(s.functions(), ","));
  bool filters = s.kind() == v1::STATEMENT_KIND_UPDATE || s.kind() == v1::STATEMENT_KIND_DELETE;
  if (filters && !s.has_where()) absl::StrAppend(&out, " no_where");
  if (s.kind() == v1::STATEMENT_KIND_SELECT && !s.has_limit()) absl::StrAppend(&out, " no_limit");
  if (s.selects_star()) absl::StrAppend(&out, " star");
  if (s.has_copy()) {
    absl::StrAppend(&out, s.copy().direction() == v1::CopyInfo::DIRECTION_TO ? " to" : " from");
    if (s.copy().program()) absl::StrAppend(&out, " program");
  }
  if (s.explain_analyze()) absl::StrAppend(&out, " analyze");
  if (s.row_locking()) absl::StrAppend(&out, " row_locking");
  return out;
}

std::string FunctionNameForOid(uint32_t oid) {
  // src/include/catalog/pg_proc.dat (fixed OIDs; libpq's lo_* functions look these up).
  switch (oid) {
    case 764:
    case 767: return "lo_import";
    case 765: return "lo_export";
    case 952: return "lo_open";
    case 953: return "lo_close";
    case 954: return "loread";
    case 955: return "lowrite";
    case 956: return "lo_lseek";
    case 3170: return "lo_lseek64";
    case 957: return "lo_creat";
    case 715: return "lo_create";
    case 2078: return "set_config";
    case 958: return "lo_tell";
    case 3171: return "lo_tell64";
    case 1004: return "lo_truncate";
    case 3172: return "lo_truncate64";
    case 964: return "lo_unlink";
    default: return absl::StrCat("oid:", oid);
  }
}

StatementGuard::StatementGuard(GuardOptions options,
                               const std::shared_ptr<const policy::PolicyEvaluator>* policy)
    : options_(std::move(options)), policy_(policy) {}

policy::Decision StatementGuard::Judge(const v1::SqlClassification& c, const RowEstimates* estimates) const {
  const policy::PolicyEvaluator* e = evaluator();
  if (e == nullptr) {
    policy::Decision d;
    d.action = v1::ACTION_ALLOW;
    d.source = "no_policy";
    return d;
  }
  return e->Evaluate(options_.who, options_.resource, c, estimates);
}

namespace {

// Parameters up to this size are kept per portal so EXPLAIN can run with them.
constexpr size_t kMaxKeptParamBytes = 64 * 1024;

// The text of statement `i` of a query string.
std::string StatementText(absl::string_view query, const v1::SqlStatement& s, const v1::SqlClassification& c) {
  if (c.statements_size() == 1) return std::string(query);
  size_t at = std::min<size_t>(s.location(), query.size());
  size_t len = s.length() == 0 ? query.size() - at : std::min<size_t>(s.length(), query.size() - at);
  return std::string(absl::StripAsciiWhitespace(query.substr(at, len)));
}

}  // namespace

StatementGuard::ClassificationPtr StatementGuard::ClassifyText(absl::string_view text,
                                                                const sql::SessionSettings& s) const {
  if (text.size() > kRecentTextBytes) return std::make_shared<const v1::SqlClassification>(ClassifyUncached(text, s, nullptr));
  for (auto it = recent_.begin(); it != recent_.end(); ++it) {
    if (it->text != text || !(it->settings == s)) continue;
    if (it != recent_.begin()) std::rotate(recent_.begin(), it, std::next(it));
    return recent_.front().classification;
  }
  // A new text of a shape read before (a client-only encoding reads a text by whether it is
  // ASCII, which its literals decide: never by shape).
  std::optional<std::string> shape;
  if (!sql::IsClientOnlyEncoding(s.client_encoding)) {
    shape = options_.lexer_memo != nullptr ? options_.lexer_memo->ShapeKey(text, s.standard_conforming_strings)
                                           : sql::ShapeKey(text, s.standard_conforming_strings);
  }
  ClassificationPtr c;
  if (shape.has_value()) {
    for (auto it = shapes_.begin(); it != shapes_.end(); ++it) {
      if (it->key != *shape || !(it->settings == s)) continue;
      if (it != shapes_.begin()) std::rotate(shapes_.begin(), it, std::next(it));
      Shape& hit = shapes_.front();
      if (hit.text_size != text.size()) {
        // Every literal lies inside the one statement (ClassifyShaped): only its length
        // moves. The shape keeps this length from now on: an agent's loop sends most of
        // its texts at one length.
        auto moved = std::make_shared<v1::SqlClassification>(*hit.classification);
        moved->mutable_statements(0)->set_length(
            static_cast<uint32_t>(int64_t{hit.classification->statements(0).length()} +
                                  static_cast<int64_t>(text.size()) - static_cast<int64_t>(hit.text_size)));
        hit.classification = std::move(moved);
        hit.text_size = text.size();
      }
      c = hit.classification;
      break;
    }
  }
  if (c == nullptr) {
    bool holds_for_shape = false;
    c = std::make_shared<const v1::SqlClassification>(ClassifyUncached(text, s, &holds_for_shape));
    if (shape.has_value() && holds_for_shape) {
      if (shapes_.size() == kRecentShapes) shapes_.pop_back();
      shapes_.push_front(Shape{*std::move(shape), s, c, text.size()});
    }
  }
  if (recent_.size() == kRecentTexts) recent_.pop_back();
  recent_.push_front(Recent{std::string(text), s, c});
  return c;
}

v1::SqlClassification StatementGuard::ClassifyUncached(absl::string_view text, const sql::SessionSettings& s,
                                                       bool* holds_for_shape) const {
  sql::SessionSettings as_read = s;
  // Client-only encodings are ASCII-compatible: ASCII text reads the same in them.
  if (sql::IsClientOnlyEncoding(s.client_encoding) && IsAscii(text)) as_read.client_encoding = "SQL_ASCII";
  v1::SqlClassification c = ClassifyOrError(text, as_read, holds_for_shape);
  if (c.parse_error()) return c;
  bool any = false;
  for (const v1::SqlStatement& st : c.statements()) any |= CallsSetConfig(st);
  if (!any) return c;
  // The guard reads set_config's arguments below (which parameter): their values decide.
  if (holds_for_shape != nullptr) *holds_for_shape = false;
  absl::StatusOr<std::vector<sql::SetConfigCall>> calls = sql::FindSetConfigCalls(text, as_read);
  if (!calls.ok()) {
    // Cannot tell which parameters: every statement calling set_config may change the role.
    for (v1::SqlStatement& st : *c.mutable_statements()) {
      if (CallsSetConfig(st)) MarkRole(&st, "");
    }
    return c;
  }
  for (const sql::SetConfigCall& call : *calls) {
    if (call.statement_index < c.statements_size() && SetsRole(call.parameter)) {
      MarkRole(c.mutable_statements(call.statement_index), call.parameter);
    }
  }
  return c;
}

bool StatementGuard::ReadsDifferently(absl::string_view text, const v1::SqlClassification& c) const {
  // client_encoding may have become a client-only one.
  if (HighByteBeforeBackslash(text)) return true;
  // standard_conforming_strings only changes what a backslash means.
  if (text.find('\\') == absl::string_view::npos) return false;
  sql::SessionSettings flipped = settings_;
  flipped.standard_conforming_strings = !flipped.standard_conforming_strings;
  return !SameReading(c, *ClassifyText(text, flipped));
}

std::optional<policy::Decision> StatementGuard::EncodingRefusal(absl::string_view text) const {
  if (!sql::IsClientOnlyEncoding(settings_.client_encoding) || IsAscii(text)) return std::nullopt;
  policy::Decision d;
  d.action = v1::ACTION_DENY;
  d.source = "client_encoding";
  d.reason = absl::StrCat("client_encoding ", settings_.client_encoding,
                          " cannot be analysed safely for non-ASCII text; use UTF8");
  return d;
}

std::string StatementGuard::CombinedFingerprint(const std::string& base,
                                                const std::vector<PreparedPtr>& candidates) const {
  std::string all = base;
  for (const PreparedPtr& p : candidates) absl::StrAppend(&all, "|", p->classification->fingerprint());
  return Sha256Hex(all).substr(0, 16);
}

v1::PolicyDecision StatementGuard::AuditOf(const policy::Decision& d, const v1::SqlClassification& c,
                                           bool full) const {
  v1::PolicyDecision a;
  a.set_action(std::string(policy::ActionName(d.action)));
  a.set_rule_id(d.rule_id);
  a.set_reason(d.reason);
  a.set_source(d.source);
  a.set_mask_profile(d.mask_profile);
  for (const v1::SqlStatement& s : c.statements()) a.add_statements(SummarizeStatement(s));
  a.set_fingerprint(c.fingerprint());
  a.set_parse_error(c.parse_error());
  a.set_parse_error_message(c.error());
  if (full) *a.mutable_classification() = c;
  return a;
}

std::optional<v1::SqlClassification> StatementGuard::ResolveExecutes(const v1::SqlClassification& c) const {
  bool any = false;
  for (const auto& s : c.statements()) any |= s.kind() == v1::STATEMENT_KIND_EXECUTE;
  if (!any) return std::nullopt;
  v1::SqlClassification out = c;
  out.clear_statements();
  std::vector<PreparedPtr> everything;
  // PREPAREs earlier in the same string run before its EXECUTEs ("PREPARE p AS ...;
  // EXECUTE p(1)"): they are candidates too.
  std::map<std::string, std::vector<const v1::SqlStatement*>> earlier;
  for (const v1::SqlStatement& s : c.statements()) {
    if (s.kind() == v1::STATEMENT_KIND_PREPARE) earlier[s.kind_detail()].push_back(&s);
    if (s.kind() != v1::STATEMENT_KIND_EXECUTE) {
      *out.add_statements() = s;
      continue;
    }
    bool in_string = false;
    if (auto it = earlier.find(s.kind_detail()); it != earlier.end()) {
      for (const v1::SqlStatement* p : it->second) {
        v1::SqlStatement inner = *p;
        inner.set_kind(p->inner_kind());
        inner.set_inner_kind(v1::STATEMENT_KIND_UNSPECIFIED);
        *out.add_statements() = std::move(inner);
        in_string = true;
      }
    }
    std::vector<PreparedPtr> candidates;
    if (auto it = sql_prepared_.find(s.kind_detail()); it != sql_prepared_.end()) {
      candidates.insert(candidates.end(), it->second.begin(), it->second.end());
    }
    for (const Objects* o : {&projected_, &confirmed_}) {
      if (auto it = o->statements.find(s.kind_detail()); it != o->statements.end()) {
        candidates.push_back(it->second);
      }
    }
    if (candidates.empty()) {
      if (!in_string) *out.add_statements() = s;  // nothing prepared under that name: the server refuses
      continue;
    }
    for (const PreparedPtr& p : candidates) {
      if (p->classification->parse_error()) {
        out.set_parse_error(true);
        out.set_error(p->classification->error());
      }
      for (const auto& inner : p->classification->statements()) *out.add_statements() = inner;
    }
    everything.insert(everything.end(), candidates.begin(), candidates.end());
  }
  // Keyed on what runs: an approval window for `EXECUTE p` does not cover p re-prepared.
  if (!everything.empty()) out.set_fingerprint(CombinedFingerprint(c.fingerprint(), everything));
  return out;
}

std::optional<std::vector<v1::OutputColumn>> StatementGuard::ShapeOfCandidates(
    const std::vector<PreparedPtr>& candidates) {
  // One statement that may run: its columns. Several (a name prepared again) or a
  // multi-statement one: unknown, the masker takes every computed column as derived.
  if (candidates.size() != 1 || candidates.front()->classification->statements_size() != 1) return std::nullopt;
  const auto& cols = candidates.front()->classification->statements(0).output_columns();
  return std::vector<v1::OutputColumn>(cols.begin(), cols.end());
}

ResultShapes StatementGuard::ShapesOf(const v1::SqlClassification& c) {
  ResultShapes out;
  std::map<std::string, const v1::SqlStatement*> earlier;  // PREPAREs earlier in the string
  for (const v1::SqlStatement& s : c.statements()) {
    const std::string& name = s.kind_detail();
    switch (s.kind()) {
      case v1::STATEMENT_KIND_PREPARE:
        earlier[name] = &s;
        out.push_back(std::vector<v1::OutputColumn>{});
        break;
      case v1::STATEMENT_KIND_EXECUTE: {
        if (auto it = earlier.find(name); it != earlier.end()) {
          out.push_back(std::vector<v1::OutputColumn>(it->second->output_columns().begin(),
                                                      it->second->output_columns().end()));
          break;
        }
        std::vector<PreparedPtr> candidates;
        if (auto it = sql_prepared_.find(name); it != sql_prepared_.end()) candidates = it->second;
        for (const Objects* o : {&projected_, &confirmed_}) {
          if (auto it = o->statements.find(name); it != o->statements.end()) candidates.push_back(it->second);
        }
        out.push_back(ShapeOfCandidates(candidates));
        break;
      }
      case v1::STATEMENT_KIND_DECLARE:
        if (cursor_shapes_.size() < kMaxTrackedCursors || cursor_shapes_.contains(name)) {
          cursor_shapes_[name].assign(s.output_columns().begin(), s.output_columns().end());
        }
        out.push_back(std::vector<v1::OutputColumn>{});
        break;
      case v1::STATEMENT_KIND_FETCH: {
        // kind_detail is the cursor name; FETCH and MOVE both.
        auto it = cursor_shapes_.find(name);
        out.push_back(it != cursor_shapes_.end() ? std::optional(it->second) : std::nullopt);
        break;
      }
      case v1::STATEMENT_KIND_CLOSE_CURSOR:
        if (name.empty() || name == "ALL" || name == "all") cursor_shapes_.clear();
        else cursor_shapes_.erase(name);
        out.push_back(std::vector<v1::OutputColumn>{});
        break;
      default:
        out.push_back(std::vector<v1::OutputColumn>(s.output_columns().begin(), s.output_columns().end()));
        break;
    }
  }
  return out;
}

std::string StatementGuard::Marker(uint64_t n) const {
  return absl::StrCat(kMarkerPrefix, options_.nonce, "_", n);
}

std::string StatementGuard::AddReplacement(std::string sqlstate, std::string message, std::string detail) {
  uint64_t n = next_replacement_++;
  replacements_[n] = Replacement{std::move(sqlstate), std::move(message), std::move(detail), sent_batches_};
  return Marker(n);
}

namespace {

std::string DenyMessage(const policy::Decision& d) {
  return absl::StrCat("interlock: ", d.reason.empty() ? "statement denied by policy" : d.reason);
}

std::string DenyDetail(const policy::Decision& d) {
  if (d.source == "parser_state" || d.source == "client_encoding") {
    return absl::StrCat("Decided by interlockd (", d.source, "), whatever the policy says.");
  }
  if (d.rule_id.empty()) return absl::StrCat("Decided by the resource's ", d.source == "parse_error_default"
                                                                              ? "parse-error action."
                                                                              : "default action.");
  return absl::StrCat("Policy rule \"", d.rule_id, "\".");
}

}  // namespace

void StatementGuard::DenyVerdict(GuardVerdict& v, char type, const std::string& name) {
  const policy::Decision& d = *v.decision;
  std::string marker;
  if (d.source == "parse_error_default") {
    // A statement nobody can read: the agent sees a syntax error, as from the server.
    marker = AddReplacement("42601", absl::StrCat("interlock: statement rejected: ", v.audit.parse_error_message()),
                            DenyDetail(d));
  } else {
    marker = AddReplacement("42501", DenyMessage(d), DenyDetail(d));
  }
  v.kind = GuardVerdict::kReplace;
  switch (type) {
    case cpg::frontend::kParse: {
      cpg::Parse p;
      p.statement = name;
      p.query = marker;
      v.replacement = cpg::Encode(p);
      break;
    }
    case cpg::frontend::kExecute: {
      cpg::Execute e;
      e.portal = marker;
      v.replacement = cpg::Encode(e);
      break;
    }
    default:  // Query, FunctionCall: both answered by (error) + ReadyForQuery
      v.replacement = cpg::EncodeQuery(marker);
      break;
  }
}

std::string StatementGuard::DenyHeld(char type, absl::string_view message, absl::string_view detail,
                                     absl::string_view sqlstate) {
  uint64_t n = next_replacement_++;
  replacements_[n] = Replacement{std::string(sqlstate), std::string(message), std::string(detail), held_batch_};
  std::string marker = Marker(n);
  if (type == cpg::frontend::kExecute) {
    cpg::Execute e;
    e.portal = marker;
    return cpg::Encode(e);
  }
  return cpg::EncodeQuery(marker);
}

bool StatementGuard::EarlierBatchUnsettled() const {
  return !changes_.empty() && changes_.front().batch < sent_batches_;
}

absl::StatusOr<GuardVerdict> StatementGuard::OnFrontend(char type, absl::string_view body,
                                                        const RowEstimates* estimates) {
  INTERLOCK_ASSIGN_OR_RETURN(cpg::FrontendMessage m, cpg::DecodeFrontend(type, body));
  return OnFrontend(m, estimates);
}

absl::StatusOr<GuardVerdict> StatementGuard::OnFrontend(const cpg::FrontendMessage& m,
                                                        const RowEstimates* estimates) {
  switch (m.type) {
    case cpg::frontend::kQuery: return OnQuery(*m.get<cpg::Query>(), estimates);
    case cpg::frontend::kParse: return OnParse(*m.get<cpg::Parse>());
    case cpg::frontend::kBind: return OnBind(*m.get<cpg::Bind>());
    case cpg::frontend::kExecute: return OnExecute(*m.get<cpg::Execute>(), estimates);
    case cpg::frontend::kClose: return OnClose(*m.get<cpg::Close>());
    case cpg::frontend::kFunctionCall: return OnFunctionCall(*m.get<cpg::FunctionCall>());
    case cpg::frontend::kSync:
      ++sent_batches_;
      batch_open_ = false;
      executed_in_batch_ = false;
      return GuardVerdict{};
    case cpg::frontend::kDescribe:
    case cpg::frontend::kFlush:
      batch_open_ = true;
      return GuardVerdict{};
    default:
      return GuardVerdict{};
  }
}

absl::StatusOr<GuardVerdict> StatementGuard::OnQuery(const cpg::Query& q, const RowEstimates* estimates) {
  if (batch_open_) {
    // The server would ignore it if the batch failed, and answer it otherwise: refuse the
    // ambiguity rather than guess (no client library sends this).
    return absl::InvalidArgumentError("simple Query inside an unfinished extended-protocol batch");
  }
  const ClassificationPtr classified = ClassifyText(q.query, settings_);
  const v1::SqlClassification& c = *classified;
  // Behind unanswered messages the server may read it with other settings: wait for them.
  if (Unsettled() && ReadsDifferently(q.query, c)) return GuardVerdict{GuardVerdict::kWait};
  // Copied only when there is an EXECUTE to resolve.
  std::optional<v1::SqlClassification> with_executes = ResolveExecutes(c);
  const v1::SqlClassification& resolved = with_executes.has_value() ? *with_executes : c;
  if (resolved.statements_size() != c.statements_size() || resolved.parse_error() != c.parse_error()) {
    if (EarlierBatchUnsettled()) return GuardVerdict{GuardVerdict::kWait};
  }
  GuardVerdict v;
  v.decision = Judge(resolved, estimates);
  if (auto refusal = EncodingRefusal(q.query)) v.decision = *refusal;
  if (estimates == nullptr && !v.decision->needs_estimate.empty()) {
    // Nothing has changed yet: the session gets the estimates and asks again.
    GuardVerdict e{GuardVerdict::kEstimate};
    bool executes = resolved.statements_size() != c.statements_size();
    for (int i : v.decision->needs_estimate) {
      EstimateNeed n;
      n.statement_index = i;
      // A resolved EXECUTE has no text of its own here: EXPLAIN the EXECUTE itself.
      if (!executes && i < c.statements_size()) n.sql = StatementText(q.query, c.statements(i), c);
      else n.sql = q.query;
      n.tables = TableNeeds(*v.decision, i);
      e.estimates.push_back(std::move(n));
    }
    return e;
  }
  v.audit = AuditOf(*v.decision, resolved, v.decision->action == v1::ACTION_DENY ||
                                               v.decision->action == v1::ACTION_REVIEW);
  v.shapes = ShapesOf(c);
  if (v.decision->action != v1::ACTION_DENY) {
    for (const v1::SqlStatement& s : c.statements()) {
      if (s.kind() != v1::STATEMENT_KIND_PREPARE) continue;
      auto p = std::make_shared<Prepared>();
      auto inner = std::make_shared<v1::SqlClassification>();
      v1::SqlStatement* st = inner->add_statements();
      *st = s;
      st->set_kind(s.inner_kind());
      st->set_inner_kind(v1::STATEMENT_KIND_UNSPECIFIED);
      inner->set_fingerprint(c.fingerprint());
      p->classification = std::move(inner);
      size_t cost = s.ByteSizeLong() + 64;
      if (bytes_ + cost > kMaxGuardBytes) {
        return absl::ResourceExhaustedError("too much prepared statement state in this session");
      }
      bytes_ += cost;
      auto& list = sql_prepared_[s.kind_detail()];
      if (list.size() < 16) list.push_back(std::move(p));
      else list.back() = std::move(p);  // keep the strictest-looking tail bounded
    }
  }
  held_batch_ = sent_batches_;
  held_behind_execute_ = executed_in_batch_;
  switch (v.decision->action) {
    case v1::ACTION_DENY:
      DenyVerdict(v, cpg::frontend::kQuery, "");
      break;
    case v1::ACTION_REVIEW:
      v.kind = GuardVerdict::kHold;
      v.review.statement = q.query;
      v.review.statement_sha256 = Sha256Hex(q.query);
      v.review.fingerprint = resolved.fingerprint();
      v.review.protocol = "simple";
      break;
    default:
      break;
  }
  ++sent_batches_;
  return v;
}

absl::StatusOr<GuardVerdict> StatementGuard::OnParse(const cpg::Parse& p) {
  const ClassificationPtr classified = ClassifyText(p.query, settings_);
  const v1::SqlClassification& c = *classified;
  std::optional<policy::Decision> refusal = EncodingRefusal(p.query);
  if (Unsettled() && ReadsDifferently(p.query, c)) {
    // Earlier batches end with a Sync: their answers come, so wait for them. An Execute of
    // this very batch is answered only at its Sync, which is behind this Parse: refuse.
    if (!executed_in_batch_) return GuardVerdict{GuardVerdict::kWait};
    policy::Decision d;
    d.action = v1::ACTION_DENY;
    d.source = "parser_state";
    d.reason =
        "statement cannot be analysed: an earlier Execute in the same pipeline batch may change "
        "standard_conforming_strings or client_encoding; send Sync before it";
    refusal = d;
  }
  batch_open_ = true;
  policy::Decision d = refusal.has_value() ? *refusal : Judge(c);
  GuardVerdict v;
  if (d.action == v1::ACTION_DENY) {
    v.decision = d;
    v.audit = AuditOf(d, c, true);
    DenyVerdict(v, cpg::frontend::kParse, p.statement);
    return v;
  }
  size_t cost = p.query.size() + c.ByteSizeLong() + 64;
  if (bytes_ + cost > kMaxGuardBytes) {
    return absl::ResourceExhaustedError("too much prepared statement state in this session");
  }
  auto prepared = std::make_shared<Prepared>();
  prepared->classification = classified;
  prepared->text = p.query;
  prepared->cost = cost;
  prepared->budget = &bytes_;
  bytes_ += cost;
  Change ch{ChangeKind::kParse, p.statement, prepared, {}, sent_batches_};
  projected_.statements[p.statement] = prepared;
  changes_.push_back(std::move(ch));
  return v;
}

absl::StatusOr<GuardVerdict> StatementGuard::OnBind(const cpg::Bind& b) {
  if (EarlierBatchUnsettled()) return GuardVerdict{GuardVerdict::kWait};
  batch_open_ = true;
  PortalInfo portal;
  portal.statement_name = b.statement;
  if (auto it = projected_.statements.find(b.statement); it != projected_.statements.end()) {
    portal.statements.push_back(it->second);
  }
  if (auto it = sql_prepared_.find(b.statement); it != sql_prepared_.end()) {
    portal.statements.insert(portal.statements.end(), it->second.begin(), it->second.end());
  }
  portal.parameters_sha256 = ParamsSha256(b.params);
  size_t param_bytes = 0;
  for (const auto& p : b.params) param_bytes += p.has_value() ? p->size() : 0;
  if (param_bytes <= kMaxKeptParamBytes) {
    portal.params_kept = true;
    portal.param_formats = b.param_formats;
    for (const auto& p : b.params) {
      portal.params.push_back(p.has_value() ? std::optional<std::string>(std::string(*p)) : std::nullopt);
    }
  }
  projected_.portals[b.portal] = portal;
  changes_.push_back(Change{ChangeKind::kBind, b.portal, nullptr, std::move(portal), sent_batches_});
  return GuardVerdict{};
}

absl::StatusOr<GuardVerdict> StatementGuard::OnClose(const cpg::Close& c) {
  batch_open_ = true;
  bool statement = c.kind == cpg::TargetKind::kStatement;
  if (statement) projected_.statements.erase(c.name);
  else projected_.portals.erase(c.name);
  changes_.push_back(Change{statement ? ChangeKind::kCloseStatement : ChangeKind::kClosePortal, c.name,
                            nullptr, {}, sent_batches_});
  return GuardVerdict{};
}

absl::StatusOr<GuardVerdict> StatementGuard::OnExecute(const cpg::Execute& e, const RowEstimates* estimates) {
  if (EarlierBatchUnsettled()) return GuardVerdict{GuardVerdict::kWait};
  batch_open_ = true;
  const bool executed_before = executed_in_batch_;
  executed_in_batch_ = true;
  GuardVerdict v;
  auto it = projected_.portals.find(e.portal);
  // No portal of ours: a SQL cursor (judged at its DECLARE) or nothing (the server refuses).
  if (it == projected_.portals.end() || it->second.statements.empty()) {
    auto cursor = cursor_shapes_.find(e.portal);
    v.shapes.push_back(cursor != cursor_shapes_.end() ? std::optional(cursor->second) : std::nullopt);
    return v;
  }
  const PortalInfo& portal = it->second;
  v.shapes.push_back(ShapeOfCandidates(portal.statements));
  std::vector<absl::string_view> texts;
  for (const PreparedPtr& p : portal.statements) {
    texts.push_back(p->text.empty() ? absl::string_view("(SQL PREPARE)") : absl::string_view(p->text));
  }
  // One statement prepared under the name (the common case): its reading as it is. A name
  // prepared several times: everything it may run, keyed on all of it (approval windows).
  v1::SqlClassification several;
  if (portal.statements.size() > 1) {
    for (const PreparedPtr& p : portal.statements) {
      if (p->classification->parse_error()) {
        several.set_parse_error(true);
        several.set_error(p->classification->error());
      }
      for (const auto& s : p->classification->statements()) *several.add_statements() = s;
      several.set_multi_statement(several.multi_statement() || p->classification->multi_statement());
    }
    several.set_fingerprint(CombinedFingerprint("", portal.statements));
  }
  const v1::SqlClassification& merged =
      portal.statements.size() > 1 ? several : *portal.statements.front()->classification;
  v.decision = Judge(merged, estimates);
  if (estimates == nullptr && !v.decision->needs_estimate.empty()) {
    GuardVerdict e{GuardVerdict::kEstimate};
    for (int i : v.decision->needs_estimate) {
      EstimateNeed n;
      n.statement_index = i;
      n.sql = portal.statements.front()->text;
      if (portal.params_kept) {
        n.param_formats = portal.param_formats;
        n.params = portal.params;
      } else {
        n.sql.clear();  // parameters too large to keep: the caller treats it as no estimate
      }
      n.tables = TableNeeds(*v.decision, i);
      e.estimates.push_back(std::move(n));
    }
    return e;
  }
  bool notable = v.decision->action == v1::ACTION_DENY || v.decision->action == v1::ACTION_REVIEW;
  v.audit = AuditOf(*v.decision, merged, notable);
  held_batch_ = sent_batches_;
  held_behind_execute_ = executed_before;
  if (v.decision->action == v1::ACTION_DENY) {
    DenyVerdict(v, cpg::frontend::kExecute, "");
  } else if (v.decision->action == v1::ACTION_REVIEW) {
    v.kind = GuardVerdict::kHold;
    v.review.statement = absl::StrJoin(texts, "\n-- or, as prepared earlier under the same name --\n");
    v.review.statement_sha256 = Sha256Hex(v.review.statement);
    v.review.parameters_sha256 = portal.parameters_sha256;
    if (portal.params_kept) {
      v.review.params = portal.params;
      v.review.param_formats = portal.param_formats;
    }
    v.review.fingerprint = merged.fingerprint();
    v.review.protocol = "extended";
  }
  return v;
}

absl::StatusOr<GuardVerdict> StatementGuard::OnFunctionCall(const cpg::FunctionCall& f) {
  if (batch_open_) {
    return absl::InvalidArgumentError("FunctionCall inside an unfinished extended-protocol batch");
  }
  v1::SqlClassification c;
  v1::SqlStatement* s = c.add_statements();
  s->set_kind(v1::STATEMENT_KIND_OTHER);
  s->set_kind_detail("FunctionCall");
  std::string fn = FunctionNameForOid(f.function_oid);
  s->add_functions(fn);
  if (fn == "set_config") {
    std::string parameter;
    if (!f.args.empty() && f.args[0].has_value()) parameter = absl::AsciiStrToLower(*f.args[0]);
    if (SetsRole(parameter)) MarkRole(s, parameter);
  }
  GuardVerdict v;
  v.decision = Judge(c);
  bool notable = v.decision->action == v1::ACTION_DENY || v.decision->action == v1::ACTION_REVIEW;
  v.audit = AuditOf(*v.decision, c, notable);
  held_batch_ = sent_batches_;
  held_behind_execute_ = executed_in_batch_;
  if (v.decision->action == v1::ACTION_DENY) {
    DenyVerdict(v, cpg::frontend::kFunctionCall, "");
  } else if (v.decision->action == v1::ACTION_REVIEW) {
    v.kind = GuardVerdict::kHold;
    v.review.statement = absl::StrCat("-- fast-path FunctionCall\nSELECT ", fn, "(", f.args.size(),
                                      " argument", f.args.size() == 1 ? "" : "s", ")");
    v.review.statement_sha256 = Sha256Hex(v.review.statement);
    v.review.parameters_sha256 = ParamsSha256(f.args);
    v.review.protocol = "function_call";
  }
  ++sent_batches_;
  return v;
}

void StatementGuard::Confirm() {
  if (changes_.empty()) return;
  Change ch = std::move(changes_.front());
  changes_.pop_front();
  switch (ch.kind) {
    case ChangeKind::kParse: confirmed_.statements[ch.name] = std::move(ch.statement); break;
    case ChangeKind::kBind: confirmed_.portals[ch.name] = std::move(ch.portal); break;
    case ChangeKind::kCloseStatement: confirmed_.statements.erase(ch.name); break;
    case ChangeKind::kClosePortal: confirmed_.portals.erase(ch.name); break;
  }
}

void StatementGuard::Reproject() {
  projected_ = confirmed_;
  for (const Change& ch : changes_) {
    switch (ch.kind) {
      case ChangeKind::kParse: projected_.statements[ch.name] = ch.statement; break;
      case ChangeKind::kBind: projected_.portals[ch.name] = ch.portal; break;
      case ChangeKind::kCloseStatement: projected_.statements.erase(ch.name); break;
      case ChangeKind::kClosePortal: projected_.portals.erase(ch.name); break;
    }
  }
}

void StatementGuard::DropBatch() {
  // The error belongs to the oldest unanswered batch; the server skips the rest of it.
  bool dropped = false;
  while (!changes_.empty() && changes_.front().batch <= answered_batches_) {
    changes_.pop_front();
    dropped = true;
  }
  if (dropped) Reproject();
}

std::optional<std::string> StatementGuard::OnBackend(char type, absl::string_view body) {
  switch (type) {
    case cpg::backend::kParseComplete:
    case cpg::backend::kBindComplete:
    case cpg::backend::kCloseComplete:
      Confirm();
      return std::nullopt;
    case cpg::backend::kReadyForQuery:
      ++answered_batches_;
      // Every change of an answered batch has been confirmed or dropped by now; anything
      // left belongs to a batch the server skipped without an error of its own.
      while (!changes_.empty() && changes_.front().batch < answered_batches_) {
        changes_.pop_front();
        Reproject();
      }
      while (!replacements_.empty() && replacements_.begin()->second.batch < answered_batches_) {
        replacements_.erase(replacements_.begin());
      }
      return std::nullopt;
    case cpg::backend::kParameterStatus: {
      auto ps = cpg::ParseParameterStatus(body);
      if (!ps.ok()) return std::nullopt;
      if (ps->name == "standard_conforming_strings") {
        settings_.standard_conforming_strings = ps->value == "on";
      } else if (ps->name == "client_encoding") {
        settings_.client_encoding = ps->value;
      }
      return std::nullopt;
    }
    case cpg::backend::kErrorResponse: {
      DropBatch();
      auto e = cpg::ParseErrorResponse(body);
      if (!e.ok()) return std::nullopt;
      absl::string_view msg = e->message();
      std::string needle = absl::StrCat(kMarkerPrefix, options_.nonce, "_");
      size_t at = msg.find(needle);
      if (at == absl::string_view::npos) return std::nullopt;
      absl::string_view digits = msg.substr(at + needle.size());
      size_t n = 0;
      while (n < digits.size() && absl::ascii_isdigit(static_cast<unsigned char>(digits[n]))) ++n;
      uint64_t id = 0;
      if (!absl::SimpleAtoi(digits.substr(0, n), &id)) return std::nullopt;
      auto it = replacements_.find(id);
      if (it == replacements_.end()) return std::nullopt;
      std::string out = cpg::EncodeError("ERROR", it->second.sqlstate, it->second.message, it->second.detail);
      replacements_.erase(it);
      return out;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace interlock::proxy::pg
