#include "userspace/proxy/pg/statement_tracker.h"

#include "absl/strings/str_cat.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;

namespace {

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string CapUtf8(absl::string_view s, size_t max, bool* truncated) {
  *truncated = s.size() > max;
  if (!*truncated) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

// A printable rendering of one bound value: text-format values as they are (capped),
// binary ones as \x-hex.
std::string RenderParam(const std::optional<absl::string_view>& v, int16_t format, size_t max) {
  if (!v.has_value()) return "NULL";
  bool truncated = false;
  std::string out;
  if (format == 1) {
    out = absl::StrCat("\\x", HexEncode(v->substr(0, max / 2)));
    truncated = v->size() > max / 2;
  } else {
    out = CapUtf8(*v, max, &truncated);
  }
  if (truncated) out += "...";
  return out;
}

// SHA-256 over the bound values, each as Int32 length (-1 for NULL) + bytes, like the wire.
std::string ParamsDigest(const std::vector<std::optional<absl::string_view>>& params) {
  Sha256Hasher h;
  for (const auto& p : params) {
    int32_t len = p.has_value() ? static_cast<int32_t>(p->size()) : -1;
    const char be[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16), static_cast<char>(len >> 8),
                        static_cast<char>(len)};
    h.Update(absl::string_view(be, 4));
    if (p.has_value()) h.Update(*p);
  }
  Sha256Digest md = h.Final();
  return HexEncode(absl::string_view(reinterpret_cast<const char*>(md.data()), md.size()));
}

int16_t FormatOf(const std::vector<int16_t>& formats, size_t i) {
  if (formats.empty()) return 0;
  if (formats.size() == 1) return formats[0];
  return i < formats.size() ? formats[i] : 0;
}

}  // namespace

StatementTracker::StatementTracker(StatementTrackerOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

StatementTracker::StatementText StatementTracker::MakeText(absl::string_view full) const {
  StatementText t;
  // What the audit trail shows: literals replaced unless the resource allows them (the
  // digest is of the exact text, to match it against the recording).
  if (options_.audit_literals) {
    t.capped = CapUtf8(full, options_.max_statement_bytes, &t.truncated);
  } else {
    t.capped = CapUtf8(options_.normalize_memo != nullptr
                           ? absl::string_view(options_.normalize_memo->Normalize(full, options_.standard_conforming_strings))
                           : absl::string_view(sql::NormalizeLiterals(full, options_.standard_conforming_strings)),
                       options_.max_statement_bytes, &t.truncated);
  }
  t.sha256 = Sha256Hex(full);
  return t;
}

v1::StatementInfo StatementTracker::NewInfo(absl::string_view protocol, const StatementText& text) {
  v1::StatementInfo info;
  info.set_protocol(std::string(protocol));
  info.set_database(options_.database);
  info.set_user(options_.user);
  info.set_text(text.capped);
  info.set_text_truncated(text.truncated);
  info.set_text_sha256(text.sha256);
  return info;
}

absl::Status StatementTracker::OnFrontend(char type, absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(cpg::FrontendMessage m, cpg::DecodeFrontend(type, body));
  return OnFrontend(m);
}

absl::Status StatementTracker::OnFrontend(const cpg::FrontendMessage& m) {
  namespace fe = cpg::frontend;
  absl::Duration now = clock_.Monotonic();
  switch (m.type) {
    case fe::kQuery: {
      const cpg::Query& q = *m.get<cpg::Query>();
      pending_.push_back({Kind::kQuery, true, NewInfo("simple", q.query), now});
      return absl::OkStatus();
    }
    case fe::kParse: {
      const cpg::Parse& p = *m.get<cpg::Parse>();
      if (projected_.statements.size() >= kMaxTrackedObjects &&
          !projected_.statements.contains(p.statement)) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "pg: more than ", kMaxTrackedObjects, " prepared statements in one session"));
      }
      StatementText text = MakeText(p.query);
      projected_.statements[p.statement] = text;
      changes_.push_back({Kind::kParse, p.statement, std::move(text), {}, true});
      pending_.push_back({Kind::kParse, false, {}, now});
      return absl::OkStatus();
    }
    case fe::kBind: {
      const cpg::Bind& b = *m.get<cpg::Bind>();
      Portal portal;
      portal.statement_name = b.statement;
      if (projected_.portals.size() >= kMaxTrackedObjects && !projected_.portals.contains(b.portal)) {
        return absl::ResourceExhaustedError(
            absl::StrCat("pg: more than ", kMaxTrackedObjects, " open portals in one session"));
      }
      auto it = projected_.statements.find(b.statement);
      portal.text = it != projected_.statements.end() ? it->second : MakeText("");
      portal.param_count = static_cast<uint32_t>(b.params.size());
      portal.params_sha256 = b.params.empty() ? "" : ParamsDigest(b.params);
      if (options_.audit_parameters) {
        for (size_t i = 0; i < b.params.size(); ++i) {
          portal.params.push_back(
              RenderParam(b.params[i], FormatOf(b.param_formats, i), options_.max_parameter_bytes));
        }
      }
      projected_.portals[b.portal] = portal;
      changes_.push_back({Kind::kBind, b.portal, {}, std::move(portal), true});
      pending_.push_back({Kind::kBind, false, {}, now});
      return absl::OkStatus();
    }
    case fe::kDescribe:
      pending_.push_back({Kind::kDescribe, false, {}, now});
      return absl::OkStatus();
    case fe::kExecute: {
      const cpg::Execute& e = *m.get<cpg::Execute>();
      auto it = projected_.portals.find(e.portal);
      Pending p{Kind::kExecute, true, {}, now};
      if (it != projected_.portals.end()) {
        p.info = NewInfo("extended", it->second.text);
        p.info.set_statement_name(it->second.statement_name);
        p.info.set_parameter_count(it->second.param_count);
        p.info.set_parameters_sha256(it->second.params_sha256);
        for (const auto& v : it->second.params) p.info.add_parameters(v);
      } else {
        p.info = NewInfo("extended", "");
      }
      p.info.set_portal(e.portal);
      pending_.push_back(std::move(p));
      return absl::OkStatus();
    }
    case fe::kClose: {
      const cpg::Close& c = *m.get<cpg::Close>();
      bool statement = c.kind == cpg::TargetKind::kStatement;
      if (statement) {
        projected_.statements.erase(c.name);
      } else {
        projected_.portals.erase(c.name);
      }
      changes_.push_back({Kind::kClose, c.name, {}, {}, statement});
      pending_.push_back({Kind::kClose, false, {}, now});
      return absl::OkStatus();
    }
    case fe::kSync:
      // A Sync closes the implicit transaction's unnamed portal (docs 55.2.3).
      pending_.push_back({Kind::kSync, false, {}, now});
      return absl::OkStatus();
    case fe::kFunctionCall: {
      const cpg::FunctionCall& f = *m.get<cpg::FunctionCall>();
      Pending p{Kind::kFunctionCall, true,
                NewInfo("function_call", absl::StrCat("function call: oid ", f.function_oid)), now};
      p.info.set_parameter_count(static_cast<uint32_t>(f.args.size()));
      if (!f.args.empty()) p.info.set_parameters_sha256(ParamsDigest(f.args));
      if (options_.audit_parameters) {
        for (size_t i = 0; i < f.args.size(); ++i) {
          p.info.add_parameters(
              RenderParam(f.args[i], FormatOf(f.arg_formats, i), options_.max_parameter_bytes));
        }
      }
      pending_.push_back(std::move(p));
      return absl::OkStatus();
    }
    default:
      // Flush, CopyData/Done/Fail, Terminate: no response of their own to match.
      return absl::OkStatus();
  }
}

