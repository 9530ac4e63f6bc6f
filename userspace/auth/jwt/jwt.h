// JWT (RFC 7519) in JWS compact serialization (RFC 7515 §7.1): pure decoding and
// signature verification with OpenSSL's EVP API. No clock, no key fetching, no I/O: the
// issuer-aware checks (which algorithms, which keys, iss/aud/exp) live in JwtVerifier
// (oidc_verifier.h), which composes these pieces.
//
// Also the one place that defines the reason codes every JWT failure starts with, so the
// daemon, audit events and tests share one vocabulary (like Cilium's drop reasons).
//
//   INTERLOCK_ASSIGN_OR_RETURN(jwt::Jws jws, jwt::DecodeJws(token));   // "malformed: ..."
//   std::optional<jwt::Alg> alg = jwt::ParseAlg(jws.alg);
//   INTERLOCK_RETURN_IF_ERROR(jwt::VerifySignature(*alg, key, jws.signing_input,
//                                                  jws.signature));    // "bad_signature: ..."
//   absl::string_view why = jwt::ReasonOf(status);                     // "bad_signature"
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace interlock::auth::jwt {

// A bearer token longer than this is rejected before any decoding. Real ID and access
// tokens are 1-4 KiB; Keycloak tokens with many roles reach ~8 KiB.
inline constexpr size_t kMaxTokenBytes = 16 * 1024;

// Why a token was rejected. Every rejection is UNAUTHENTICATED with a message that starts
// with the code ("expired: ..."); the codes are stable (audit events and metrics use them).
enum class Reason {
  kMalformed,       // not a compact JWS, bad base64url or JSON, claim of the wrong type
  kAlgNone,         // "alg": "none" (an unsigned token)
  kAlgNotAllowed,   // alg unsupported, symmetric (HS*), not pinned for the issuer, or not
                    // the algorithm of the key named by kid
  kUnknownKid,      // no key of the issuer fits the token (even after a refetch)
  kBadSignature,    // the signature does not verify
  kWrongIssuer,     // "iss" names no configured issuer
  kWrongAudience,   // "aud" names none of the issuer's audiences
  kExpired,         // "exp" passed (beyond the clock skew), or the lifetime is too long
  kNotYetValid,     // "nbf" in the future (beyond the clock skew)
  kIssuedInFuture,  // "iat" in the future (beyond the clock skew)
  kMissingClaim,    // a required claim (iss, sub, aud, exp, ...) is absent
  kKeyFetchFailed,  // the issuer's keys could not be loaded
};

// The code: "malformed", "alg_none", ... (static storage).
absl::string_view ReasonCode(Reason reason);

// UNAUTHENTICATED "<code>: <detail>".
absl::Status Fail(Reason reason, absl::string_view detail);

// The reason code a status starts with; empty when it is OK, not UNAUTHENTICATED or does
// not start with a known code.
absl::string_view ReasonOf(const absl::Status& status);

// The asymmetric JWS algorithms Interlock verifies (RFC 7518 §3, RFC 8037 §3.1). HMAC is
// deliberately absent: a verifier holding only public keys must never accept HS*.
enum class Alg {
  kRS256,  // RSASSA-PKCS1-v1_5 with SHA-256
  kPS256,  // RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt
  kES256,  // ECDSA on P-256 with SHA-256, signature r||s (64 bytes)
  kEdDSA,  // Ed25519
};

// "RS256", "PS256", "ES256", "EdDSA".
absl::string_view AlgName(Alg alg);

// Exact, case-sensitive match of the JOSE name (RFC 7518 names are case-sensitive);
// nullopt for anything else, "none" and "HS256" included.
std::optional<Alg> ParseAlg(absl::string_view name);

// The family of key an algorithm needs. A key of one type never verifies another
// type's algorithm.
enum class KeyType { kRsa, kEc, kOkp };
KeyType KeyTypeOf(Alg alg);
absl::string_view KeyTypeName(KeyType type);  // "RSA", "EC", "OKP" (the JWK kty)

// RSA keys below this size are refused (RFC 7518 §3.3 requires 2048 bits).
inline constexpr int kMinRsaBits = 2048;
// And above this, to bound verification cost (RSA verify is quadratic in the modulus).
inline constexpr int kMaxRsaBits = 8192;

struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const;
};
// The one owner of a public key.
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// Strict base64url without padding (RFC 7515 §2, Appendix C): only [A-Za-z0-9_-], no
// '=', no whitespace, no length ≡ 1 (mod 4), and the unused low bits of the last
// character must be zero — so every byte string has exactly one accepted encoding and a
// token cannot be altered without changing its bytes. INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view in);
std::string Base64UrlEncode(absl::string_view bytes);
// Lenient base64 (RFC 4648 §4 and §5) for recognising a token however it was spelled:
// either alphabet, trailing '=' padding ignored, unused trailing bits dropped, so every
// spelling of the same bytes decodes to them (token bindings name a token this way).
// nullopt for any other character. Never for verification: Base64UrlDecode is strict.
std::optional<std::string> Base64DecodeAnySpelling(absl::string_view in);

