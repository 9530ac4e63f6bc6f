// AssertionKey: interlockd's identity assertion key
// (HttpResource.identity_headers), an ECDSA P-256 key kept in the state dir
// like the HTTPS interception CA: <dir>/assertion-key.pem, PKCS#8 PEM, created
// 0600 (never wider, not even for a moment) and refused at load when group or
// others can read it. `interlock assertion-key init` creates it; interlockd
// loads it at start when a resource asks for identity headers and refuses to
// start without it (it never creates one itself: a key that appears on its own
// would silently change what upstreams must trust). `interlock assertion-key
// show` prints the public half as PEM and as a JWK whose kid is the RFC 7638
// thumbprint — the kid every assertion's header names.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto key,
//   AssertionKey::Load("/var/lib/interlock"));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string jws, key->Sign(claims));   //
//   Interlock-Assertion std::printf("%s", key->public_pem().c_str());
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/auth/jwt/identity_assertion.h"
#include "userspace/auth/jwt/jwt.h"

namespace interlock::auth::jwt {

inline constexpr char kAssertionKeyFile[] = "assertion-key.pem";

class AssertionKey {
 public:
  // Creates a new key in `dir` (created 0700 when missing). ALREADY_EXISTS when
  // the file exists, unless `replace` (atomically replaced: upstreams must then
  // trust the new public key). Errno codes when the file cannot be written.
  static absl::StatusOr<std::unique_ptr<AssertionKey>> Init(const std::string& dir, bool replace = false);
  // Loads the key Init wrote. NOT_FOUND when there is none; PERMISSION_DENIED
  // (naming the file and its mode or owner) when it is not a regular file owned
  // by the effective uid with no group/other access; INVALID_ARGUMENT when it
  // does not parse or is not P-256.
  static absl::StatusOr<std::unique_ptr<AssertionKey>> Load(const std::string& dir);

  // A compact JWS of `claims` (SignEs256Jws with this key and kid). INTERNAL
  // when OpenSSL fails.
  absl::StatusOr<std::string> Sign(const AssertionClaims& claims) const;

  const std::string& file() const { return file_; }
  // RFC 7638 thumbprint (base64url SHA-256 of the canonical public JWK).
  const std::string& kid() const { return kid_; }
  // SubjectPublicKeyInfo PEM.
  const std::string& public_pem() const { return public_pem_; }
  // {"kty":"EC","crv":"P-256","x":...,"y":...,"kid":...,"alg":"ES256","use":"sig"}
  const std::string& public_jwk() const { return public_jwk_; }
  EVP_PKEY* pkey() const { return key_.get(); }  // owned by this object

 private:
  AssertionKey() = default;
  static absl::StatusOr<std::unique_ptr<AssertionKey>> FromKey(std::string file, EvpPkeyPtr key);

  std::string file_;
  EvpPkeyPtr key_;
  std::string kid_;
  std::string public_pem_;
  std::string public_jwk_;
};

}  // namespace interlock::auth::jwt
