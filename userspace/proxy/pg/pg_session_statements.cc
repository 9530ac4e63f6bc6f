// PgSession, part: the relay phase — each frontend message decoded once and offered to the
// guard (policy), the statement tracker, the recording and the result masker; backend
// messages through the tracker and the masker; planner estimates and the masking floor.
#include "userspace/proxy/pg/pg_session.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/auth/scram.h"
#include "userspace/auth/secret.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/errno_status.h"
#include "userspace/proxy/pg/literal_withholding.h"
#include "userspace/proxy/pg/startup_params.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;

bool PgSession::RelayFrontend() {
  if (frontend_stream_left_ > 0) {
    if (agent_.in().empty()) return false;
    size_t n = static_cast<size_t>(std::min<uint64_t>(frontend_stream_left_, agent_.in().size()));
    absl::string_view chunk = agent_.in().view().substr(0, n);
    if (!frontend_stream_withheld_) {
      RecordFromAgent(chunk);
    } else if (recorder_ && recorder_->keeps_originals()) {
      pending_sealed_from_agent_.append(chunk.data(), chunk.size());
    }
    SendToUpstream(chunk);
    agent_.in().Consume(n);
    frontend_stream_left_ -= n;
    return true;
  }
  if (held_.has_value()) return false;  // nothing passes a statement held for approval
  if (upstream_.out().size() >= kHighWaterBytes) return false;
  auto header = cpg::PeekHeader(agent_.in().view(), cpg::kMaxMessageBytes);
  if (!header.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_frontend_message", std::string(header.status().message()));
    FailToAgent("08P01", absl::StrCat("interlock: protocol violation: ", header.status().message()),
                "protocol_error", std::string(header.status().message()));
    return false;
  }
  if (!header->has_value()) return false;
  const cpg::FrameHeader h = **header;
  if (h.type == cpg::frontend::kCopyData) {
    // COPY FROM STDIN data: not inspected, streamed whatever its size. Withheld, the
    // recording shows an empty CopyData in its place.
    frontend_stream_left_ = h.total_bytes;
    frontend_stream_withheld_ = withhold_literals_;
    if (withhold_literals_) RecordFromAgent(cpg::Encode(cpg::CopyData{}));
    return true;
  }
  if (h.length > kMaxFrontendMessageBytes) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "message_too_large",
          absl::StrCat(cpg::MessageName(h.type, true), " of ", h.length, " bytes"));
    FailToAgent("54000",
                absl::StrCat("interlock: ", cpg::MessageName(h.type, true), " of ", h.length,
                             " bytes exceeds the limit of ", kMaxFrontendMessageBytes),
                "protocol_error", "message too large");
    return false;
  }
  if (agent_.in().size() < h.total_bytes) return false;
  absl::string_view raw = agent_.in().view().substr(0, h.total_bytes);
  // Decoded once: the guard, the tracker, the recording and the result masker all read
  // this same message.
  auto decoded = cpg::DecodeFrontend(h.type, raw.substr(cpg::kMessageHeaderBytes));
  if (!decoded.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_frontend_message", std::string(decoded.status().message()));
    FailToAgent("08P01", absl::StrCat("interlock: protocol violation: ", decoded.status().message()),
                "protocol_error", std::string(decoded.status().message()));
    return false;
  }
  const cpg::FrontendMessage& message = *decoded;
  if (h.type == cpg::frontend::kQuery || h.type == cpg::frontend::kParse || h.type == cpg::frontend::kExecute ||
      h.type == cpg::frontend::kFunctionCall) {
    if (!RecheckToken()) return false;
  }
  const bool statement_message = h.type == cpg::frontend::kQuery || h.type == cpg::frontend::kExecute ||
                                 h.type == cpg::frontend::kFunctionCall;
  // Masking that began mid-session (a reloaded policy brought mask profiles): the masker
  // must see every request whose answer it reads, so it starts when nothing is in flight;
  // until then statements to be masked are refused below (fail closed).
  if (guard_ != nullptr && result_masker_ == nullptr && PolicyHasMaskProfiles() && tracker_->pending() == 0) {
    CreateResultMasker();
  }
  std::optional<GuardVerdict> verdict;
  if (guard_ != nullptr) {
    if (estimating_) return false;
    std::optional<RowEstimates> estimates = std::move(estimates_ready_);
    estimates_ready_.reset();
    auto v = guard_->OnFrontend(message, estimates.has_value() ? &*estimates : nullptr);
    if (!v.ok()) {
      bool limit = absl::IsResourceExhausted(v.status());
      Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", limit ? "too_much_state" : "bad_frontend_message",
            std::string(v.status().message()));
      FailToAgent(limit ? "54000" : "08P01", absl::StrCat("interlock: ", v.status().message()),
                  limit ? "resource_limit" : "protocol_error", std::string(v.status().message()));
      return false;
    }
    // Wait for the server to answer earlier batches; Pump retries after backend progress.
    if (v->kind == GuardVerdict::kWait) return false;
    if (v->kind == GuardVerdict::kEstimate) {
      StartEstimates(std::move(v->estimates));
      return false;
    }
    verdict = *std::move(v);
  }
  absl::Status st = tracker_->OnFrontend(message);
  if (absl::IsResourceExhausted(st)) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "too_many_objects", std::string(st.message()));
    FailToAgent("54000", absl::StrCat("interlock: ", st.message()), "resource_limit", std::string(st.message()));
    return false;
  }
  if (!st.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_frontend_message", std::string(st.message()));
    FailToAgent("08P01", absl::StrCat("interlock: protocol violation: ", st.message()), "protocol_error",
                std::string(st.message()));
    return false;
  }
  RecordFrontendMessage(message, raw);
  Floor floor;
  if (guard_ != nullptr) {
    if (statement_message) {
      floor = SessionFloor();
      if (result_masker_ != nullptr) result_masker_->SetFloor(floor.masker);
      else floor.masker = nullptr;
    }
  }
  ResultMasker::MaskerPtr masker;
  std::string profile;  // empty: the session floor
  if (verdict.has_value() && verdict->decision.has_value() && verdict->decision->action == v1::ACTION_MASK) {
    profile = verdict->decision->mask_profile;
    if (result_masker_ != nullptr && env_.masks != nullptr) {
      // Its rule's profile first (its styles win), then the rest of the floor: a statement
      // that also reads another profile's table is masked by both.
      std::vector<std::string> names = {profile};
      for (const std::string& n : floor.list) {
        if (n != profile) names.push_back(n);
      }
      masker = env_.masks->Floor(names);  // one name: the profile itself
      if (masker != nullptr) profile = masker->name();
    }
  } else if (statement_message && floor.applies) {
    // Whatever the statement's kind or decision, its result passes the session floor.
    masker = floor.masker;
  }
  if ((!profile.empty() || (statement_message && floor.applies)) && masker == nullptr) {
    // Fail closed: a result we were told to mask and cannot is not sent.
    std::string name = profile.empty() ? floor.names : profile;
    if (!verdict.has_value() || !verdict->decision.has_value()) {
      // Nothing judged it (an Execute of a SQL cursor): no replacement to send instead.
      Audit(v1::AUDIT_KIND_MASKING, "error", "mask_unavailable", absl::StrCat("mask profile ", name));
      FailToAgent("0A000", absl::StrCat("interlock: mask profile \"", name, "\" is not available; the session is closed"),
                  "mask_failed", absl::StrCat("mask profile ", name, " unavailable"));
      return false;
    }
    verdict->kind = GuardVerdict::kReplace;
    verdict->replacement = guard_->DenyHeld(
        h.type, absl::StrCat("interlock: mask profile \"", name, "\" is not available; the statement was not run"),
        "");
    verdict->audit.set_source("mask_unavailable");
  }
  if (verdict.has_value() && verdict->decision.has_value()) {
    bool statement = h.type == cpg::frontend::kQuery || h.type == cpg::frontend::kExecute ||
                     h.type == cpg::frontend::kFunctionCall;
    if (statement) {
      v1::PolicyDecision light = verdict->audit;
      light.clear_classification();
      tracker_->AttachDecision(std::move(light));
    }
    if (verdict->kind == GuardVerdict::kReplace) {
      AuditDecision(verdict->audit, "denied");
      SendFrontend(verdict->replacement);
      agent_.in().Consume(h.total_bytes);
      return true;
    }
    if (verdict->kind == GuardVerdict::kHold) {
      std::string copy(raw);
      agent_.in().Consume(h.total_bytes);
      StartHold(h.type, std::move(copy), *std::move(verdict));
      return !held_.has_value();
    }
  }
  SendFrontend(raw, masker, profile, verdict.has_value() ? std::move(verdict->shapes) : ResultShapes{}, &message);
  agent_.in().Consume(h.total_bytes);
  return true;
}