// A decoded, NOT yet verified, compact JWS whose payload is a JSON object (a JWT).
struct Jws {
  std::string alg;  // the header's "alg", as written (may be "none" or unsupported)
  std::string kid;  // the header's "kid"; empty when absent
  std::string typ;  // the header's "typ"; empty when absent
  google::protobuf::Struct header;
  google::protobuf::Struct payload;  // the claims
  std::string signing_input;         // ASCII(BASE64URL(header) "." BASE64URL(payload))
  std::string signature;             // decoded signature bytes; empty for an unsigned token
};

// Decodes `token` (at most kMaxTokenBytes): exactly three '.'-separated parts, header and
// payload non-empty, strict base64url, JSON objects, "alg" a string, "kid"/"typ" strings
// when present. A "crit" header is refused (RFC 7515 §4.1.11: we understand no
// extension). Key-carrying headers (jwk, jku, x5u, x5c) are ignored: keys come only from
// the issuer's configured JWKS. Every error is "malformed: ...", never echoing the token.
//
// JSON is parsed with protobuf's JSON parser into google.protobuf.Struct: duplicate
// member names, invalid UTF-8 and lone surrogates are rejected; it is lenient about a few
// non-standard forms (trailing commas, single quotes), which is harmless here because the
// claims are trusted only after the signature over their exact bytes verifies.
absl::StatusOr<Jws> DecodeJws(absl::string_view token);

// Parses a JSON object (a JWT header or payload, a JWK Set, an OpenID discovery
// document) into a Struct. INVALID_ARGUMENT with the parser's first line on error (no
// echo of the input). Callers check the size first.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json);

// Whether a raw JOSE ECDSA signature r||s (64 bytes, P-256) has s > n/2. ECDSA is
// malleable: if (r, s) verifies, so does (r, n-s), a second encoding of the same
// signature that anyone can compute without the key. Low s (s <= n/2) is the canonical
// half. False for a signature of the wrong length.
bool IsHighS(absl::string_view raw_es256_signature);

// How strict VerifySignature is beyond "does it verify".
struct SignatureRules {
  // ES256: refuse s > n/2 ("bad_signature: high_s ..."). Off by default because RFC 7518
  // does not ask signers for low s and common signers (OpenSSL, Go, Java, so most IdPs)
  // do not normalise: about half of their legitimate ES256 tokens have a high s. Turn it
  // on (OidcIssuer.require_low_s) only for an issuer known to normalise. Interlock does
  // not rely on it: nothing it keys on a token's identity uses the signature bytes (see
  // daemon/token_bindings.h).
  bool require_low_s = false;
};

// Verifies `signature` over `signing_input` with `key` (not owned; not modified) for
// `alg`. OK when it verifies. Errors:
//   alg_not_allowed: the key's type (or curve) cannot verify `alg`;
//   bad_signature:   the signature does not verify, has the wrong length, the RSA key
//                    is outside [kMinRsaBits, kMaxRsaBits], or (rules.require_low_s) an
//                    ES256 signature has a high s — that message starts
//                    "bad_signature: high_s:".
absl::Status VerifySignature(Alg alg, EVP_PKEY* key, absl::string_view signing_input,
                             absl::string_view signature, SignatureRules rules = {});

}  // namespace interlock::auth::jwt
