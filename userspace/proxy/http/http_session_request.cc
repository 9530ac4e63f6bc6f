// HttpSession, the request side: the head parsed and judged, the decision acted on (answered,
// held for approval, or forwarded), bodies read whole when a rule judges their fields or a
// hold keeps them, and the masks an answer must pass. (Forwarding and the response:
// http_session_response.cc; life cycle, I/O and evidence: http_session.cc.)
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/codec/http/head.h"
#include "userspace/codec/http/serialize.h"
#include "userspace/codec/http/target.h"
#include "userspace/codec/json/extract.h"
#include "userspace/common/sha256.h"
#include "userspace/proxy/core/mask_floor.h"
#include "userspace/proxy/http/credential.h"
#include "userspace/proxy/http/http_session.h"
#include "userspace/proxy/http/problem.h"
#include "userspace/proxy/http/request_facts.h"
#include "userspace/proxy/http/response_masking.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

namespace {

absl::string_view VersionText(chttp::Version v) { return v == chttp::Version::kHttp10 ? "HTTP/1.0" : "HTTP/1.1"; }

// The request fields minus those named (lowercase) in `names`.
std::vector<chttp::HeaderField> WithoutNames(const std::vector<chttp::HeaderField>& fields,
                                             const std::vector<std::string>& names, std::vector<std::string>* removed) {
  std::vector<chttp::HeaderField> out;
  out.reserve(fields.size());
  for (const chttp::HeaderField& f : fields) {
    bool drop = false;
    for (const std::string& n : names) drop |= absl::EqualsIgnoreCase(f.name, n);
    if (drop) {
      if (removed != nullptr) removed->push_back(absl::AsciiStrToLower(f.name));
    } else {
      out.push_back(f);
    }
  }
  return out;
}

}  // namespace

bool HttpSession::Advance() {
  switch (phase_) {
    case Phase::kRequestHead: return OnRequestHead();
    case Phase::kReadBody: return ReadHeldBody();
    case Phase::kExchange: {
      bool progress = false;
      if (!upstream_connecting_ && !upstream_tls_pending_ && upstream_.attached()) {
        progress |= ForwardRequestBody();
        if (phase_ != Phase::kExchange) return true;
        progress |= RelayResponse();
      }
      return progress;
    }
    default: return false;
  }
}

