#include "userspace/proxy/pg/result_masker.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/json_text.h"
#include "userspace/proxy/pg/binary_values.h"

namespace interlock::proxy::pg {

namespace cpg = codec::pg;

namespace {

constexpr uint32_t kBytea = 17, kBpchar = 1042, kVarchar = 1043, kText = 25, kName = 19, kUnknown = 705, kJson = 114,
                   kJsonb = 3802;

uint16_t Get16(const char* p) { return static_cast<uint16_t>((uint8_t(p[0]) << 8) | uint8_t(p[1])); }
uint32_t Get32(const char* p) {
  return (uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) | (uint32_t(uint8_t(p[2])) << 8) |
         uint32_t(uint8_t(p[3]));
}
void Put32(std::string& out, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}

// The format of result column i under Bind's result-format codes (55.7 Bind).
int16_t FormatFor(const std::vector<int16_t>& formats, size_t i) {
  if (formats.empty()) return 0;
  if (formats.size() == 1) return formats[0];
  return i < formats.size() ? formats[i] : 0;
}

std::string Frame(char type, absl::string_view body) { return cpg::EncodeMessage(type, body); }

ResultMasker::Out Fatal(std::string why) {
  ResultMasker::Out o;
  o.verdict = ResultMasker::Verdict::kFatal;
  o.error = std::move(why);
  return o;
}

}  // namespace

bool IsTextLikeType(uint32_t t) {
  return t == kText || t == kVarchar || t == kBpchar || t == kName || t == kUnknown || t == kJson || t == kJsonb;
}

std::string ResultMasker::OnFrontend(char type, absl::string_view body, MaskerPtr masker,
                                     const std::string& profile_name, ResultShapes shapes) {
  auto m = cpg::DecodeFrontend(type, body);
  // Unreadable (the server refuses it): known only by its type.
  return OnFrontend(m.ok() ? *m : cpg::FrontendMessage{type, {}}, std::move(masker), profile_name,
                    std::move(shapes));
}

std::string ResultMasker::OnFrontend(const cpg::FrontendMessage& m, MaskerPtr masker,
                                     const std::string& profile_name, ResultShapes shapes) {
  // No profile name: the session floor (reported only when it masked something).
  const bool from_floor = profile_name.empty() && masker != nullptr;
  std::string profile = from_floor ? masker->name() : profile_name;
  switch (m.type) {
    case cpg::frontend::kQuery:
      queue_.push_back(Entry{Kind::kQuery, sent_batches_++, std::move(masker), profile, from_floor});
      queue_.back().shapes = std::move(shapes);
      return "";
    case cpg::frontend::kBind: {
      if (const auto* b = m.get<cpg::Bind>()) portal_formats_[b->portal] = b->result_formats;
      return "";
    }
    case cpg::frontend::kDescribe:
      queue_.push_back(Entry{Kind::kDescribeAgent, sent_batches_});
      return "";
    case cpg::frontend::kExecute: {
      const auto* e = m.get<cpg::Execute>();
      Entry ex{Kind::kExecute, sent_batches_, masker, profile, from_floor};
      ex.shapes = std::move(shapes);
      std::string prefix;
      if (e != nullptr) {
        if (auto it = portal_formats_.find(e->portal); it != portal_formats_.end()) ex.formats = it->second;
        if (masker != nullptr) {
          // Our own Describe of the portal: its RowDescription has the bound formats and
          // the columns' sources; the agent never sees the answer.
          cpg::Describe d;
          d.kind = cpg::TargetKind::kPortal;
          d.name = e->portal;
          prefix = cpg::Encode(d);
          queue_.push_back(Entry{Kind::kDescribeOurs, sent_batches_});
        }
      }
      queue_.push_back(std::move(ex));
      return prefix;
    }
    case cpg::frontend::kClose: {
      const auto* c = m.get<cpg::Close>();
      if (c != nullptr && c->kind == cpg::TargetKind::kPortal) portal_formats_.erase(c->name);
      return "";
    }
    case cpg::frontend::kSync:
      queue_.push_back(Entry{Kind::kSync, sent_batches_++});
      return "";
    case cpg::frontend::kFunctionCall: {
      Entry f{Kind::kFunctionCall, sent_batches_++, std::move(masker), profile, from_floor};
      const auto* fc = m.get<cpg::FunctionCall>();
      f.formats = {fc != nullptr ? fc->result_format : int16_t{1}};  // unreadable: treated as binary
      queue_.push_back(std::move(f));
      return "";
    }
    default:
      return "";
  }
}

namespace {

constexpr uint32_t kJsonOid = 114;
constexpr uint32_t kJsonbOid = 3802;

bool IsJsonType(uint32_t type_oid) { return type_oid == kJsonOid || type_oid == kJsonbOid; }

// Which derived column result field `i` of `n` is, given the statement's output columns:
// positions before the first star and after the last map one to one; a single star covers
// the fields between; nullptr when that cannot be told (no shape, counts that do not fit,
// several stars).
const v1::OutputColumn* ColumnAt(const std::vector<v1::OutputColumn>& cols, size_t i, size_t n) {
  size_t first = cols.size(), last = cols.size();
  for (size_t k = 0; k < cols.size(); ++k) {
    if (cols[k].shape() != v1::OutputColumn::SHAPE_STAR) continue;
    if (first == cols.size()) first = k;
    last = k;
  }
  if (first == cols.size()) return cols.size() == n && i < n ? &cols[i] : nullptr;
  const size_t after = cols.size() - 1 - last;  // columns after the last star
  if (first + after > n) return nullptr;
  if (i < first) return &cols[i];
  if (n - i <= after) return &cols[cols.size() - (n - i)];
  return first == last ? &cols[first] : nullptr;
}

// The source of a computed result column (table OID 0): its derived origins, redacted when
// an expression computed it; nothing for a non-revealing one (count, length, a
// comparison); "anything" when the shape is unknown.
ColumnSource DerivedSource(const std::vector<v1::OutputColumn>* shape, size_t i, size_t n) {
  ColumnSource s;
  const v1::OutputColumn* col = shape != nullptr ? ColumnAt(*shape, i, n) : nullptr;
  if (col == nullptr) {
    s.origins.push_back({"", "*", "*"});
    s.derived = true;
    return s;
  }
  if (col->shape() == v1::OutputColumn::SHAPE_NON_REVEALING) return s;
  for (const v1::SourceColumn& o : col->sources()) s.origins.push_back({o.schema(), o.table(), o.column()});
  s.derived = col->shape() == v1::OutputColumn::SHAPE_DERIVED;
  return s;
}

// The rule for a result column: by its source column (or output name), else by a column its
// values come from (a view's definition, an inheritance ancestor), redacted when an
// expression computed it.
const mask::ColumnRule* RuleFor(const mask::Masker& m, const ColumnSource& s, absl::string_view output_name) {
  if (const mask::ColumnRule* r = m.MatchColumn(s.schema, s.table, s.column, output_name)) return r;
  for (const SourceName& o : s.origins) {
    if (const mask::ColumnRule* r = m.MatchOrigin(o.schema, o.table, o.column)) return s.derived ? &m.Redacted(*r) : r;
  }
  return nullptr;
}

}  // namespace

ResultMasker::Out ResultMasker::Plan(Entry& e, absl::string_view body, const std::vector<int16_t>* bound_formats) {
  Out out;
  auto rd = cpg::ParseRowDescription(body);
  if (!rd.ok()) {
    out.verdict = Verdict::kFatal;
    out.error = std::string(rd.status().message());
    return out;
  }
  std::vector<ColumnSource> sources(rd->fields.size());
  const std::vector<v1::OutputColumn>* shape = nullptr;
  if (e.result_index < e.shapes.size() && e.shapes[e.result_index].has_value()) shape = &*e.shapes[e.result_index];
  for (size_t i = 0; i < rd->fields.size(); ++i) {
    const auto& f = rd->fields[i];
    if (f.table_oid == 0 || f.column_attr <= 0) {
      // Computed: what the statement's text says it is computed from (when the caller
      // derived it: the session always does for Query and Execute).
      if (!e.shapes.empty()) sources[i] = DerivedSource(shape, i, rd->fields.size());
      continue;
    }
    std::optional<ColumnSource> src = lookup_(f.table_oid, f.column_attr);
    if (!src.has_value()) {
      bool seen = false;
      for (uint32_t o : out.oids) seen |= o == f.table_oid;
      if (!seen) out.oids.push_back(f.table_oid);
      continue;
    }
    sources[i] = *std::move(src);
  }
  if (!out.oids.empty()) {
    out.verdict = Verdict::kNeedCatalog;
    return out;
  }
  e.plan.clear();
  for (size_t i = 0; i < rd->fields.size(); ++i) {
    const auto& f = rd->fields[i];
    Column c;
    c.text_like = IsTextLikeType(f.type_oid);
    c.type_oid = f.type_oid;
    c.format = bound_formats != nullptr ? FormatFor(*bound_formats, i) : f.format;
    const ColumnSource& s = sources[i];
    c.rule = e.masker != nullptr ? RuleFor(*e.masker, s, f.name) : nullptr;
    if (c.rule != nullptr) {
      c.label = s.column.empty() ? f.name
                                 : absl::StrCat(s.schema.empty() ? "" : absl::StrCat(s.schema, "."), s.table, ".",
                                                s.column, s.column == f.name ? "" : absl::StrCat(" as ", f.name));
    }
    e.plan.push_back(std::move(c));
  }
  e.has_plan = true;
  return out;
}

ResultMasker::Out ResultMasker::MaskRow(Entry& e, absl::string_view raw) {
  Out out;
  const mask::Masker& m = *e.masker;
  absl::string_view body = raw.substr(cpg::kMessageHeaderBytes);
  if (body.size() < 2) return Fatal("malformed DataRow");
  const char* p = body.data() + 2;
  const char* end = body.data() + body.size();
  size_t n = Get16(body.data());
  ++e.report.rows;
  if (e.column_hits.size() < e.plan.size()) e.column_hits.resize(e.plan.size(), 0);
  // Rewritten lazily, straight into one reused buffer: untouched rows cost one walk, and
  // masked ones no allocation once the buffer has grown.
  bool changed = false;
  std::string& nb = scratch_;
  const char* copied_to = body.data();
  auto begin_rewrite = [&] {
    if (changed) return;
    changed = true;
    nb.clear();
    nb.append(raw.data(), cpg::kMessageHeaderBytes + 2);  // length fixed below
    copied_to = body.data() + 2;
  };
  for (size_t i = 0; i < n; ++i) {
    if (end - p < 4) return Fatal("malformed DataRow");
    const char* field_start = p;
    int32_t len = static_cast<int32_t>(Get32(p));
    p += 4;
    if (len < -1 || (len >= 0 && end - p < len)) return Fatal("malformed DataRow");
    if (len == -1) continue;
    absl::string_view v(p, static_cast<size_t>(len));
    p += len;
    Column fallback;
    fallback.format = FormatFor(e.formats, i);
    const Column& c = i < e.plan.size() ? e.plan[i] : fallback;
    bool textual = c.format == 0 || c.text_like;
    if (c.rule != nullptr) {
      begin_rewrite();
      nb.append(copied_to, static_cast<size_t>(field_start - copied_to));
      size_t len_at = nb.size();
      nb.append(4, '\0');
      bool kept = false;
      if (textual) {
        // jsonb in binary starts with a version byte (1); the rest is text.
        bool jsonb_binary = c.format == 1 && c.text_like && !v.empty() && v[0] == 1;
        if (jsonb_binary) nb.push_back('\x01');
        if (IsJsonType(c.type_oid)) {
          // A json document replaced whole stays a json document: the mask as a string.
          text_scratch_.clear();
          kept = m.AppendWhole(*c.rule, jsonb_binary ? v.substr(1) : v, &text_scratch_);
          if (kept) AppendJsonQuoted(text_scratch_, &nb);
        } else {
          kept = m.AppendWhole(*c.rule, jsonb_binary ? v.substr(1) : v, &nb);
        }
        if (!kept) nb.resize(len_at + 4);
      }
      uint32_t vlen = kept ? static_cast<uint32_t>(nb.size() - len_at - 4) : 0xFFFFFFFFu;  // NULL
      if (!kept) nb.resize(len_at + 4);
      nb[len_at] = char(vlen >> 24);
      nb[len_at + 1] = char(vlen >> 16);
      nb[len_at + 2] = char(vlen >> 8);
      nb[len_at + 3] = char(vlen);
      copied_to = p;
      ++e.report.values_masked;
      ++e.column_hits[i];
      continue;
    }
    bool nulled = false;
    if (textual) {
      // A bytea in text format is hex (or escaped): the detectors read the bytes it holds.
      bool bytea_text = c.format == 0 && c.type_oid == kBytea && MaskByteaText(m, v, &text_scratch_, &e.report.counts);
      if (!bytea_text && !m.MaskText(v, &text_scratch_, &e.report.counts)) continue;
    } else {
      // Binary, no column rule: decoded for the detectors, or NULL when it cannot be.
      BinaryMask r = MaskBinaryValue(m, c.type_oid, v, &text_scratch_, &e.report.counts);
      if (r == BinaryMask::kUnchanged) continue;
      nulled = r == BinaryMask::kNull;
    }
    ++e.report.values_masked;
    begin_rewrite();
    nb.append(copied_to, static_cast<size_t>(field_start - copied_to));
    if (nulled) {
      Put32(nb, 0xFFFFFFFFu);
    } else {
      Put32(nb, static_cast<uint32_t>(text_scratch_.size()));
      nb.append(text_scratch_);
    }
    copied_to = p;
  }
  if (p != end) return Fatal("malformed DataRow");
  if (!changed) return out;
  nb.append(copied_to, static_cast<size_t>(end - copied_to));
  uint32_t len = static_cast<uint32_t>(nb.size() - 1);
  nb[1] = char(len >> 24);
  nb[2] = char(len >> 16);
  nb[3] = char(len >> 8);
  nb[4] = char(len);
  out.verdict = Verdict::kReplace;
  out.view = nb;
  return out;
}

ResultMasker::Out ResultMasker::MaskCopy(Entry& e, absl::string_view raw) {
  // COPY TO STDOUT text/CSV: one row per CopyData; no description, so the detectors run
  // over the whole line (they never add tabs, quotes or newlines).
  Out out;
  ++e.report.rows;
  if (!e.masker->MaskText(raw.substr(cpg::kMessageHeaderBytes), &text_scratch_, &e.report.counts)) return out;
  ++e.report.values_masked;
  out.verdict = Verdict::kReplace;
  scratch_ = Frame(cpg::backend::kCopyData, text_scratch_);
  out.view = scratch_;
  return out;
}

void ResultMasker::Report(Entry& e) {
  if (e.masker == nullptr) return;
  bool any_rule = false;
  for (const Column& c : e.plan) any_rule |= c.rule != nullptr;
  if (e.from_floor && e.report.values_masked == 0 && !any_rule) {
    // The floor found nothing in this statement: no event (every statement passes it).
    e.report = MaskReport();
    e.column_hits.clear();
    e.plan.clear();
    e.has_plan = false;
    e.copy = false;
    return;
  }
  e.report.profile = e.profile;
  e.report.protocol = e.kind == Kind::kQuery ? "simple" : e.kind == Kind::kFunctionCall ? "function_call" : "extended";
  for (size_t i = 0; i < e.plan.size(); ++i) {
    const Column& c = e.plan[i];
    if (c.rule == nullptr) continue;
    e.report.masked_columns.push_back(c.label);
    if (i < e.column_hits.size() && e.column_hits[i] > 0) e.report.counts.AddColumn(c.rule->text, e.column_hits[i]);
  }
  e.column_hits.clear();
  reports_.push_back(std::move(e.report));
  e.report = MaskReport();
  e.plan.clear();
  e.has_plan = false;
  e.copy = false;
}

void ResultMasker::DropFailedBatch() {
  // After an error the server skips to Sync: nothing queued for this batch will answer,
  // except the Sync's ReadyForQuery.
  while (!queue_.empty() && queue_.front().batch == answered_batches_ && queue_.front().kind != Kind::kSync &&
         queue_.front().kind != Kind::kQuery && queue_.front().kind != Kind::kFunctionCall) {
    queue_.pop_front();
  }
}

namespace {

// Error and notice fields that carry no text from the data (55.8): severity, SQLSTATE,
// positions, and where in the server's source the report came from.
bool FieldIsFixed(char code) {
  switch (code) {
    case cpg::field::kSeverity:
    case cpg::field::kSeverityNonLocalized:
    case cpg::field::kSqlState:
    case cpg::field::kPosition:
    case cpg::field::kInternalPosition:
    case cpg::field::kFile:
    case cpg::field::kLine:
    case cpg::field::kRoutine:
      return true;
    default:
      return false;
  }
}

constexpr absl::string_view kEchoToken = "[REDACTED]";

}  // namespace

bool RedactEchoedValues(absl::string_view text, absl::string_view token, std::string* out) {
  size_t q1 = text.find('"');
  size_t q2 = text.rfind('"');
  size_t open = text.find("=(");
  size_t open_len = 2;
  if (size_t c = text.find("contains ("); c != absl::string_view::npos && (open == absl::string_view::npos || c < open)) {
    open = c;
    open_len = 10;
  }
  size_t close = text.rfind(')');
  bool quoted = q1 != absl::string_view::npos && q2 > q1;
  bool paren = open != absl::string_view::npos && close != absl::string_view::npos && close >= open + open_len;
  if (!quoted && !paren) return false;
  // Whichever span starts first is redacted to its end; the other, if it starts after,
  // is redacted too.
  struct Cut {
    size_t from, to;  // keep [0, from), token, keep [to, end)
  };
  std::vector<Cut> cuts;
  if (quoted) cuts.push_back({q1 + 1, q2});
  if (paren) cuts.push_back({open + open_len, close});
  if (cuts.size() == 2 && cuts[1].from < cuts[0].from) std::swap(cuts[0], cuts[1]);
  if (cuts.size() == 2 && cuts[1].from < cuts[0].to) {  // overlapping: one cut over both
    cuts[0].to = std::max(cuts[0].to, cuts[1].to);
    cuts.pop_back();
  }
  out->clear();
  size_t at = 0;
  for (const Cut& c : cuts) {
    out->append(text.data() + at, c.from - at);
    out->append(token.data(), token.size());
    at = c.to;
  }
  out->append(text.data() + at, text.size() - at);
  return true;
}

const mask::Masker* ResultMasker::TextMasker(Entry* front) const {
  if (front != nullptr && front->masker != nullptr &&
      (front->kind == Kind::kQuery || front->kind == Kind::kExecute || front->kind == Kind::kFunctionCall)) {
    return front->masker.get();
  }
  return floor_.get();
}

void ResultMasker::ReportAsync(const mask::Masker& m, MaskReport r) {
  r.profile = m.name();
  r.protocol = "async";
  reports_.push_back(std::move(r));
}

ResultMasker::Out ResultMasker::MaskFields(char type, absl::string_view raw, const mask::Masker& m, bool echoed,
                                           MaskReport* report) {
  Out out;
  absl::string_view body = raw.substr(cpg::kMessageHeaderBytes);
  // Echoed values: only for a data exception or integrity violation (classes 22, 23).
  if (echoed) {
    echoed = false;
    for (size_t i = 0; i + 1 < body.size();) {
      char code = body[i];
      if (code == 0) break;
      size_t nul = body.find('\0', i + 1);
      if (nul == absl::string_view::npos) break;
      if (code == cpg::field::kSqlState) {
        absl::string_view v = body.substr(i + 1, nul - i - 1);
        echoed = absl::StartsWith(v, "22") || absl::StartsWith(v, "23");
      }
      i = nul + 1;
    }
  }
  bool changed = false;
  std::string nb;
  std::string masked, redacted;
  size_t i = 0;
  while (true) {
    if (i >= body.size()) return Fatal(absl::StrCat("malformed ", cpg::MessageName(type, false)));
    char code = body[i];
    if (code == 0) {
      if (i + 1 != body.size()) return Fatal(absl::StrCat("malformed ", cpg::MessageName(type, false)));
      break;
    }
    size_t nul = body.find('\0', i + 1);
    if (nul == absl::string_view::npos) return Fatal(absl::StrCat("malformed ", cpg::MessageName(type, false)));
    absl::string_view v = body.substr(i + 1, nul - i - 1);
    absl::string_view now = v;
    bool field_changed = false;
    if (!FieldIsFixed(code)) {
      if (m.MaskText(v, &masked, report != nullptr ? &report->counts : nullptr)) {
        now = masked;
        field_changed = true;
      }
      if (echoed && (code == cpg::field::kMessage || code == cpg::field::kDetail) &&
          RedactEchoedValues(now, kEchoToken, &redacted)) {
        now = redacted;
        field_changed = true;
      }
    }
    if (field_changed && !changed) {
      changed = true;
      nb.assign(body.data(), i);
    }
    if (changed) {
      nb.push_back(code);
      nb.append(now.data(), now.size());
      nb.push_back('\0');
    }
    if (field_changed && report != nullptr) ++report->values_masked;
    i = nul + 1;
  }
  if (!changed) return out;
  nb.push_back('\0');
  scratch_ = Frame(type, nb);
  out.verdict = Verdict::kReplace;
  out.view = scratch_;
  return out;
}

ResultMasker::Out ResultMasker::MaskFieldNames(absl::string_view raw, const mask::Masker& m) {
  // Column names are the agent's own aliases, except where SQL text was built from data
  // (a cursor a function opened with EXECUTE format('... AS %I', ssn)).
  auto rd = cpg::ParseRowDescription(raw.substr(cpg::kMessageHeaderBytes));
  if (!rd.ok()) return Fatal("malformed RowDescription");
  bool changed = false;
  for (cpg::FieldDescription& f : rd->fields) {
    if (m.MaskText(f.name, &text_scratch_, nullptr)) {
      f.name = text_scratch_;
      changed = true;
    }
  }
  if (!changed) return Out{};
  return Reencoded(*rd);
}

bool ResultMasker::MaskTexts(std::initializer_list<std::string*> fields, const mask::Masker& m, MaskReport* report) {
  bool changed = false;
  for (std::string* s : fields) {
    if (m.MaskText(*s, &text_scratch_, &report->counts)) {
      *s = text_scratch_;
      changed = true;
      ++report->values_masked;
    }
  }
  return changed;
}

template <typename Message>
ResultMasker::Out ResultMasker::Reencoded(const Message& message) {
  scratch_ = cpg::Encode(message);
  Out out;
  out.verdict = Verdict::kReplace;
  out.view = scratch_;
  return out;
}

ResultMasker::Out ResultMasker::MaskNotification(absl::string_view raw, const mask::Masker& m, MaskReport* report) {
  auto n = cpg::ParseNotificationResponse(raw.substr(cpg::kMessageHeaderBytes));
  if (!n.ok()) return Fatal("malformed NotificationResponse");
  return MaskTexts({&n->channel, &n->payload}, m, report) ? Reencoded(*n) : Out{};
}

ResultMasker::Out ResultMasker::MaskParameterStatus(absl::string_view raw, const mask::Masker& m, MaskReport* report) {
  auto ps = cpg::ParseParameterStatus(raw.substr(cpg::kMessageHeaderBytes));
  if (!ps.ok()) return Fatal("malformed ParameterStatus");
  return MaskTexts({&ps->name, &ps->value}, m, report) ? Reencoded(*ps) : Out{};
}

ResultMasker::Out ResultMasker::MaskFunctionResult(Entry& e, absl::string_view raw) {
  auto r = cpg::ParseFunctionCallResponse(raw.substr(cpg::kMessageHeaderBytes));
  if (!r.ok()) return Fatal("malformed FunctionCallResponse");
  ++e.report.rows;
  if (!r->result.has_value()) return Out{};
  const mask::Masker& m = *e.masker;
  // The result's type is not on the wire: text format is text; binary is masked as bytes
  // (lo_* functions return bytea or integers), with the same detectors.
  if (!m.MaskText(*r->result, &text_scratch_, &e.report.counts)) return Out{};
  ++e.report.values_masked;
  cpg::FunctionCallResponse masked;
  masked.result = text_scratch_;
  return Reencoded(masked);
}

ResultMasker::Out ResultMasker::OnBackend(char type, absl::string_view raw) {
  Out pass;
  absl::string_view body = raw.substr(cpg::kMessageHeaderBytes);
  Entry* front = queue_.empty() ? nullptr : &queue_.front();
  const bool statement_front = front != nullptr && (front->kind == Kind::kQuery || front->kind == Kind::kExecute ||
                                                    front->kind == Kind::kFunctionCall);
  // A statement sent before the session had a floor is masked with it all the same.
  if (statement_front && front->masker == nullptr && floor_ != nullptr) {
    front->masker = floor_;
    front->profile = floor_->name();
    front->from_floor = true;
  }
  switch (type) {
    case cpg::backend::kRowDescription: {
      if (front == nullptr) return pass;
      if (front->kind == Kind::kDescribeOurs) {
        // Plan with the masker of the Execute it was sent for (queued right behind it).
        Entry* exec = queue_.size() > 1 ? &queue_[1] : nullptr;
        if (exec == nullptr || exec->kind != Kind::kExecute) return Fatal("describe out of order");
        if (exec->masker == nullptr && floor_ != nullptr) {
          exec->masker = floor_;
          exec->profile = floor_->name();
          exec->from_floor = true;
        }
        Out o = Plan(*exec, body, nullptr);
        if (o.verdict != Verdict::kPass) return o;
        queue_.pop_front();
        return Out{Verdict::kDrop};
      }
      if (front->kind == Kind::kDescribeAgent) {
        queue_.pop_front();
        return floor_ != nullptr ? MaskFieldNames(raw, *floor_) : pass;
      }
      if (front->kind == Kind::kQuery && front->masker != nullptr) {
        Out o = Plan(*front, body, nullptr);
        if (o.verdict != Verdict::kPass) return o;
        return MaskFieldNames(raw, *front->masker);
      }
      return floor_ != nullptr ? MaskFieldNames(raw, *floor_) : pass;
    }
    case cpg::backend::kNoData:
      if (front != nullptr && (front->kind == Kind::kDescribeOurs || front->kind == Kind::kDescribeAgent)) {
        bool ours = front->kind == Kind::kDescribeOurs;
        queue_.pop_front();
        if (ours) {
          if (!queue_.empty() && queue_.front().kind == Kind::kExecute) {
            queue_.front().plan.clear();
            queue_.front().has_plan = true;
          }
          return Out{Verdict::kDrop};
        }
      }
      return pass;
    case cpg::backend::kDataRow:
      if (front != nullptr && (front->kind == Kind::kQuery || front->kind == Kind::kExecute) &&
          front->masker != nullptr) {
        return MaskRow(*front, raw);
      }
      // Row data that belongs to no statement we know of: never relayed unread.
      if (floor_ != nullptr) return Fatal("row data outside any statement");
      return pass;
    case cpg::backend::kCopyOutResponse:
    case cpg::backend::kCopyBothResponse:
      if (front != nullptr && front->masker != nullptr &&
          (front->kind == Kind::kQuery || front->kind == Kind::kExecute)) {
        auto r = cpg::ParseCopyOutResponse(body);
        if (!r.ok() || r->format != 0) {
          return Fatal("binary COPY output cannot be masked");
        }
        front->copy = true;
      } else if (floor_ != nullptr) {
        return Fatal("COPY output outside any statement");
      }
      return pass;
    case cpg::backend::kCopyData:
      if (front != nullptr && front->copy && front->masker != nullptr) return MaskCopy(*front, raw);
      if (floor_ != nullptr) return Fatal("COPY data outside any statement");
      return pass;
    case cpg::backend::kCommandComplete:
    case cpg::backend::kEmptyQueryResponse:
    case cpg::backend::kPortalSuspended:
      if (front == nullptr) return pass;
      if (front->kind == Kind::kExecute) {
        Report(*front);
        queue_.pop_front();
      } else if (front->kind == Kind::kQuery) {
        Report(*front);
        ++front->result_index;
      }
      return pass;
    case cpg::backend::kFunctionCallResponse:
      if (front != nullptr && front->kind == Kind::kFunctionCall && front->masker != nullptr) {
        Out o = MaskFunctionResult(*front, raw);
        Report(*front);
        return o;
      }
      if (floor_ != nullptr) return Fatal("function result outside any call");
      return pass;
    case cpg::backend::kErrorResponse: {
      Out out = pass;
      if (const mask::Masker* m = TextMasker(front); m != nullptr) {
        MaskReport* report = statement_front && front->masker != nullptr ? &front->report : nullptr;
        MaskReport async;
        out = MaskFields(type, raw, *m, m->has_column_rules(), report != nullptr ? report : &async);
        if (out.verdict == Verdict::kFatal) return out;
        if (report == nullptr && async.values_masked > 0) ReportAsync(*m, std::move(async));
      }
      if (front == nullptr) return out;
      if (statement_front) Report(*front);
      if (front->kind == Kind::kQuery) {
        front->plan.clear();
        front->has_plan = false;
        front->copy = false;
        return out;
      }
      if (front->kind == Kind::kExecute || front->kind == Kind::kDescribeOurs || front->kind == Kind::kDescribeAgent) {
        queue_.pop_front();
      }
      DropFailedBatch();
      return out;
    }
    case cpg::backend::kNoticeResponse:
    case cpg::backend::kNotificationResponse:
    case cpg::backend::kParameterStatus: {
      const mask::Masker* m = TextMasker(front);
      if (m == nullptr) return pass;
      MaskReport* report = statement_front && front->masker != nullptr ? &front->report : nullptr;
      MaskReport async;
      MaskReport* r = report != nullptr ? report : &async;
      Out out = type == cpg::backend::kNoticeResponse         ? MaskFields(type, raw, *m, false, r)
                : type == cpg::backend::kNotificationResponse ? MaskNotification(raw, *m, r)
                                                              : MaskParameterStatus(raw, *m, r);
      if (out.verdict != Verdict::kFatal && report == nullptr && async.values_masked > 0) {
        ReportAsync(*m, std::move(async));
      }
      return out;
    }
    case cpg::backend::kReadyForQuery:
      while (!queue_.empty() && queue_.front().batch <= answered_batches_) queue_.pop_front();
      ++answered_batches_;
      return pass;
    default:
      return pass;
  }
}

std::vector<MaskReport> ResultMasker::TakeReports() {
  std::vector<MaskReport> out;
  out.swap(reports_);
  return out;
}

}  // namespace interlock::proxy::pg
