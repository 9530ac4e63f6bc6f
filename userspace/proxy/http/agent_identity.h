// Agent identity for HTTP resources (HttpResource.token_issuers,
// require_agent_token, identity_headers): which token speaks for the agent on
// each request, and the identity headers interlockd adds to what it forwards.
//
// Per request, before the policy judges it, AgentTokens::ForRequest picks the
// token:
//   1. the agent's own `Authorization: Bearer <jwt>` when the resource has
//   token_issuers:
//      verified (signature, iss, aud, exp, binding) on every request — the last
//      verified token is remembered by its SHA-256 until it expires, so a
//      keep-alive agent pays one verification per token, not per request;
//   2. else the token bound to the agent's enrollment (token_file), verified
//   once per
//      session and again when it expires (a rotated file brings the new one);
//   3. else none: the workload alone.
// An agent Authorization that is not a valid token of the issuers (another
// scheme, two of them, expired, unknown issuer, ...) is never the agent's
// identity: with require_agent_token the request is refused (401
// token_invalid), otherwise it is removed like every agent credential and
// reported (agent_token_invalid), and the bound token, if any, speaks instead.
// With require_agent_token and no token at all: 401 token_required. The agent's
// token is never forwarded: the caller removes Authorization as always.
//
// Identity headers: every Interlock-* field the agent sent is removed
// (WithoutIdentityHeaders) whether or not identity_headers is set — they are
// interlockd's to write — and with identity_headers IdentityHeaders builds
// Interlock-Workload, Interlock-Subject (with a verified token) and
// Interlock-Assertion (a 60 s ES256 JWT, auth/jwt/identity_assertion.h).
//
//   AgentTokens tokens(http, verifier, bound_token, clock);
//   TokenDecision t = tokens.ForRequest(req.fields, context);
//   if (t.refused) Answer(401, ..., t.reason, ...);
//   ApplyToken(t.claims, &subject_, &identity);
//   fields = WithoutIdentityHeaders(fields, &removed);
//   INTERLOCK_ASSIGN_OR_RETURN(auto extra, IdentityHeaders(key, in));
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/identity.pb.h"
#include "userspace/proxy/core/token_identity.h"
#include "userspace/auth/jwt/assertion_key.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/codec/http/syntax.h"
#include "userspace/common/clock.h"
#include "userspace/config/config.h"
#include "userspace/policy/evaluator.h"

namespace interlock::proxy::http {

// interlockd's header names (and the lowercase prefix of every name it owns).
inline constexpr char kIdentityHeaderPrefix[] = "interlock-";
inline constexpr char kWorkloadHeader[] = "Interlock-Workload";
inline constexpr char kSubjectHeader[] = "Interlock-Subject";
inline constexpr char kAssertionHeader[] = "Interlock-Assertion";
// How long an assertion is valid (exp - iat).
inline constexpr absl::Duration kAssertionLifetime = absl::Seconds(60);

// What speaks for the agent on one request.
struct TokenDecision {
  enum class Source { kNone, kAgent, kBound };
  Source source = Source::kNone;
  // The verified token's claims (source kAgent or kBound); owned by the
  // AgentTokens, valid until its next ForRequest.
  const auth::TokenClaims* claims = nullptr;
  // require_agent_token and no valid token: answer 401 with `reason`
  // ("token_required", "token_invalid") and `detail` (never the token).
  bool refused = false;
  std::string reason;
  std::string detail;
  // Audit events the caller writes (AUDIT_KIND_AUTH), in order: each {outcome,
  // reason, detail}. A token accepted for the first time in the session
  // ("allowed", "token" or "bound_token"), an agent Authorization that is not a
  // valid token ("denied", "agent_token_invalid"), a bound token that does not
  // verify ("denied", its reason), no token where one is required ("denied",
  // "token_required").
  struct Event {
    std::string outcome;
    std::string reason;
    std::string detail;
  };
  std::vector<Event> events;
};

// One session's token state. Not thread-safe (one event loop).
class AgentTokens {
 public:
  using BoundTokenFn = std::function<absl::StatusOr<std::optional<std::string>>()>;
  // `verifier` null: the resource takes no agent tokens (no token_issuers):
  // every request is kNone and Authorization is not examined. `clock`,
  // `verifier` outlive this.
  AgentTokens(const config::HttpConfig& http, const auth::TokenVerifier* verifier, BoundTokenFn bound_token,
              const Clock* clock);

  TokenDecision ForRequest(const std::vector<codec::http::HeaderField>& fields, const auth::TokenContext& context);

 private:
  const config::HttpConfig& http_;
  const auth::TokenVerifier* verifier_;
  BoundTokenFn bound_token_;
  const Clock* clock_;
  // The last agent token that verified (by SHA-256) and its claims.
  std::string agent_sha256_;
  std::optional<auth::TokenClaims> agent_claims_;
  // The bound token's claims while valid; the failure already reported (not
  // repeated per request) and when to look again.
  std::optional<auth::TokenClaims> bound_claims_;
  std::string bound_failure_;
  absl::Time bound_retry_at_ = absl::InfinitePast();
  // Tokens (by SHA-256) already reported as accepted in this session.
  std::vector<std::string> announced_;
};


// `fields` minus every Interlock-* field (names compared case-insensitively);
// the removed names (lowercase) are appended to `removed`.
std::vector<codec::http::HeaderField> WithoutIdentityHeaders(const std::vector<codec::http::HeaderField>& fields,
                                                             std::vector<std::string>* removed);

// What IdentityHeaders signs.
struct IdentityInput {
  std::string resource;
  std::string session_id;
  const v1::WorkloadIdentity* identity = nullptr;
  const auth::TokenClaims* claims = nullptr;  // null: no verified token
  absl::Time now;
  std::string jti;  // unique per assertion: NewAssertionId()
};

struct OwnedField {
  std::string name;
  std::string value;
};

// Interlock-Workload, Interlock-Subject (only with claims),
// Interlock-Assertion. Values are field-safe: a byte a field value cannot carry
// (CR, LF, NUL, other controls) in the workload or sub is refused
// (INVALID_ARGUMENT) rather than forwarded. Errors of AssertionKey::Sign.
absl::StatusOr<std::vector<OwnedField>> IdentityHeaders(const auth::jwt::AssertionKey& key, const IdentityInput& in);

// 16 random bytes (OpenSSL's CSPRNG) as 32 hex digits.
std::string NewAssertionId();

}  // namespace interlock::proxy::http
