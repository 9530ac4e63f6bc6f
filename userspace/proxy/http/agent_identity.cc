#include "userspace/proxy/http/agent_identity.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/auth/jwt/identity_assertion.h"
#include "userspace/common/file_util.h"
#include "userspace/common/sha256.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

namespace {

// Distinct tokens remembered as announced per session (an agent cycling through
// more is announced again: more events, never fewer).
constexpr size_t kMaxAnnounced = 32;

// The reason code a verifier's message starts with ("expired: ..."), as
// pg_session_login.
std::string ReasonOf(absl::string_view message) {
  std::string reason(message.substr(0, message.find(':')));
  return reason.empty() || reason.find(' ') != std::string::npos ? "bad_token" : reason;
}

// A field value interlockd writes: visible ASCII, space, tab and obs-text (RFC
// 9110 §5.5).
bool FieldSafe(absl::string_view v) {
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::string Described(const auth::TokenClaims& c) {
  return absl::StrCat("token of ", c.issuer.empty() ? "" : absl::StrCat(c.issuer, " "), "subject ", c.subject,
                      " (sha256 ", c.token_sha256.substr(0, 12), "...)");
}

}  // namespace

AgentTokens::AgentTokens(const config::HttpConfig& http, const auth::TokenVerifier* verifier, BoundTokenFn bound_token,
                         const Clock* clock)
    : http_(http), verifier_(verifier), bound_token_(std::move(bound_token)), clock_(clock) {}

TokenDecision AgentTokens::ForRequest(const std::vector<chttp::HeaderField>& fields,
                                      const auth::TokenContext& context) {
  TokenDecision d;
  if (verifier_ == nullptr || http_.token_issuers.empty()) return d;
  const absl::Time now = clock_->Now();
  auto announce = [&](const auth::TokenClaims& c, const char* reason, absl::string_view how) {
    if (std::find(announced_.begin(), announced_.end(), c.token_sha256) != announced_.end()) return;
    if (announced_.size() >= kMaxAnnounced) announced_.erase(announced_.begin());
    announced_.push_back(c.token_sha256);
    d.events.push_back({"allowed", reason, absl::StrCat(Described(c), how)});
  };

  // 1. The agent's own Authorization.
  std::vector<absl::string_view> authorizations;
  for (const chttp::HeaderField& f : fields) {
    if (absl::EqualsIgnoreCase(f.name, "authorization")) authorizations.push_back(f.value);
  }
  if (!authorizations.empty()) {
    std::string why;
    absl::string_view token;
    if (authorizations.size() > 1) {
      why = absl::StrCat(authorizations.size(), " Authorization fields");
    } else {
      absl::string_view v = absl::StripAsciiWhitespace(authorizations[0]);
      const size_t space = v.find(' ');
      if (space == absl::string_view::npos || !absl::EqualsIgnoreCase(v.substr(0, space), "bearer")) {
        why = absl::StrCat("the Authorization field is not a Bearer token (scheme \"",
                           absl::CEscape(v.substr(0, std::min<size_t>(space, 16))), "\")");
      } else {
        token = absl::StripLeadingAsciiWhitespace(v.substr(space + 1));
      }
    }
    if (why.empty()) {
      const std::string sha = Sha256Hex(token);
      if (agent_claims_.has_value() && sha == agent_sha256_ && now < agent_claims_->expires_at) {
        d.source = TokenDecision::Source::kAgent;
        d.claims = &*agent_claims_;
        return d;
      }
      absl::StatusOr<auth::TokenClaims> claims = verifier_->Verify(token, context);
      if (claims.ok()) {
        agent_sha256_ = sha;
        agent_claims_ = *std::move(claims);
        announce(*agent_claims_, "token", " sent by the agent");
        d.source = TokenDecision::Source::kAgent;
        d.claims = &*agent_claims_;
        return d;
      }
      why = std::string(claims.status().message());
    }
    // Not the agent's identity. The message names the failure, never the token.
    d.events.push_back({"denied", "agent_token_invalid", absl::StrCat("agent Authorization removed: ", why)});
    if (http_.require_agent_token) {
      d.refused = true;
      d.reason = "token_invalid";
      d.detail = absl::StrCat("the agent's token is not valid for this resource: ", why);
      return d;
    }
  }

  // 2. The token bound to the enrollment: verified once, again when it expires.
  if (bound_token_ && (!bound_claims_.has_value() || now >= bound_claims_->expires_at) && now >= bound_retry_at_) {
    bound_claims_.reset();
    absl::StatusOr<std::optional<std::string>> bound = bound_token_();
    std::string failure, reason;
    if (!bound.ok()) {
      failure = std::string(bound.status().message());
      reason = "bound_token_unreadable";
    } else if (bound->has_value()) {
      absl::StatusOr<auth::TokenClaims> claims = verifier_->Verify(**bound, context);
      if (claims.ok()) {
        bound_claims_ = *std::move(claims);
        bound_failure_.clear();
        announce(*bound_claims_, "bound_token", " bound at enrollment");
      } else {
        failure = std::string(claims.status().message());
        reason = ReasonOf(failure);
      }
    }
    if (!failure.empty()) {
      // Looked at again at most once a second (a file being rewritten),
      // reported once.
      bound_retry_at_ = now + absl::Seconds(1);
      if (failure != bound_failure_) d.events.push_back({"denied", reason, absl::StrCat("bound_token: ", failure)});
      bound_failure_ = failure;
    }
  }
  if (bound_claims_.has_value() && now < bound_claims_->expires_at) {
    d.source = TokenDecision::Source::kBound;
    d.claims = &*bound_claims_;
    return d;
  }

  // 3. None.
  if (http_.require_agent_token) {
    d.refused = true;
    d.reason = authorizations.empty() ? "token_required" : "token_invalid";
    d.detail = bound_failure_.empty() ? "this resource requires a token (Authorization: Bearer, "
                                        "or one bound to the workload)"
                                      : absl::StrCat(
                                            "this resource requires a token; the one "
                                            "bound to the workload is not valid: ",
                                            bound_failure_);
    if (d.reason == "token_required") d.events.push_back({"denied", d.reason, d.detail});
  }
  return d;
}

std::vector<chttp::HeaderField> WithoutIdentityHeaders(const std::vector<chttp::HeaderField>& fields,
                                                       std::vector<std::string>* removed) {
  std::vector<chttp::HeaderField> out;
  out.reserve(fields.size());
  for (const chttp::HeaderField& f : fields) {
    if (absl::StartsWithIgnoreCase(f.name, kIdentityHeaderPrefix)) {
      if (removed != nullptr) removed->push_back(absl::AsciiStrToLower(f.name));
    } else {
      out.push_back(f);
    }
  }
  return out;
}

absl::StatusOr<std::vector<OwnedField>> IdentityHeaders(const auth::jwt::AssertionKey& key, const IdentityInput& in) {
  const v1::WorkloadIdentity& id = *in.identity;
  if (!FieldSafe(id.workload()) || (in.claims != nullptr && !FieldSafe(in.claims->subject))) {
    return absl::InvalidArgumentError(
        "identity headers: the workload or token "
        "subject holds a control character");
  }
  auth::jwt::AssertionClaims c;
  c.aud = in.resource;
  c.iat = absl::ToUnixSeconds(in.now);
  c.exp = c.iat + absl::ToInt64Seconds(kAssertionLifetime);
  c.jti = in.jti;
  c.sid = in.session_id;
  c.workload = id.workload();
  c.cgroup_path = id.cgroup_path();
  c.uid = id.uid();
  c.pid = id.pid();
  c.exe = id.exe();
  if (in.claims != nullptr) {
    c.has_token = true;
    c.sub = in.claims->subject;
    c.token_iss = in.claims->issuer;
    c.groups = in.claims->groups;
  }
  absl::StatusOr<std::string> jws = key.Sign(c);
  if (!jws.ok()) return jws.status();
  std::vector<OwnedField> out;
  out.push_back({kWorkloadHeader, id.workload()});
  if (in.claims != nullptr) out.push_back({kSubjectHeader, in.claims->subject});
  out.push_back({kAssertionHeader, *std::move(jws)});
  return out;
}

std::string NewAssertionId() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) std::abort();  // the CSPRNG failing is not input
  return HexEncode(absl::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

}  // namespace interlock::proxy::http