PgSession::Floor PgSession::SessionFloor() {
  Floor f;
  if (env_.policy == nullptr || *env_.policy == nullptr) return f;
  std::vector<std::string> names = (*env_.policy)->MaskProfilesFor(subject_, ctx_.resource_name);
  if (names.empty()) return f;
  f.applies = true;
  f.names = absl::StrJoin(names, "+");
  f.list = names;
  if (env_.masks != nullptr) f.masker = env_.masks->Floor(names);
  return f;
}

bool PgSession::PolicyHasMaskProfiles() const {
  return env_.masks != nullptr && env_.policy != nullptr && *env_.policy != nullptr &&
         !(*env_.policy)->policy().mask_profiles().empty();
}

void PgSession::CreateResultMasker() {
  MaskSupport* masks = env_.masks;
  std::string key = ctx_.catalog_key;
  result_masker_ = std::make_unique<ResultMasker>([masks, key](uint32_t oid, int16_t attnum) -> std::optional<ColumnSource> {
    if (masks == nullptr) return ColumnSource{};
    return masks->Lookup(key, oid, attnum);
  });
}

void PgSession::SendFrontend(absl::string_view bytes, ResultMasker::MaskerPtr masker, const std::string& profile,
                             ResultShapes shapes, const cpg::FrontendMessage* decoded) {
  if (result_masker_ != nullptr && bytes.size() >= cpg::kMessageHeaderBytes) {
    std::string prefix =
        decoded != nullptr
            ? result_masker_->OnFrontend(*decoded, std::move(masker), profile, std::move(shapes))
            : result_masker_->OnFrontend(bytes[0], bytes.substr(cpg::kMessageHeaderBytes), std::move(masker),
                                         profile, std::move(shapes));
    if (!prefix.empty()) SendToUpstream(prefix);
  }
  SendToUpstream(bytes);
}

