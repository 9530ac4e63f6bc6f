// PgSession, part: statements held for approval (submit, notice, release byte-exact,
// deny, withdrawal by CancelRequest) and just-in-time grants.
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

bool PgSession::CheckGrant() {
  if (env_.policy == nullptr || *env_.policy == nullptr) return true;
  const v1::ResourcePolicy& rp = (*env_.policy)->ForResource(ctx_.resource_name);
  if (!rp.require_grant()) return true;
  std::optional<v1::Grant> grant;
  if (env_.grants != nullptr) grant = env_.grants->ActiveGrant(ctx_.identity.workload(), ctx_.resource_name);
  if (!grant.has_value()) {
    Audit(v1::AUDIT_KIND_GRANT, "denied", "no_grant",
          absl::StrCat("resource ", ctx_.resource_name, " requires a just-in-time grant for workload ",
                       ctx_.identity.workload()));
    std::string who = ctx_.identity.workload().empty() ? "<workload>" : ctx_.identity.workload();
    FailToAgent("42501",
                absl::StrCat("interlock: resource \"", ctx_.resource_name,
                             "\" requires a just-in-time grant; an operator can run: interlock grant --workload ",
                             who, " --resource ", ctx_.resource_name, " --for 15m --reason '...'"),
                "no_grant", "no active grant");
    return false;
  }
  grant_id_ = grant->id();
  Audit(v1::AUDIT_KIND_GRANT, "allowed", "grant",
        absl::StrCat("session under grant ", grant->id(), " (", grant->reason(), ")"));
  return true;
}

void PgSession::StartHold(char type, std::string raw, GuardVerdict verdict) {
  held_ = Held{type, std::move(raw), "", verdict.audit, std::move(verdict.shapes)};
  const policy::Decision& d = *verdict.decision;
  if (env_.approvals == nullptr) {
    AuditDecision(verdict.audit, "denied");
    std::string repl = guard_->DenyHeld(type, "interlock: statement needs approval, and no approval service is configured",
                                        absl::StrCat("Policy rule \"", d.rule_id, "\"."));
    held_.reset();
    SendFrontend(repl);
    return;
  }
  v1::ApprovalRequest r;
  r.set_session_id(ctx_.session_id);
  *r.mutable_requester() = ctx_.identity;
  r.set_token_subject(subject_.sub);
  r.set_resource(ctx_.resource_name);
  r.set_database(upstream_database_);
  r.set_db_user(upstream_user_);
  r.set_protocol("postgres");
  r.set_statement(verdict.review.statement);
  r.set_audit_statement(ctx_.postgres->audit_literals ? verdict.review.statement
                                                      : sql::NormalizeLiterals(verdict.review.statement));
  r.set_statement_sha256(verdict.review.statement_sha256);
  r.set_parameters_sha256(verdict.review.parameters_sha256);
  {
    // What the approver sees of the bound values: masked like results (the floor's
    // detectors), capped; never in events.
    Floor floor = SessionFloor();
    for (size_t i = 0; i < verdict.review.params.size(); ++i) {
      const auto& p = verdict.review.params[i];
      int16_t format = verdict.review.param_formats.empty()     ? 0
                       : verdict.review.param_formats.size() == 1 ? verdict.review.param_formats[0]
                                                                  : verdict.review.param_formats[i];
      std::string shown = !p.has_value() ? "NULL"
                          : format == 1  ? absl::StrCat("\\x", absl::BytesToHexString(*p))
                                         : *p;
      if (p.has_value() && floor.masker != nullptr) {
        std::string masked;
        if (floor.masker->MaskText(shown, &masked, nullptr)) shown = std::move(masked);
        if (format == 1 && floor.masker->has_column_rules()) shown = "[binary value withheld]";
      }
      if (shown.size() > 256) shown = absl::StrCat(shown.substr(0, 256), "...");
      r.add_parameters(std::move(shown));
    }
  }
  r.set_fingerprint(verdict.review.fingerprint);
  r.set_rule_id(d.rule_id);
  r.set_reason(d.reason);
  r.set_classification(absl::StrJoin(verdict.audit.statements(), "; "));
  auto submitted = env_.approvals->Submit(std::move(r), d.review_timeout,
                                          [this](const v1::ApprovalRequest& done) { OnHoldResolved(done); });
  if (!submitted.ok()) {
    AuditDecision(verdict.audit, "denied");
    std::string repl = guard_->DenyHeld(
        type, "interlock: statement needs approval, and the approval request could not be stored",
        std::string(submitted.status().message()));
    held_.reset();
    SendFrontend(repl);
    return;
  }
  held_->approval_id = submitted->id();
  held_->audit.set_approval_id(submitted->id());
  if (submitted->state() == v1::APPROVAL_STATE_APPROVED) {
    ReleaseHeld("approval_window", *submitted);
    return;
  }
  AuditDecision(held_->audit, "held");
  // Tell whoever waits (a human at psql, an LLM reading notices) why, at once.
  cpg::NoticeResponse notice;
  notice.fields = {{cpg::field::kSeverity, "NOTICE"},
                   {cpg::field::kSeverityNonLocalized, "NOTICE"},
                   {cpg::field::kSqlState, "00000"},
                   {cpg::field::kMessage,
                    absl::StrCat("interlock: statement held for approval ", submitted->id(), " (rule ",
                                 d.rule_id.empty() ? "resource default" : d.rule_id, "); waiting up to ",
                                 absl::ToInt64Seconds(d.review_timeout), " s")},
                   {cpg::field::kHint, "An approver decides with `interlock approve` or `interlock deny`; "
                                       "cancel the statement to withdraw it."}};
  SendNoticeToAgent(cpg::Encode(notice));
}

