// TokenVerifier: decides whether a bearer token presented by an agent — in the PostgreSQL
// password field today, an HTTP Authorization header later — is valid for the workload
// presenting it, and what identity it carries. The OIDC/JWT verifier implements this
// interface; StaticTokenVerifier is the stand-in that accepts tokens listed by SHA-256.
//
//   StaticTokenVerifier v({"5e884898..."});
//   absl::StatusOr<TokenClaims> claims = v.Verify(password, {.workload = "billing-agent"});
//   if (!claims.ok()) deny(claims.status().message());   // UNAUTHENTICATED, with a reason
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/sha256.h"  // Sha256Hex

namespace interlock::auth {

// Who presents the token, as the kernel attested it: a verifier may bind a token to it.
struct TokenContext {
  std::string workload;
  uint64_t cgroup_id = 0;
  // Relative to the cgroup2 mount ("/interlock/workloads/billing-agent.12.1").
  std::string cgroup_path;
};

// What a verified token says. Fields a verifier does not know stay empty.
struct TokenClaims {
  std::string issuer;
  std::string subject;
  std::vector<std::string> groups;
  // Hex SHA-256 of the token, to name it in audit events without revealing it.
  std::string token_sha256;
  // The configured audience the token's "aud" matched.
  std::string audience;
  // The authorized party: "azp", else "client_id" (the OAuth client the token was issued to).
  std::string azp;
  // When the token stops being valid; InfiniteFuture when it does not say (or the verifier
  // does not know), so callers can always compare against it.
  absl::Time expires_at = absl::InfiniteFuture();
  // Every top-level string claim by name ("sub", "azp", "client_id", "email", ...), for
  // policy subjects that name a claim.
  std::map<std::string, std::string> string_claims;
};

class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  // UNAUTHENTICATED with a specific reason when the token is not valid for `context`.
  virtual absl::StatusOr<TokenClaims> Verify(absl::string_view token,
                                             const TokenContext& context) const = 0;
};

// Accepts exactly the tokens whose SHA-256 (lower-case hex) is listed; compares digests
// in constant time. Claims carry only token_sha256 (and subject "static:<first 12 hex>").
class StaticTokenVerifier final : public TokenVerifier {
 public:
  explicit StaticTokenVerifier(std::vector<std::string> sha256_hex);
  absl::StatusOr<TokenClaims> Verify(absl::string_view token,
                                     const TokenContext& context) const override;

 private:
  std::vector<std::string> digests_;
};

}  // namespace interlock::auth