void PgSession::StartEstimates(std::vector<EstimateNeed> needs) {
  int size = 0;
  size_t requests = 0;
  for (const auto& n : needs) {
    size = std::max(size, n.statement_index + 1);
    requests += 1 + n.tables.size();
  }
  auto results = std::make_shared<RowEstimates>(static_cast<size_t>(size));
  auto left = std::make_shared<size_t>(requests);
  estimating_ = true;
  std::shared_ptr<bool> alive = alive_;
  // `table`: "" for the statement's own estimate, else the whole table's (full_table).
  auto finish_one = [this, alive, results, left](int index, std::string table, absl::StatusOr<int64_t> rows) {
    if (!*alive) return;
    if (!rows.ok()) {
      // No estimate: the rule that asked for it applies (fail closed).
      Audit(v1::AUDIT_KIND_POLICY_DECISION, "estimate_failed", table.empty() ? "estimated_rows" : "full_table",
            std::string(rows.status().message()));
    }
    int64_t value = rows.ok() ? *rows : policy::kEstimateFailed;
    if (table.empty()) (*results)[index].rows = value;
    else (*results)[index].table_rows[table] = value;
    if (--*left > 0) return;
    estimates_ready_ = std::move(*results);
    estimating_ = false;
    Pump();
  };
  auto ask = [this, &finish_one](int index, std::string table, EstimateRequest r) {
    if (!ctx_.estimate || r.sql.empty()) {
      // Called later, like a real answer, so the guard is asked again from Pump.
      env_.loop->RunAfter(absl::ZeroDuration(), [finish_one, index, table] {
        finish_one(index, table, absl::UnavailableError("no planner estimate available for this statement"));
      });
      return;
    }
    ctx_.estimate(std::move(r), [finish_one, index, table](absl::StatusOr<int64_t> rows) {
      finish_one(index, table, std::move(rows));
    });
  };
  for (EstimateNeed& n : needs) {
    EstimateRequest r;
    r.sql = std::move(n.sql);
    r.param_type_oids = std::move(n.param_type_oids);
    r.param_formats = std::move(n.param_formats);
    r.params = std::move(n.params);
    ask(n.statement_index, "", std::move(r));
    // The whole table: `EXPLAIN SELECT * FROM t` is the planner's reltuples, scaled to the
    // table's current size.
    for (TableEstimateNeed& t : n.tables) {
      ask(n.statement_index, std::move(t.name), EstimateRequest{.sql = std::move(t.sql)});
    }
  }
}