void PgSession::SendNoticeToAgent(const std::string& bytes) {
  // Never inside a message being streamed through: after it.
  if (backend_stream_left_ > 0) {
    pending_notice_ += bytes;
  } else {
    SendToAgent(bytes);
  }
}

Withdrawal PgSession::WithdrawHold() {
  if (phase_ != Phase::kRelay || !held_.has_value() || held_->approval_id.empty()) return Withdrawal::kNothingHeld;
  // Before the refusal below goes upstream: did anything sent earlier still await the server?
  const Withdrawal w = guard_->EarlierWorkInFlight() ? Withdrawal::kBusy : Withdrawal::kIdle;
  Held h = std::move(*held_);
  held_.reset();
  if (env_.approvals != nullptr) {
    env_.approvals->Abandon(h.approval_id, "withdrawn: the agent cancelled the statement before a decision");
  }
  h.audit.set_source("withdrawn_by_cancel");
  AuditDecision(h.audit, "denied");
  SendFrontend(guard_->DenyHeld(h.type, "canceling statement due to user request",
                                absl::StrCat("interlock: the statement held for approval ", h.approval_id,
                                             " was withdrawn before a decision; it was not run."),
                                "57014"));
  Pump();
  return w;
}

void PgSession::ReleaseHeld(const std::string& source, const v1::ApprovalRequest& request) {
  Held h = std::move(*held_);
  held_.reset();
  h.audit.set_source(source);
  h.audit.set_approval_id(request.id());
  // Approval lets the statement run, not its values out: the result passes the floor.
  Floor floor = SessionFloor();
  if (floor.applies && (floor.masker == nullptr || result_masker_ == nullptr)) {
    h.audit.set_source("mask_unavailable");
    AuditDecision(h.audit, "denied");
    SendFrontend(guard_->DenyHeld(
        h.type, absl::StrCat("interlock: mask profile \"", floor.names, "\" is not available; the statement was not run"),
        ""));
    return;
  }
  AuditDecision(h.audit, "released");
  if (result_masker_ != nullptr) result_masker_->SetFloor(floor.masker);
  SendFrontend(h.raw, floor.masker, "", std::move(h.shapes));
}

void PgSession::OnHoldResolved(const v1::ApprovalRequest& request) {
  if (phase_ == Phase::kDone || !held_.has_value() || held_->approval_id != request.id()) return;
  if (request.state() == v1::APPROVAL_STATE_APPROVED) {
    ReleaseHeld("approved", request);
  } else {
    Held h = std::move(*held_);
    held_.reset();
    bool timeout = request.state() == v1::APPROVAL_STATE_TIMED_OUT;
    h.audit.set_source(timeout ? "review_timeout" : "review_denied");
    AuditDecision(h.audit, "denied");
    std::string message =
        timeout ? absl::StrCat("interlock: approval ", request.id(), " timed out; the statement was not run")
                : absl::StrCat("interlock: approval ", request.id(), " denied: ",
                               request.decision_reason().empty() ? "no reason given" : request.decision_reason());
    std::string detail = absl::StrCat("Policy rule \"", request.rule_id(), "\"",
                                      request.approver().user().empty() ? "" : absl::StrCat("; decided by ", request.approver().user()),
                                      ".");
    SendFrontend(guard_->DenyHeld(h.type, message, detail));
  }
  Pump();
}

const std::string& PgSession::held_approval() const {
  static const std::string kNone;
  return held_.has_value() ? held_->approval_id : kNone;
}

void PgSession::EndForGrant(const std::string& detail, bool after_statement) {
  if (phase_ == Phase::kDone || phase_ == Phase::kClosing) return;
  grant_end_detail_ = detail;
  if (after_statement && phase_ == Phase::kRelay && tracker_ != nullptr && tracker_->pending() > 0 &&
      !held_.has_value()) {
    close_when_idle_ = true;  // at the next ReadyForQuery with nothing in flight
    return;
  }
  CloseForGrant();
  Pump();
}

void PgSession::CloseForGrant() {
  Audit(v1::AUDIT_KIND_GRANT, "closed", "grant_ended", grant_end_detail_);
  CloseAtBoundary("57P01", absl::StrCat("interlock: terminating connection: ", grant_end_detail_), "grant_ended");
}

}  // namespace interlock::proxy::pg
