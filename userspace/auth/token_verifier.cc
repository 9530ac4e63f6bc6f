#include "userspace/auth/token_verifier.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace interlock::auth {

StaticTokenVerifier::StaticTokenVerifier(std::vector<std::string> sha256_hex) {
  for (std::string& d : sha256_hex) digests_.push_back(absl::AsciiStrToLower(d));
}

absl::StatusOr<TokenClaims> StaticTokenVerifier::Verify(absl::string_view token,
                                                        const TokenContext& context) const {
  if (token.empty()) return absl::UnauthenticatedError("no token presented");
  std::string digest = Sha256Hex(token);
  bool accepted = false;
  for (const std::string& d : digests_) {
    // Every listed digest is compared in full: no early exit that would time the match.
    if (d.size() == digest.size() && CRYPTO_memcmp(d.data(), digest.data(), d.size()) == 0) {
      accepted = true;
    }
  }
  if (!accepted) return absl::UnauthenticatedError("token not accepted for this resource");
  TokenClaims claims;
  claims.token_sha256 = digest;
  claims.subject = absl::StrCat("static:", digest.substr(0, 12));
  return claims;
}

}  // namespace interlock::auth
