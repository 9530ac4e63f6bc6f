// Identity assertions: the short-lived JWT interlockd adds to a forwarded HTTP
// request
// (`Interlock-Assertion`, HttpResource.identity_headers) saying which agent
// asks — its kernel-attested workload and, when it presented one, its verified
// token's subject. Pure signing code: claims to JSON, JSON to a compact JWS
// (RFC 7515 §7.1) signed ES256 (RFC 7518 §3.4: ECDSA P-256 SHA-256, the
// signature as the raw 64 bytes R || S, not DER), every part base64url without
// padding. No clock, no files: the caller fills iat/exp/jti and holds the key
// (assertion_key.h loads it from the state dir).
//
//   AssertionClaims c{.aud = "crm-api", .iat = now, .exp = now + 60, .jti = id,
//   ...}; INTERLOCK_ASSIGN_OR_RETURN(std::string jws, SignEs256Jws(key, kid,
//   AssertionClaimsJson(c))); INTERLOCK_ASSIGN_OR_RETURN(std::string jwk,
//   Es256PublicJwk(key));   // for the upstream
//
// An upstream verifies it like any JWT: the kid names the key `interlock
// assertion-key show` prints; it checks iss "interlockd", aud (its resource
// name) and exp.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::auth::jwt {

// The assertion's issuer ("iss").
inline constexpr char kAssertionIssuer[] = "interlockd";

struct AssertionClaims {
  std::string iss = kAssertionIssuer;
  std::string aud;  // the resource name
  int64_t iat = 0;  // Unix seconds
  int64_t exp = 0;  // Unix seconds
  std::string jti;  // unique per assertion (random)
  std::string sid;  // interlockd's session id
  // The kernel-attested workload.
  std::string workload;
  std::string cgroup_path;
  uint32_t uid = 0;
  uint32_t pid = 0;
  std::string exe;
  // From the agent's verified token; absent from the JSON when has_token is
  // false.
  bool has_token = false;
  std::string sub;
  std::string token_iss;
  std::vector<std::string> groups;
};

// The claims as one JSON object, members in a fixed order: iss, aud, iat, exp,
// jti, sid, workload, cgroup_path, uid, pid, exe, then (has_token) sub,
// token_iss, groups. Strings through AppendJsonQuoted (common/json_text.h).
std::string AssertionClaimsJson(const AssertionClaims& claims);

// header "." payload "." signature, each base64url without padding: the header
// is
// {"alg":"ES256","typ":"JWT","kid":<kid>}, the payload `claims_json` as given,
// the signature ECDSA P-256 SHA-256 over the first two parts as R || S (32
// bytes each, left-padded). INVALID_ARGUMENT when `key` is not a P-256 private
// key; INTERNAL when OpenSSL fails.
absl::StatusOr<std::string> SignEs256Jws(EVP_PKEY* key, absl::string_view kid, absl::string_view claims_json);

// The public half of a P-256 key as a JWK with exactly the RFC 7638 §3.2
// required members in lexicographic order and no whitespace:
// {"crv":"P-256","kty":"EC","x":...,"y":...} (x, y: 32 bytes each, base64url).
// The input of the thumbprint. INVALID_ARGUMENT when `key` is not a P-256 key.
absl::StatusOr<std::string> Es256PublicJwk(EVP_PKEY* key);

// The RFC 7638 thumbprint of `key`: base64url(SHA-256(Es256PublicJwk(key))), 43
// characters. The assertion key's kid.
absl::StatusOr<std::string> Es256JwkThumbprint(EVP_PKEY* key);

}  // namespace interlock::auth::jwt