bool HttpSession::OnRequestHead() {
  if (agent_.in().empty()) return false;
  auto head = chttp::PeekRequest(agent_.in().view());
  if (!head.ok()) {
    const bool too_big = absl::IsResourceExhausted(head.status());
    const bool unsupported = absl::IsUnimplemented(head.status());
    ex_.emplace();
    ex_->started = env_.clock->Monotonic();
    const int status = too_big ? 431 : unsupported ? 501 : 400;
    // Nothing after a malformed head is read as a request: recorded as unparsed (sealed).
    RecordUnparsed(agent_.in().view());
    agent_.in().Consume(agent_.in().size());
    const std::string reason = too_big ? "head_too_large" : unsupported ? "unsupported" : "bad_request";
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", reason, std::string(head.status().message()));
    Answer(status, too_big ? "Request head too large" : unsupported ? "Not supported" : "Malformed request",
           std::string(head.status().message()), reason, "refused", /*close=*/true);
    return true;
  }
  if (!head->has_value()) return false;
  const chttp::Request& req = **head;
  RecordRequestHead(req);
  ex_.emplace();
  Exchange& ex = *ex_;
  ex.started = env_.clock->Monotonic();
  ex.method = std::string(req.method);
  ex.version = req.version;
  ex.request_body = req.framing.body;
  ex.expect_continue = req.framing.expect_continue;
  ex.agent_wants_close = !req.framing.persistent;
  ex.audit.set_method(ex.method);
  ex.audit.set_scheme(ctx_.agent_tls != nullptr ? "https" : "http");
  ex.audit.set_request_content_type(std::string(chttp::FindField(req.fields, "content-type").value_or("").substr(0, 128)));
  RequestRefusal refusal;
  std::optional<JudgedRequest> judged = JudgeRequest(req, sni_, http_.elide_query_params, &refusal);
  if (!judged.has_value()) {
    ex.audit.set_target(chttp::ElideQueryParams(req.target));
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", refusal.reason, refusal.detail);
    Answer(refusal.status, "Request refused", refusal.detail, refusal.reason, "refused", /*close=*/true);
    return true;
  }
  ex.facts = std::move(judged->facts);
  ex.audit.set_target(judged->audit_target);
  ex.audit.set_host(ex.facts.host);
  ex.audit.set_path(ex.facts.path);
  if (!IdentifyAgent(req)) return true;

  // The head as it will be forwarded: hop-by-hop fields, Expect (interlockd answers 100
  // itself) and every credential the agent sent removed, the resource's injected, the body
  // re-framed by interlockd.
  std::vector<std::string> drop = AgentCredentialFields(http_.credential);
  drop.push_back("expect");
  std::vector<std::string> removed;
  std::vector<chttp::HeaderField> fields = WithoutNames(chttp::RemoveHopByHop(req.fields), drop, &removed);
  std::vector<OwnedField> identity_fields;  // what `fields` views for the identity headers
  if (!SetIdentityHeaders(req, &fields, &identity_fields, &removed)) return true;
  for (const std::string& r : removed) {
    if (r != "expect") ex.audit.add_agent_credentials_removed(r);
  }
  auto injected = ctx_.credential != nullptr ? ctx_.credential->Field() : CredentialField(http_.credential);
  if (!injected.ok()) {
    ConsumeHead(req.head_bytes);
    Audit(v1::AUDIT_KIND_AUTH, "error", "credential_unavailable", std::string(injected.status().message()));
    Answer(502, "Upstream credential unavailable", "interlockd could not read the resource's credential",
           "credential_unavailable", "error", /*close=*/req.framing.body.kind != chttp::BodyKind::kNone);
    return true;
  }
  if (injected->has_value()) {
    fields.push_back({(*injected)->name, (*injected)->value.reveal()});
    ex.injects_credential = true;
  }
  std::string length_storage;
  chttp::BodyFraming forwarded = req.framing.body;
  if (forwarded.kind == chttp::BodyKind::kChunked) forwarded = {chttp::BodyKind::kChunked, 0};
  fields = chttp::WithBodyFraming(fields, forwarded, &length_storage);
  // Forwarded as HTTP/1.1 always: interlockd keeps the upstream connection alive itself.
  auto forward = chttp::SerializeRequestHead(req.method, req.target, chttp::Version::kHttp11, fields);
  if (injected->has_value()) {
    // The secret's only copy outside its Secret is in `forward`, wiped with the exchange.
    injected->reset();
  }
  if (!forward.ok()) {
    ConsumeHead(req.head_bytes);
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_request", std::string(forward.status().message()));
    Answer(400, "Malformed request", std::string(forward.status().message()), "bad_request", "refused", true);
    return true;
  }
  ex.forward_head = *std::move(forward);
  ConsumeHead(req.head_bytes);
  if (ex.request_body.kind == chttp::BodyKind::kLength) ex.request_left = ex.request_body.length;
  if (ex.request_body.kind == chttp::BodyKind::kChunked) ex.request_chunks.emplace();
  ex.request_done = ex.request_body.kind == chttp::BodyKind::kNone;
  Decide();
  return true;
}

bool HttpSession::EditForwardHead(
    const std::function<std::vector<chttp::HeaderField>(const std::vector<chttp::HeaderField>&)>& edit) {
  Exchange& ex = *ex_;
  auto head = chttp::PeekRequest(ex.forward_head);
  if (!head.ok() || !head->has_value()) return false;
  auto edited = chttp::SerializeRequestHead((*head)->method, (*head)->target, (*head)->version, edit((*head)->fields));
  if (!edited.ok()) return false;
  std::fill(ex.forward_head.begin(), ex.forward_head.end(), '\0');  // it may hold the credential
  ex.forward_head = *std::move(edited);
  return true;
}

