// TestIssuer: a throwaway OpenID Connect issuer for tests of JWT verification. It
// generates its own keys with OpenSSL (RSA 2048 or 1024, P-256, Ed25519), publishes them
// as a JWKS, and mints tokens with whatever header and claims a test writes — including
// broken ones: unsigned ("alg":"none"), HMAC-signed with a public key as the secret, a
// kid that names another key, a tampered payload.
//
//   auto idp = TestIssuer::Create("https://idp.test");
//   ASSERT_TRUE((*idp)->AddKey("rsa-1", TestKeyKind::kRsa2048).ok());
//   std::string jwks = (*idp)->Jwks();                                    // {"keys":[...]}
//   JsonObject claims = (*idp)->StandardClaims(clock.Now());             // iss, sub, aud, ...
//   claims.Strs("groups", {"ops"}).Str("azp", "agent-cli");
//   absl::StatusOr<std::string> token = (*idp)->Mint("rsa-1", "RS256", claims);
//   // Anything goes: sign "kid":"rsa-1" headers with the P-256 key, etc.
//   token = (*idp)->Sign("ec-1", "ES256", TestIssuer::Header("ES256", "rsa-1").Json(),
//                        claims.Json());
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace interlock::testing {

// A JSON string literal: quoted, with '"', '\\' and control characters escaped.
std::string JsonQuote(absl::string_view s);

// Base64url without padding (RFC 7515 §2).
std::string Base64Url(absl::string_view bytes);
// Its inverse; also accepts '=' padding and the standard alphabet's '+' and '/'
// (an attacker's re-encodings). Dies on anything else.
std::string Base64UrlDecodeLenient(absl::string_view text);

// The ECDSA P-256 signature r||s (64 bytes) with s replaced by n - s: the malleable twin
// that verifies under the same key, computed without it (OpenSSL BN arithmetic).
std::string FlipEs256S(absl::string_view raw_signature);
// `token` (compact JWS signed ES256) with its signature replaced by the (r, n-s) twin.
std::string ReencodeEs256Token(absl::string_view token);

// A JSON object built member by member, in insertion order; setting an existing name
// replaces its value in place.
class JsonObject {
 public:
  JsonObject& Str(const std::string& name, absl::string_view value);
  JsonObject& Int(const std::string& name, int64_t value);
  JsonObject& Strs(const std::string& name, const std::vector<std::string>& values);
  JsonObject& Obj(const std::string& name, const JsonObject& value);
  // `json` is inserted verbatim: any JSON value, or deliberately broken text.
  JsonObject& Raw(const std::string& name, std::string json);
  JsonObject& Erase(const std::string& name);
  bool Has(const std::string& name) const;
  std::string Json() const;

 private:
  std::vector<std::pair<std::string, std::string>> members_;  // name, JSON value text
};

enum class TestKeyKind {
  kRsa2048,  // RS256 and PS256
  kRsa1024,  // too small: verifiers must refuse it
  kP256,     // ES256
  kEd25519,  // EdDSA
};

namespace test_issuer_internal {
struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const;
};
}  // namespace test_issuer_internal

class TestIssuer {
 public:
  static absl::StatusOr<std::unique_ptr<TestIssuer>> Create(std::string issuer);

  const std::string& issuer() const { return issuer_; }

  // Generates a fresh key named `kid` (replacing one of that name). RSA generation takes
  // ~50-200 ms: generate in SetUpTestSuite and share.
  absl::Status AddKey(const std::string& kid, TestKeyKind kind);
  void RemoveKey(const std::string& kid);
  bool HasKey(const std::string& kid) const { return keys_.count(kid) != 0; }

  // The public JWK of `kid`: kty, kid and n/e, crv/x/y or crv/x. Add "use", "alg", ... to
  // taste. Empty object for an unknown kid.
  JsonObject PublicJwk(const std::string& kid) const;
  // {"keys":[...]} with the public JWKs of `kids`, in that order (every key, in kid order,
  // when empty).
  std::string Jwks(const std::vector<std::string>& kids = {}) const;
  // {"keys":[...]} of arbitrary JWK objects.
  static std::string JwksOf(const std::vector<JsonObject>& jwks);
  // The public key of `kid` as SubjectPublicKeyInfo PEM — the bytes an attacker would use
  // as an HMAC secret in an RS256 -> HS256 confusion attack.
  std::string PublicKeyPem(const std::string& kid) const;

  // What an ordinary token carries: iss (this issuer), sub, aud, iat = nbf = now,
  // exp = now + 1 h.
  JsonObject StandardClaims(absl::Time now, const std::string& sub = "agent-1",
                            const std::string& aud = "interlock") const;
  // {"alg": alg, "typ": "JWT", "kid": kid} (no kid when empty).
  static JsonObject Header(absl::string_view alg, absl::string_view kid);

  // header.payload.signature with the signature made by the key `kid` for `alg` ("RS256",
  // "PS256", "ES256" as r||s, "EdDSA"), whatever the header says.
  absl::StatusOr<std::string> Sign(const std::string& kid, absl::string_view alg,
                                   absl::string_view header_json,
                                   absl::string_view payload_json) const;
  // Sign(kid, alg, Header(alg, kid).Json(), claims.Json()).
  absl::StatusOr<std::string> Mint(const std::string& kid, absl::string_view alg,
                                   const JsonObject& claims) const;
  // HMAC-SHA256 with `secret`, header and payload as given.
  static std::string SignHs256(absl::string_view secret, absl::string_view header_json,
                               absl::string_view payload_json);
  // An unsigned token: base64url(header) "." base64url(payload) "." (empty signature).
  static std::string Unsigned(absl::string_view header_json, absl::string_view payload_json);

 private:
  using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, test_issuer_internal::EvpPkeyFree>;
  struct Key {
    TestKeyKind kind;
    EvpPkeyPtr pkey;
  };

  explicit TestIssuer(std::string issuer) : issuer_(std::move(issuer)) {}

  std::string issuer_;
  std::map<std::string, Key> keys_;
};

}  // namespace interlock::testing
