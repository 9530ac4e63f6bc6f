#include "userspace/proxy/pg/result_masker.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg {

namespace cpg = codec::pg;

namespace {

constexpr uint32_t kBpchar = 1042, kVarchar = 1043, kText = 25, kName = 19, kUnknown = 705, kJson = 114,
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

std::string ResultMasker::OnFrontend(char type, absl::string_view body, const mask::Masker* masker,
                                     const std::string& profile) {
  switch (type) {
    case cpg::frontend::kQuery:
      queue_.push_back(Entry{Kind::kQuery, sent_batches_++, masker, profile});
      return "";
    case cpg::frontend::kBind: {
      auto b = cpg::ParseBind(body);
      if (b.ok()) portal_formats_[b->portal] = std::move(b->result_formats);
      return "";
    }
    case cpg::frontend::kDescribe:
      queue_.push_back(Entry{Kind::kDescribeAgent, sent_batches_});
      return "";
    case cpg::frontend::kExecute: {
      auto e = cpg::ParseExecute(body);
      Entry ex{Kind::kExecute, sent_batches_, masker, profile};
      std::string prefix;
      if (e.ok()) {
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
      auto c = cpg::ParseClose(body);
      if (c.ok() && c->kind == cpg::TargetKind::kPortal) portal_formats_.erase(c->name);
      return "";
    }
    case cpg::frontend::kSync:
      queue_.push_back(Entry{Kind::kSync, sent_batches_++});
      return "";
    case cpg::frontend::kFunctionCall:
      queue_.push_back(Entry{Kind::kFunctionCall, sent_batches_++});
      return "";
    default:
      return "";
  }
}

namespace {

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
  for (size_t i = 0; i < rd->fields.size(); ++i) {
    const auto& f = rd->fields[i];
    if (f.table_oid == 0 || f.column_attr <= 0) continue;
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
        kept = m.AppendWhole(*c.rule, jsonb_binary ? v.substr(1) : v, &nb);
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
    if (!textual) continue;  // binary, not text-like, no column rule: left as is
    if (!m.MaskText(v, &text_scratch_, &e.report.counts)) continue;
    ++e.report.values_masked;
    begin_rewrite();
    nb.append(copied_to, static_cast<size_t>(field_start - copied_to));
    Put32(nb, static_cast<uint32_t>(text_scratch_.size()));
    nb.append(text_scratch_);
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
  e.report.profile = e.profile;
  e.report.protocol = e.kind == Kind::kQuery ? "simple" : "extended";
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

ResultMasker::Out ResultMasker::OnBackend(char type, absl::string_view raw) {
  Out pass;
  absl::string_view body = raw.substr(cpg::kMessageHeaderBytes);
  Entry* front = queue_.empty() ? nullptr : &queue_.front();
  switch (type) {
    case cpg::backend::kRowDescription: {
      if (front == nullptr) return pass;
      if (front->kind == Kind::kDescribeOurs) {
        // Plan with the masker of the Execute it was sent for (queued right behind it).
        Entry* exec = queue_.size() > 1 ? &queue_[1] : nullptr;
        if (exec == nullptr || exec->kind != Kind::kExecute) return Fatal("describe out of order");
        Out o = Plan(*exec, body, nullptr);
        if (o.verdict != Verdict::kPass) return o;
        queue_.pop_front();
        return Out{Verdict::kDrop};
      }
      if (front->kind == Kind::kDescribeAgent) {
        queue_.pop_front();
        return pass;
      }
      if (front->kind == Kind::kQuery && front->masker != nullptr) {
        Out o = Plan(*front, body, nullptr);
        return o;
      }
      return pass;
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
      }
      return pass;
    case cpg::backend::kCopyData:
      if (front != nullptr && front->copy && front->masker != nullptr) return MaskCopy(*front, raw);
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
      }
      return pass;
    case cpg::backend::kErrorResponse:
      if (front == nullptr) return pass;
      if (front->kind == Kind::kQuery) {
        front->plan.clear();
        front->has_plan = false;
        front->copy = false;
        return pass;
      }
      if (front->kind == Kind::kExecute || front->kind == Kind::kDescribeOurs || front->kind == Kind::kDescribeAgent) {
        queue_.pop_front();
      }
      DropFailedBatch();
      return pass;
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