void HttpSession::Decide() {
  Exchange& ex = *ex_;
  policy::Decision d;
  const std::shared_ptr<const policy::PolicyEvaluator>* p = env_.policy;
  if (p != nullptr && *p != nullptr) {
    // A rule judges body fields: the body is read whole first (bounded), then judged.
    if (ex.request_body.kind != chttp::BodyKind::kNone && !ex.body_judged &&
        !(*p)->JsonPointersFor(subject_, ctx_.resource->name).empty()) {
      if (ex.request_body.kind == chttp::BodyKind::kLength && ex.request_body.length > http_.max_judged_body_bytes) {
        RefuseLargeBody(/*for_hold=*/false);
        return;
      }
      if (ex.expect_continue && !ex.request_done) SendToAgent("HTTP/1.1 100 Continue\r\n\r\n");
      ex.expect_continue = false;
      ex.judge_after_body = true;
      phase_ = Phase::kReadBody;
      ex.held_body.clear();
      if (ex.request_done) JudgeBody();
      return;
    }
    d = (*p)->Evaluate(subject_, ctx_.resource->name, policy::Operation{&ex.facts});
  } else {
    d.action = v1::ACTION_ALLOW;
    d.source = "no_policy";
    d.reason = "no policy configured";
  }
  if (d.action != v1::ACTION_DENY) {
    // Whatever forwards passes the masks that apply: fail closed when one cannot be had.
    bool required = false;
    std::string names;
    ex.masker = MaskerForDecision(env_.policy, env_.masks, subject_, ctx_.resource->name, d, &required, &names);
    if (required && ex.masker == nullptr) {
      d.action = v1::ACTION_DENY;
      d.source = "mask_unavailable";
      d.mask_profile = names;
      d.reason = absl::StrCat("responses to this request must be masked (profile \"", names,
                              "\") and the profile is not available");
    } else if (ex.masker != nullptr) {
      d.mask_profile = ex.masker->name();
      std::string storage;
      if (!EditForwardHead([&](const std::vector<chttp::HeaderField>& fields) {
            return MaskableRequestFields(fields, &storage);
          })) {
        Answer(400, "Malformed request", "the request could not be made maskable", "bad_request", "refused", true);
        return;
      }
    }
  }
  ex.decision.set_action(std::string(policy::ActionName(d.action)));
  ex.decision.set_rule_id(d.rule_id);
  ex.decision.set_reason(d.reason);
  ex.decision.set_source(d.source);
  ex.decision.set_mask_profile(d.mask_profile);
  switch (d.action) {
    case v1::ACTION_ALLOW:
    case v1::ACTION_MASK:
      StartForwarding();
      return;
    case v1::ACTION_REVIEW:
      if (ex.body_judged) {  // read whole already
        StartHold(d);
        return;
      }
      if (ex.request_body.kind == chttp::BodyKind::kLength && ex.request_body.length > http_.max_judged_body_bytes) {
        RefuseLargeBody(/*for_hold=*/true);
        return;
      }
      if (ex.expect_continue && !ex.request_done) SendToAgent("HTTP/1.1 100 Continue\r\n\r\n");
      phase_ = Phase::kReadBody;
      ex.held_body.clear();
      if (ex.request_done) StartHold(d);
      else held_decision_ = d;
      return;
    default: {
      const bool body_unread = !ex.request_done;
      Answer(403, "Denied by policy", d.reason.empty() ? "denied by policy" : d.reason,
             d.source == "mask_unavailable" ? "mask_unavailable" : "policy", "denied", body_unread);
      return;
    }
  }
}