void PgSession::AuditMasking(std::vector<MaskReport> reports) {
  for (MaskReport& r : reports) {
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_MASKING);
    ev.set_session_id(ctx_.session_id);
    *ev.mutable_identity() = ctx_.identity;
    ev.set_resource(ctx_.resource_name);
    ev.set_protocol("postgres");
    ev.set_outcome("masked");
    ev.set_reason(r.profile);
    v1::MaskingInfo* m = ev.mutable_masking();
    m->set_profile(r.profile);
    m->set_protocol(r.protocol);
    m->set_rows(r.rows);
    m->set_values_masked(r.values_masked);
    for (auto& c : r.masked_columns) m->add_columns(std::move(c));
    for (const auto& [k, v] : r.counts.detectors) (*m->mutable_detector_counts())[k] = v;
    for (const auto& [k, v] : r.counts.columns) (*m->mutable_column_counts())[k] = v;
    (void)env_.audit->Emit(std::move(ev));
  }
}

bool PgSession::RelayBackend() {
  if (catalog_wait_) return false;
  if (backend_stream_left_ > 0) {
    if (upstream_.in().empty()) return false;
    size_t n = static_cast<size_t>(std::min<uint64_t>(backend_stream_left_, upstream_.in().size()));
    SendToAgent(upstream_.in().view().substr(0, n));
    upstream_.in().Consume(n);
    backend_stream_left_ -= n;
    if (backend_stream_left_ == 0 && !pending_notice_.empty()) {
      SendToAgent(pending_notice_);
      pending_notice_.clear();
    }
    if (backend_stream_left_ == 0 && pending_fatal_.has_value()) {
      PendingFatal f = *std::move(pending_fatal_);
      pending_fatal_.reset();
      FailToAgent(f.sqlstate, f.message, f.outcome, f.message);
      return false;
    }
    return phase_ == Phase::kRelay;
  }
  if (agent_.out().size() >= kHighWaterBytes) return false;
  auto header = cpg::PeekHeader(upstream_.in().view(), cpg::kMaxMessageBytes);
  if (!header.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "bad_backend_message", std::string(header.status().message()));
    FailToAgent("08P01", "interlock: protocol error from the resource", "upstream_protocol_error",
                std::string(header.status().message()));
    return false;
  }
  if (!header->has_value()) return false;
  const cpg::FrameHeader h = **header;
  bool masking = result_masker_ != nullptr && result_masker_->active();
  if ((h.type == cpg::backend::kDataRow || h.type == cpg::backend::kCopyData) && !masking) {
    // Rows and COPY data are counted, not buffered: memory stays bounded whatever the
    // result size (a masked row is buffered whole, one at a time).
    (void)tracker_->OnBackend(h.type, absl::string_view());
    backend_stream_left_ = h.total_bytes;
    return true;
  }
  if (h.length > kMaxBackendMessageBytes) {
    FailToAgent("08P01", "interlock: oversized message from the resource", "upstream_protocol_error",
                absl::StrCat(cpg::MessageName(h.type, false), " of ", h.length, " bytes"));
    return false;
  }
  if (upstream_.in().size() < h.total_bytes) return false;
  absl::string_view raw = upstream_.in().view().substr(0, h.total_bytes);
  std::optional<std::string> replaced;
  absl::string_view replaced_view;  // a masked row, in the masker's buffer
  if (result_masker_ != nullptr) {
    ResultMasker::Out m = result_masker_->OnBackend(h.type, raw);
    switch (m.verdict) {
      case ResultMasker::Verdict::kPass:
        break;
      case ResultMasker::Verdict::kReplace:
        replaced_view = m.view;
        // The original, for auditors only (sealed to their key), after the masked form.
        if (recorder_ && recorder_->keeps_originals()) pending_sealed_to_agent_.append(raw.data(), raw.size());
        break;
      case ResultMasker::Verdict::kDrop:
        // The answer to interlockd's own Describe: neither the agent nor the tracker saw
        // the question.
        upstream_.in().Consume(h.total_bytes);
        AuditMasking(result_masker_->TakeReports());
        return phase_ == Phase::kRelay;
      case ResultMasker::Verdict::kNeedCatalog: {
        // Read the tables' columns on interlockd's own connection, then retry this message.
        catalog_wait_ = true;
        std::shared_ptr<bool> alive = alive_;
        env_.masks->Resolve(ctx_.catalog_key, std::move(m.oids), [this, alive](absl::Status st) {
          if (!*alive) return;
          catalog_wait_ = false;
          if (!st.ok()) {
            Audit(v1::AUDIT_KIND_MASKING, "error", "catalog_unavailable", std::string(st.message()));
            FailToAgent("XX000", "interlock: cannot read the catalog to mask this result; the session is closed",
                        "mask_failed", std::string(st.message()));
          }
          Pump();
        });
        return false;
      }
      case ResultMasker::Verdict::kFatal:
        Audit(v1::AUDIT_KIND_MASKING, "error", "cannot_mask", m.error);
        FailToAgent("0A000", absl::StrCat("interlock: ", m.error, "; the session is closed"), "mask_failed", m.error);
        return false;
    }
  }
  if (guard_ != nullptr) {
    // A denied statement's error, caused by its replacement, becomes interlockd's own.
    std::optional<std::string> mine = guard_->OnBackend(h.type, raw.substr(cpg::kMessageHeaderBytes));
    if (mine.has_value()) replaced = std::move(mine);
  }
  absl::string_view out = replaced.has_value() ? absl::string_view(*replaced) : !replaced_view.empty() ? replaced_view : raw;
  absl::Status tracked = tracker_->OnBackend(h.type, out.substr(cpg::kMessageHeaderBytes));
  if (result_masker_ != nullptr) AuditMasking(result_masker_->TakeReports());
  if (!tracked.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "bad_backend_message", std::string(tracked.message()));
  }
  SendToAgent(out);
  upstream_.in().Consume(h.total_bytes);
  AuditStatements(tracker_->TakeCompleted());
  if (close_when_idle_ && h.type == cpg::backend::kReadyForQuery && tracker_->pending() == 0) {
    CloseForGrant();
    return false;
  }
  return phase_ == Phase::kRelay;
}


