// HttpSession, agent identity: the token that speaks for the agent on each
// request and the identity headers added to what is forwarded (agent_identity.h
// says the rules).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/proxy/http/agent_identity.h"
#include "userspace/proxy/http/http_session.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

bool HttpSession::IdentifyAgent(const chttp::Request& req) {
  const auth::TokenContext context{ctx_.identity.workload(), ctx_.identity.cgroup_id(), ctx_.identity.cgroup_path()};
  TokenDecision t = tokens_.ForRequest(req.fields, context);
  token_ = t.claims;
  // The policy's subject, and the identity every event of this exchange carries.
  ApplyToken(token_, &subject_, &ctx_.identity);
  for (const TokenDecision::Event& e : t.events) Audit(v1::AUDIT_KIND_AUTH, e.outcome, e.reason, e.detail);
  if (!t.refused) return true;
  ConsumeHead(req.head_bytes);
  Answer(401, "Unauthorized", t.detail, t.reason, "denied",
         /*close=*/req.framing.body.kind != chttp::BodyKind::kNone);
  return false;
}

bool HttpSession::RenewAssertion() {
  if (!http_.identity_headers || ctx_.assertion_key == nullptr) return true;
  absl::StatusOr<std::vector<OwnedField>> fresh = IdentityHeaders(*ctx_.assertion_key, {.resource = ctx_.resource->name,
                                                                                        .session_id = ctx_.session_id,
                                                                                        .identity = &ctx_.identity,
                                                                                        .claims = token_,
                                                                                        .now = env_.clock->Now(),
                                                                                        .jti = NewAssertionId()});
  const bool edited = fresh.ok() && EditForwardHead([&](const std::vector<chttp::HeaderField>& fields) {
                        std::vector<chttp::HeaderField> out = fields;
                        for (chttp::HeaderField& f : out) {
                          if (absl::EqualsIgnoreCase(f.name, kAssertionHeader))
                            f.value = fresh->back().value;  // the assertion is last
                        }
                        return out;
                      });
  if (edited) return true;
  Audit(v1::AUDIT_KIND_AUTH, "error", "identity_unavailable",
        fresh.ok() ? "the held request's head could not be rewritten" : std::string(fresh.status().message()));
  Answer(502, "Identity assertion unavailable", "interlockd could not sign the agent's identity for this resource",
         "identity_unavailable", "error", /*close=*/!ex_->request_done);
  return false;
}

bool HttpSession::SetIdentityHeaders(const chttp::Request& req, std::vector<chttp::HeaderField>* fields,
                                     std::vector<OwnedField>* storage, std::vector<std::string>* removed) {
  // Interlock-* is interlockd's: whatever the agent sent under it goes, always.
  *fields = WithoutIdentityHeaders(*fields, removed);
  if (!http_.identity_headers) return true;
  absl::StatusOr<std::vector<OwnedField>> added = absl::FailedPreconditionError("no assertion key loaded");
  if (ctx_.assertion_key != nullptr) {
    added = IdentityHeaders(*ctx_.assertion_key, {.resource = ctx_.resource->name,
                                                  .session_id = ctx_.session_id,
                                                  .identity = &ctx_.identity,
                                                  .claims = token_,
                                                  .now = env_.clock->Now(),
                                                  .jti = NewAssertionId()});
  }
  if (!added.ok()) {
    ConsumeHead(req.head_bytes);
    Audit(v1::AUDIT_KIND_AUTH, "error", "identity_unavailable", std::string(added.status().message()));
    Answer(502, "Identity assertion unavailable", "interlockd could not sign the agent's identity for this resource",
           "identity_unavailable", "error",
           /*close=*/req.framing.body.kind != chttp::BodyKind::kNone);
    return false;
  }
  *storage = *std::move(added);
  for (const OwnedField& f : *storage) fields->push_back({f.name, f.value});
  return true;
}

}  // namespace interlock::proxy::http