HttpSession::BodyPull HttpSession::PullRequestBody(const std::function<void(absl::string_view)>& sink,
                                                   const std::function<bool()>& more) {
  Exchange& ex = *ex_;
  BodyPull pulled = BodyPull::kNothing;
  while (!agent_.in().empty() && !ex.request_done && more()) {
    absl::string_view in = agent_.in().view();
    if (ex.request_body.kind == chttp::BodyKind::kLength) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(ex.request_left, in.size()));
      RecordRequestBody(in.substr(0, n), in.substr(0, n));
      sink(in.substr(0, n));
      agent_.in().Consume(n);
      ex.request_left -= n;
      ex.request_done = ex.request_left == 0;
    } else {
      auto piece = ex.request_chunks->Decode(in);
      if (!piece.ok()) {
        // Once forwarding started the upstream has part of the body: the connection cannot
        // be reused either way, and the agent is told.
        Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_chunked_body", std::string(piece.status().message()));
        Answer(400, "Malformed request body", std::string(piece.status().message()), "bad_chunked_body", "refused",
               true);
        return BodyPull::kFailed;
      }
      if (piece->consumed == 0) break;
      RecordRequestBody(in.substr(0, piece->consumed), piece->data);
      if (!piece->data.empty()) sink(piece->data);  // a view into the buffer: before Consume
      agent_.in().Consume(piece->consumed);
      ex.request_done = ex.request_chunks->done();
    }
    pulled = BodyPull::kProgress;
    if (ex.request_done) EndRecordedBody(/*complete=*/true);
  }
  return pulled;
}

bool HttpSession::ReadHeldBody() {
  Exchange& ex = *ex_;
  if (ex.request_done) return false;
  const uint64_t limit = http_.max_judged_body_bytes;
  BodyPull pulled = PullRequestBody([&](absl::string_view data) { ex.held_body.append(data.data(), data.size()); },
                                    [&] { return ex.held_body.size() <= limit; });
  if (pulled == BodyPull::kFailed) return true;
  if (ex.held_body.size() > limit) {
    RefuseLargeBody(/*for_hold=*/!ex.judge_after_body);
    return true;
  }
  if (ex.request_done && ex.judge_after_body) {
    JudgeBody();
  } else if (ex.request_done) {
    StartHold(*held_decision_);
  }
  return pulled == BodyPull::kProgress;
}

void HttpSession::ReframeHeldBody() {
  Exchange& ex = *ex_;
  // A body read whole is forwarded with a Content-Length (re-framed once, here): what was
  // judged, and what an approver saw, is byte for byte what runs.
  if (ex.request_body.kind == chttp::BodyKind::kChunked) {
    std::string storage;
    (void)EditForwardHead([&](const std::vector<chttp::HeaderField>& fields) {
      return chttp::WithBodyFraming(fields, {chttp::BodyKind::kLength, ex.held_body.size()}, &storage);
    });
  }
  ex.request_body = {chttp::BodyKind::kLength, ex.held_body.size()};
  ex.request_chunks.reset();
  ex.audit.set_request_body_bytes(ex.held_body.size());
}

void HttpSession::JudgeBody() {
  Exchange& ex = *ex_;
  ex.judge_after_body = false;
  ex.body_judged = true;
  ReframeHeldBody();
  const std::shared_ptr<const policy::PolicyEvaluator>* p = env_.policy;
  std::vector<std::string> pointers;
  if (p != nullptr && *p != nullptr) pointers = (*p)->JsonPointersFor(subject_, ctx_.resource->name);
  auto fields = codec::json::ExtractJsonFields(ex.held_body, pointers);
  if (fields.ok()) {
    ex.facts.body = policy::HttpRequestFacts::Body::kJudged;
    ex.facts.json_fields = *std::move(fields);
  } else {
    // Not one strict JSON document (or duplicate keys): body conditions fail closed.
    ex.facts.body = policy::HttpRequestFacts::Body::kUnjudgable;
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "noted", "body_unjudgable", std::string(fields.status().message()));
  }
  Decide();
}