void PgSession::CloseAtBoundary(const std::string& sqlstate, const std::string& message, const std::string& outcome) {
  if (backend_stream_left_ > 0) {
    pending_fatal_ = PendingFatal{sqlstate, message, outcome};
    return;
  }
  FailToAgent(sqlstate, message, outcome, message);
}

void PgSession::StartGuard() {
  if (env_.policy == nullptr || *env_.policy == nullptr) return;
  GuardOptions g;
  g.resource = ctx_.resource_name;
  g.who = subject_;
  g.lexer_memo = &normalize_memo_;
  std::array<unsigned char, 8> nonce;
  if (RAND_bytes(nonce.data(), nonce.size()) != 1) {
    // No randomness: fall back to the session id's hash (still never sent to the agent).
    g.nonce = Sha256Hex(ctx_.session_id).substr(0, 16);
  } else {
    g.nonce = absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
  }
  guard_ = std::make_unique<StatementGuard>(std::move(g), env_.policy);
  if (PolicyHasMaskProfiles()) {
    CreateResultMasker();
    result_masker_->SetFloor(SessionFloor().masker);
  }
  // The session's settings as the server announced them at start-up.
  absl::string_view rest = held_parameter_status_;
  while (!rest.empty()) {
    auto frame = cpg::PeekFrame(rest, 1 << 20);
    if (!frame.ok() || !frame->has_value()) break;
    (void)guard_->OnBackend((*frame)->type, (*frame)->body);
    rest.remove_prefix((*frame)->total_bytes);
  }
}

void PgSession::AuditDecision(const v1::PolicyDecision& decision, const std::string& outcome) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_POLICY_DECISION);
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource_name);
  *ev.mutable_original_destination() = ctx_.original_destination;
  ev.set_protocol("postgres");
  ev.set_outcome(outcome);
  ev.set_reason(decision.rule_id().empty() ? decision.source() : decision.rule_id());
  ev.set_detail(decision.reason());
  *ev.mutable_decision() = decision;
  (void)env_.audit->Emit(std::move(ev));
}

}  // namespace interlock::proxy::pg
