// KeySet: the public verification keys of one issuer, parsed from a JSON Web Key Set
// (RFC 7517 §5) into OpenSSL EVP_PKEYs. Supported: kty RSA (n, e; 2048-8192 bits), EC
// crv P-256 (x, y) and OKP crv Ed25519 (x, RFC 8037). A key that cannot be used — other
// kty or curve, "use" other than "sig", "key_ops" without "verify", an "alg" this
// verifier does not support or that does not match the kty, private key members,
// invalid parameters — is skipped with a note, never fatal: an issuer that publishes an
// RSA-OAEP encryption key next to its signing keys must still work.
//
//   std::vector<std::string> notes;
//   INTERLOCK_ASSIGN_OR_RETURN(jwt::KeySet keys, jwt::KeySet::Parse(json, &notes));
//   for (const jwt::Jwk* k : keys.WithKid(jws.kid)) {
//     if (k->Fits(jwt::Alg::kES256)) ... jwt::VerifySignature(alg, k->key.get(), ...)
//   }
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"
#include "userspace/auth/jwt/jwt.h"

namespace interlock::auth::jwt {

// A JWKS document larger than this is refused before parsing.
inline constexpr size_t kMaxJwksBytes = 1024 * 1024;
// Keys beyond this many are skipped (with a note); real issuers publish 1-5.
inline constexpr size_t kMaxJwksKeys = 64;

// One usable public key.
struct Jwk {
  std::string kid;  // "kid"; empty when the JWK has none
  KeyType type = KeyType::kRsa;
  std::optional<Alg> alg;  // the JWK's "alg" when present: then the only alg it verifies
  int bits = 0;            // RSA modulus bits; 256 for P-256 and Ed25519
  EvpPkeyPtr key;          // the public key, owned

  // Whether this key may verify a token signed with `a`: same key type and, when the JWK
  // names an alg, that alg.
  bool Fits(Alg a) const { return KeyTypeOf(a) == type && (!alg.has_value() || *alg == a); }
};

// Builds one key from a JWK object. INVALID_ARGUMENT saying why it is unusable.
absl::StatusOr<Jwk> ParseJwk(const google::protobuf::Struct& jwk);

class KeySet {
 public:
  KeySet() = default;
  KeySet(KeySet&&) = default;
  KeySet& operator=(KeySet&&) = default;

  // Parses a JWKS document ({"keys": [...]}). INVALID_ARGUMENT only when the document
  // itself is unusable (over kMaxJwksBytes, not a JSON object, no "keys" array). Each
  // skipped key adds one line to `notes` (may be null), naming its index and kid.
  static absl::StatusOr<KeySet> Parse(absl::string_view json,
                                      std::vector<std::string>* notes = nullptr);

  const std::vector<Jwk>& keys() const { return keys_; }
  size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }

  // The keys whose kid is exactly `kid` (usually one; RFC 7517 §4.5 allows the same kid
  // on keys of different types). Pointers live as long as this KeySet.
  std::vector<const Jwk*> WithKid(absl::string_view kid) const;
  // The keys that fit `alg`.
  std::vector<const Jwk*> Fitting(Alg alg) const;

 private:
  std::vector<Jwk> keys_;
};

}  // namespace interlock::auth::jwt