void StatementTracker::Complete(Pending& p, absl::string_view status) {
  if (!p.audited) return;
  v1::StatementInfo& info = p.info;
  info.set_status(std::string(status));
  info.set_duration_us(
      static_cast<uint64_t>(absl::ToInt64Microseconds(clock_.Monotonic() - p.started)));
  uint64_t rows = 0;
  bool have_count = false;
  for (const std::string& tag : info.command_tags()) {
    if (auto n = cpg::CommandTagRowCount(tag); n.has_value()) {
      rows += *n;
      have_count = true;
    }
  }
  info.set_rows(have_count ? rows : p.data_rows);
  completed_.push_back(std::move(info));
}

void StatementTracker::SkipToSync(const v1::StatementInfo& cause) {
  // After an error the backend ignores messages up to Sync: those requests get no
  // response. Statements among them did not run, and their Parse/Bind/Close never took
  // effect: the projection goes back to what the server confirmed.
  while (!pending_.empty() && pending_.front().kind != Kind::kSync) {
    Pending& p = pending_.front();
    if (p.kind == Kind::kParse || p.kind == Kind::kBind || p.kind == Kind::kClose) DropChange(p.kind);
    if (p.audited) {
      p.info.set_sqlstate(cause.sqlstate());
      p.info.set_error(absl::StrCat("not executed: an earlier message in the pipeline failed (",
                                    cause.sqlstate(), ")"));
      Complete(p, "skipped");
    }
    pending_.pop_front();
  }
}