void HttpSession::StartHold(const policy::Decision& d) {
  Exchange& ex = *ex_;
  held_decision_.reset();
  ReframeHeldBody();
  if (env_.approvals == nullptr) {
    Answer(403, "Approval unavailable", "the request needs approval, and no approval service is configured",
           "review_unavailable", "denied", false);
    return;
  }
  v1::ApprovalRequest r;
  r.set_session_id(ctx_.session_id);
  *r.mutable_requester() = ctx_.identity;
  r.set_resource(ctx_.resource->name);
  r.set_protocol("http");
  // What the approver reads: the request line with secrets elided, the headers the agent
  // sent (credentials are never among them: removed above) and the body, capped.
  std::string shown = absl::StrCat(ex.method, " ", ex.audit.target(), " ", VersionText(ex.version), "\nHost: ",
                                   ex.facts.host, "\n");
  for (const auto& [name, value] : ex.facts.headers) {
    if (name == "host" || name == "authorization" || name == "proxy-authorization" || name == "cookie") continue;
    absl::StrAppend(&shown, name, ": ", value.substr(0, 256), "\n");
  }
  if (!ex.held_body.empty()) {
    absl::StrAppend(&shown, "\n", ex.held_body.substr(0, 4096), ex.held_body.size() > 4096 ? "\n[...]" : "");
  }
  r.set_statement(shown);
  r.set_audit_statement(absl::StrCat(ex.method, " ", ex.facts.host, ex.audit.target()));
  r.set_statement_sha256(Sha256Hex(absl::StrCat(ex.forward_head, ex.held_body)));
  r.set_fingerprint(absl::StrCat("http:", ex.method, " ", ex.facts.host, ex.facts.path));
  r.set_rule_id(d.rule_id);
  r.set_reason(d.reason);
  r.set_classification(absl::StrCat(ex.method, " ", ex.facts.host, ex.facts.path));
  std::weak_ptr<bool> alive = alive_;
  auto submitted = env_.approvals->Submit(std::move(r), d.review_timeout, [this, alive](const v1::ApprovalRequest& done) {
    if (alive.expired() || !*alive.lock()) return;
    OnHoldResolved(done);
  });
  if (!submitted.ok()) {
    Answer(403, "Approval unavailable", "the request needs approval, and the approval request could not be stored",
           "review_unavailable", "denied", false);
    return;
  }
  ex.approval_id = submitted->id();
  ex.decision.set_approval_id(submitted->id());
  if (submitted->state() == v1::APPROVAL_STATE_APPROVED) {
    ex.decision.set_source("approval_window");
    StartForwarding();
    return;
  }
  phase_ = Phase::kHeld;
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_POLICY_DECISION);
  ev.set_outcome("held");
  *ev.mutable_decision() = ex.decision;
  *ev.mutable_http() = ex.audit;
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource->name);
  ev.set_protocol("http");
  (void)env_.audit->Emit(std::move(ev));
}

void HttpSession::OnHoldResolved(const v1::ApprovalRequest& request) {
  if (phase_ != Phase::kHeld || !ex_.has_value() || ex_->approval_id != request.id()) return;
  if (request.state() == v1::APPROVAL_STATE_APPROVED) {
    ex_->decision.set_source("approved");
    if (RenewAssertion()) StartForwarding();
  } else {
    const bool timeout = request.state() == v1::APPROVAL_STATE_TIMED_OUT;
    ex_->decision.set_source(timeout ? "review_timeout" : "review_denied");
    Answer(403, timeout ? "Approval timed out" : "Denied by approver",
           timeout ? "no approver decided in time"
                   : (request.decision_reason().empty() ? "an approver denied the request" : request.decision_reason()),
           timeout ? "review_timeout" : "review_denied", "denied", false);
  }
  Pump();
}

void HttpSession::RefuseLargeBody(bool for_hold) {
  Answer(413, for_hold ? "Request too large to hold" : "Request too large to judge",
         absl::StrCat(for_hold ? "the request needs approval and its body exceeds "
                               : "a policy rule judges this request's body, which exceeds ",
                      http_.max_judged_body_bytes, " bytes (max_judged_body_bytes)"),
         "body_too_large", "denied", /*close=*/true);
}

}  // namespace interlock::proxy::http
