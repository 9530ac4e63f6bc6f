// Tokens bound to enrollments, and the verifier chain a PostgreSQL resource uses.
//
// A token file bound at enrollment (`interlock run --as NAME --token-file PATH`, or
// `enrollments[].token_file`) gives every session of that workload its OIDC identity
// without the agent ever holding the token: interlockd reads the file (re-reading it when
// it changes, so rotation works) and verifies it per session. The same token presented by
// any process outside that enrollment's cgroup is refused (`token_bound_elsewhere`, with
// both enrollments named), so a token lifted from the file is useless elsewhere.
//
// A token is recognised by what it says, not by its bytes (TokenIdentity): for a JWS, a
// SHA-256 over its base64url-DECODED header and payload JSON; the signature is left out.
// Otherwise a thief could present an equivalent encoding the verifier still accepts — an
// ES256 signature (r, s) re-encoded as (r, n-s) verifies, and a lenient base64 decoder
// would accept padding or the standard alphabet — and the raw-bytes comparison would not
// recognise it. The header and payload cannot be re-encoded without the issuer's key,
// since the signature covers their exact encoded bytes, and the decoder used for the
// identity accepts every base64 variant so that no variant changes the digest. Tokens
// that are not three dot-separated parts (static tokens) are recognised by a SHA-256 of
// their bytes.
//
//   bindings.Bind(cgroup_path, "billing-agent", "/run/agent/token");
//   auto token = bindings.TokenFor(identity.cgroup_path());       // nullopt: none bound
//   BindingVerifier v(std::move(jwt_or_static), &bindings);        // refuses stolen tokens
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/auth/token_verifier.h"

namespace interlock::daemon {

// Largest token file read.
inline constexpr size_t kMaxTokenFileBytes = 16 * 1024;

// The identity of a token for binding checks: "jws:<sha256 hex>" over the decoded
// header and payload (length-prefixed) of a compact JWS, or "raw:<sha256 hex>" of the
// bytes of anything else (including three-part strings that are not base64). Two
// encodings of the same JWS header+payload have the same identity.
std::string TokenIdentity(absl::string_view token);

class TokenBindings {
 public:
  struct Binding {
    std::string workload;
    std::string cgroup_path;  // the enrollment's cgroup, relative to the cgroup2 mount
    std::string token_file;
  };

  void Bind(const std::string& cgroup_path, const std::string& workload, const std::string& token_file);
  void Unbind(const std::string& cgroup_path);

  // The binding whose cgroup is `cgroup_path` or one of its ancestors.
  const Binding* BindingFor(absl::string_view cgroup_path) const;
  // The token bound to the enrollment `cgroup_path` belongs to: nullopt when none is
  // bound; an error (naming the file, never its contents) when it cannot be read.
  absl::StatusOr<std::optional<std::string>> TokenFor(absl::string_view cgroup_path);
  // The binding holding a token with this TokenIdentity(), when the presenting cgroup is
  // not inside it; nullopt otherwise.
  std::optional<Binding> BoundElsewhere(absl::string_view token_identity, absl::string_view cgroup_path);

  size_t size() const { return bindings_.size(); }

 private:
  struct Cached {
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    std::string token;
    std::string identity;  // TokenIdentity(token)
  };
  absl::StatusOr<const Cached*> Read(const Binding& b);

  std::map<std::string, Binding> bindings_;  // by cgroup path
  std::map<std::string, Cached> cache_;      // by token file
};

// Tries each verifier: JWTs (three dot-separated parts) go to `jwt`, anything else to
// `static_tokens`; either may be null.
class AnyTokenVerifier final : public auth::TokenVerifier {
 public:
  AnyTokenVerifier(std::unique_ptr<auth::TokenVerifier> jwt, std::unique_ptr<auth::TokenVerifier> static_tokens)
      : jwt_(std::move(jwt)), static_(std::move(static_tokens)) {}
  absl::StatusOr<auth::TokenClaims> Verify(absl::string_view token, const auth::TokenContext& context) const override;

 private:
  std::unique_ptr<auth::TokenVerifier> jwt_;
  std::unique_ptr<auth::TokenVerifier> static_;
};

// Refuses a token bound to another enrollment, then asks `inner`.
class BindingVerifier final : public auth::TokenVerifier {
 public:
  BindingVerifier(std::unique_ptr<auth::TokenVerifier> inner, TokenBindings* bindings)
      : inner_(std::move(inner)), bindings_(bindings) {}
  absl::StatusOr<auth::TokenClaims> Verify(absl::string_view token, const auth::TokenContext& context) const override;

 private:
  std::unique_ptr<auth::TokenVerifier> inner_;
  TokenBindings* bindings_;
};

}  // namespace interlock::daemon