absl::Status StatementTracker::OnBackend(char type, absl::string_view body) {
  namespace be = cpg::backend;
  if (type == be::kParameterStatus) {
    auto ps = cpg::ParseParameterStatus(body);
    if (ps.ok() && ps->name == "standard_conforming_strings") options_.standard_conforming_strings = ps->value == "on";
  }
  if (pending_.empty()) return absl::OkStatus();  // async messages, or a FATAL at any time
  Pending& head = pending_.front();
  switch (type) {
    case be::kParseComplete:
    case be::kBindComplete:
    case be::kCloseComplete:
      if (head.kind == Kind::kParse || head.kind == Kind::kBind || head.kind == Kind::kClose) {
        ConfirmChange(head.kind);
        pending_.pop_front();
      }
      return absl::OkStatus();
    case be::kNoData:
    case be::kRowDescription:
      // RowDescription also precedes rows of a simple Query; only Describe is answered by it.
      if (head.kind == Kind::kDescribe) pending_.pop_front();
      return absl::OkStatus();
    case be::kDataRow:
      if (head.kind == Kind::kQuery || head.kind == Kind::kExecute) ++head.data_rows;
      return absl::OkStatus();
    case be::kCommandComplete: {
      auto c = cpg::ParseCommandComplete(body);
      if (!c.ok()) return c.status();
      if (head.kind == Kind::kQuery) {
        head.info.add_command_tags(c->tag);
      } else if (head.kind == Kind::kExecute) {
        head.info.add_command_tags(c->tag);
        Complete(head, "ok");
        pending_.pop_front();
      }
      return absl::OkStatus();
    }
    case be::kEmptyQueryResponse:
      if (head.kind == Kind::kExecute) {
        Complete(head, "ok");
        pending_.pop_front();
      }
      return absl::OkStatus();
    case be::kPortalSuspended:
      if (head.kind == Kind::kExecute) {
        Complete(head, "suspended");
        pending_.pop_front();
      }
      return absl::OkStatus();
    case be::kErrorResponse: {
      auto e = cpg::ParseErrorResponse(body);
      if (!e.ok()) return e.status();
      v1::StatementInfo cause;
      cause.set_sqlstate(std::string(e->sqlstate()));
      if (head.kind == Kind::kQuery || head.kind == Kind::kFunctionCall) {
        // Ends at ReadyForQuery; keep the first error.
        if (!head.errored) {
          head.errored = true;
          head.info.set_sqlstate(std::string(e->sqlstate()));
          head.info.set_error(std::string(e->message()));
        }
        return absl::OkStatus();
      }
      if (head.kind == Kind::kSync) return absl::OkStatus();
      if (head.kind == Kind::kParse || head.kind == Kind::kBind || head.kind == Kind::kClose) {
        DropChange(head.kind);
      }
      if (head.audited) {
        head.info.set_sqlstate(std::string(e->sqlstate()));
        head.info.set_error(std::string(e->message()));
        Complete(head, e->sqlstate() == "57014" ? "cancelled" : "error");
      }
      pending_.pop_front();
      SkipToSync(cause);
      return absl::OkStatus();
    }
    case be::kReadyForQuery: {
      auto rfq = cpg::ParseReadyForQuery(body);
      // Outside a transaction block every portal is gone (docs 55.2.3); statements stay.
      bool idle = rfq.ok() && rfq->status == cpg::TransactionStatus::kIdle;
      if (idle) {
        confirmed_.portals.clear();
        projected_.portals.clear();
      }
      if (head.kind == Kind::kQuery || head.kind == Kind::kFunctionCall) {
        Complete(head, !head.errored ? "ok"
                                     : (head.info.sqlstate() == "57014" ? "cancelled" : "error"));
        pending_.pop_front();
        return absl::OkStatus();
      }
      // Sync (or a desynchronized queue): everything up to and including the Sync is done.
      while (!pending_.empty()) {
        Kind k = pending_.front().kind;
        if (k == Kind::kParse || k == Kind::kBind || k == Kind::kClose) DropChange(k);
        if (k != Kind::kSync && pending_.front().audited) Complete(pending_.front(), "incomplete");
        pending_.pop_front();
        if (k == Kind::kSync) break;
      }
      return absl::OkStatus();
    }
    default:
      // ParameterDescription, FunctionCallResponse, Copy*, notices, notifications,
      // parameter status: nothing to match.
      return absl::OkStatus();
  }
}

void StatementTracker::ConfirmChange(Kind kind) {
  if (changes_.empty() || changes_.front().kind != kind) return;
  Change c = std::move(changes_.front());
  changes_.pop_front();
  switch (kind) {
    case Kind::kParse:
      confirmed_.statements[c.name] = std::move(c.text);
      break;
    case Kind::kBind:
      confirmed_.portals[c.name] = std::move(c.portal);
      break;
    case Kind::kClose:
      if (c.statement) {
        confirmed_.statements.erase(c.name);
      } else {
        confirmed_.portals.erase(c.name);
      }
      break;
    default:
      break;
  }
}

void StatementTracker::DropChange(Kind kind) {
  if (!changes_.empty() && changes_.front().kind == kind) changes_.pop_front();
  // Everything after the failure is skipped too: rebuild the projection from what the
  // server confirmed plus the changes still to be answered (none, once at Sync).
  projected_ = confirmed_;
  for (const Change& c : changes_) {
    if (c.kind == Kind::kParse) projected_.statements[c.name] = c.text;
    if (c.kind == Kind::kBind) projected_.portals[c.name] = c.portal;
    if (c.kind == Kind::kClose) {
      if (c.statement) {
        projected_.statements.erase(c.name);
      } else {
        projected_.portals.erase(c.name);
      }
    }
  }
}

std::vector<v1::StatementInfo> StatementTracker::TakeCompleted() {
  std::vector<v1::StatementInfo> out;
  out.swap(completed_);
  return out;
}

std::vector<v1::StatementInfo> StatementTracker::Finish(absl::string_view status) {
  while (!pending_.empty()) {
    Complete(pending_.front(), status);
    pending_.pop_front();
  }
  return TakeCompleted();
}

}  // namespace interlock::proxy::pg
