// JwtVerifier: the TokenVerifier for JWTs issued by configured OpenID Connect / OAuth 2
// issuers (RFC 7519, RFC 8725 "JWT Best Current Practices"). Transport-neutral: the same
// verifier checks a token from the PostgreSQL password field or an HTTP Authorization
// header.
//
// Verify() runs, in order, and rejects at the first failure with UNAUTHENTICATED whose
// message starts with a stable reason code (jwt.h, ReasonOf):
//   1. size (<= 16 KiB) and compact-JWS decoding              malformed
//   2. alg "none" (any case)                                   alg_none
//      alg unsupported or symmetric (HS*: never, since the
//      public key would be a known HMAC secret)                alg_not_allowed
//   3. "iss" names a configured issuer, exact match            missing_claim / wrong_issuer
//      (read before the signature only to choose the keys)
//   4. alg pinned for that issuer                              alg_not_allowed
//   5. key by "kid" (no kid: the single key that fits the
//      alg); a kid whose key has another type or alg          alg_not_allowed
//      unknown kid: one refetch of the JWKS (file re-read or
//      HTTPS GET), at most once per min_refresh_interval      unknown_kid / key_fetch_failed
//   6. signature                                               bad_signature
//   7. "aud" (string or array) contains a configured audience  missing_claim / wrong_audience
//   8. exp > now - skew (exp required unless require_exp=false) missing_claim / expired
//      nbf <= now + skew; iat <= now + skew                    not_yet_valid / issued_in_future
//      exp - iat <= max_token_lifetime (when set)              expired
//   9. "sub" present (a string)                                missing_claim
//      the groups claim, when present, is a string or an
//      array of strings                                        malformed
//
// Keys: a JWKS file (read at Create, so a broken file fails startup) or the issuer's
// HTTPS endpoints — jwks_uri, or OpenID discovery (<issuer>/.well-known/openid-
// configuration, whose "issuer" must equal the configured one). Fetched keys are cached;
// they are refreshed when a token names an unknown kid and when older than jwks_max_age,
// never more often than min_refresh_interval per issuer. A failed refresh keeps the
// cached keys (availability over freshness while the IdP is down; see jwks_max_age).
//
// A fetch on Verify()'s thread BLOCKS it (interlockd is single-threaded, so the event loop
// stalls) for at most fetch_timeout (default 2 s), at most once per min_refresh_interval
// (default 30 s) per issuer. interlockd creates its verifiers with background_refresh, so
// that happens only for an unknown kid or an issuer whose keys were never loaded.
// An internal mutex makes Verify() safe to call from several threads.
//
// Token binding to the presenting workload (TokenContext) is the caller's job for now.
//
//   IssuerConfig idp{.issuer = "https://idp.example.com/realms/agents",
//                    .audiences = {"interlock"},
//                    .algorithms = {"RS256"},
//                    .discovery = true,
//                    .groups_claim = "realm_access.roles"};
//   INTERLOCK_ASSIGN_OR_RETURN(auto verifier, JwtVerifier::Create({idp}, RealClock::Get()));
//   absl::StatusOr<TokenClaims> claims = verifier->Verify(token, context);
//   if (!claims.ok()) deny(JwtVerifier::ReasonOf(claims.status()));   // "expired", ...
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/auth/jwt/jwks.h"
#include "userspace/auth/jwt/jwks_fetcher.h"
#include "userspace/auth/jwt/jwt.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/common/clock.h"

namespace interlock::auth::jwt {

struct IssuerConfig {
  // The "iss" value, compared byte for byte. Required; unique among issuers.
  std::string issuer;
  // Accepted audiences: the token's "aud" must contain at least one. Required, non-empty
  // (a verifier that accepted any audience would accept tokens minted for other services).
  std::vector<std::string> audiences;
  // Pinned algorithms: "RS256", "PS256", "ES256", "EdDSA". Required, non-empty; "none" and
  // HS256/384/512 are refused at Create.
  std::vector<std::string> algorithms;

  // Where the keys come from: exactly one of the three.
  std::string jwks_file;   // a local JWKS file (re-read on unknown kid / when stale)
  std::string jwks_uri;    // an https URL of the JWKS
  bool discovery = false;  // <issuer>/.well-known/openid-configuration -> jwks_uri

  // CA bundle (PEM) for the issuer's HTTPS server; empty: the system store.
  std::string ca_file;
  // Bound of one HTTPS fetch (discovery document or JWKS), whole transfer.
  absl::Duration fetch_timeout = absl::Seconds(2);

  // Tolerance for clocks that disagree, applied to exp, nbf and iat. >= 0.
  absl::Duration clock_skew = absl::Seconds(60);
  // Claim holding group names: a top-level name ("groups", or a name containing dots such
  // as "https://example.com/groups") or else a dotted path into nested objects
  // ("realm_access.roles", "resource_access.my-client.roles"). Its value: an array of
  // strings or a single string; absent: no groups.
  std::string groups_claim = "groups";
  // When non-zero: tokens whose exp - iat exceeds it are refused (and iat is required).
  absl::Duration max_token_lifetime = absl::ZeroDuration();
  // Minimum time between two JWKS refreshes of this issuer (unknown kid, stale keys,
  // failed fetch retries). >= 1 s.
  absl::Duration min_refresh_interval = absl::Seconds(30);
  // Fetched keys older than this are refreshed at the next Verify(). > 0.
  absl::Duration jwks_max_age = absl::Minutes(10);
  // Whether a token without "exp" is refused (missing_claim). Leave it on.
  bool require_exp = true;
  // ES256: refuse signatures with s > n/2 (see jwt::SignatureRules for why it is off
  // by default).
  bool require_low_s = false;
};

class JwtVerifier final : public TokenVerifier {
 public:
  // Validates every issuer (INVALID_ARGUMENT naming the issuer and the field) and loads
  // jwks_file keys now (the error of a missing, unparsable or keyless file). HTTPS keys
  // are fetched on first use. `clock` must outlive the verifier. `fetcher`, when set,
  // serves every HTTPS fetch of every issuer (tests); otherwise each HTTPS issuer gets a
  // CurlJwksFetcher with its ca_file and fetch_timeout.
  //
  // With background_refresh, a worker thread of the verifier fetches HTTPS keys: at once
  // (so the first token rarely waits), then again when they are half jwks_max_age old, and
  // after a failure every min_refresh_interval. Verify() then never fetches for stale keys
  // (it uses them while the worker refreshes); it still fetches on the caller's thread
  // when an issuer has no keys yet or a token names an unknown kid (rate-limited as above).
  // The worker checks what is due at least once a second (by `clock`). A `fetcher` shared
  // by several issuers must then be thread-safe (each CurlJwksFetcher serves one issuer).
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(
      std::vector<IssuerConfig> issuers, const Clock& clock,
      std::shared_ptr<JwksFetcher> fetcher = nullptr, bool background_refresh = false);

  ~JwtVerifier() override;

  // See the top of this file. On success: issuer, subject, audience (the configured one
  // that matched), azp ("azp", else "client_id"), expires_at (InfiniteFuture without
  // exp), groups, string_claims (every top-level string claim) and token_sha256.
  absl::StatusOr<TokenClaims> Verify(absl::string_view token,
                                     const TokenContext& context) const override;

  // The reason code of a Verify() failure ("expired", "unknown_kid", ...); empty for OK
  // and for statuses that carry none.
  static absl::string_view ReasonOf(const absl::Status& status) { return jwt::ReasonOf(status); }

 private:
  struct Issuer;

  JwtVerifier(const Clock& clock, std::map<std::string, std::unique_ptr<Issuer>> issuers);

  // The keys to try for (kid, alg), loading or refreshing the issuer's keys as allowed.
  // Called with mu_ held. The pointers stay valid until the next refresh of `issuer`.
  absl::StatusOr<std::vector<const Jwk*>> SelectKeys(Issuer& issuer, absl::string_view kid,
                                                     Alg alg) const;
  // Loads the keys (file or HTTPS) now and records the attempt. Called with mu_ held.
  absl::Status Refresh(Issuer& issuer) const;
  // The network/file part of a load: no mu_ needed (reads only what never changes, and
  // `discovered_uri`); fetches of one issuer are serialized by its fetch_mu.
  struct Loaded;
  Loaded Load(const Issuer& issuer, std::string discovered_uri) const;
  // Stores the outcome of a load begun at `started` (mu_ held): the attempt time, then the
  // keys with `started` as their load time, or the error. The keys are as old as the
  // fetch, however long the install waited for mu_; an outcome older than the keys in the
  // cache changes nothing.
  absl::Status Install(Issuer& issuer, Loaded loaded, absl::Duration started) const;
  // The background worker (background_refresh).
  void RefreshLoop();
  void StopRefresher();

  const Clock& clock_;
  mutable std::mutex mu_;                                   // guards each Issuer's key cache
  std::map<std::string, std::unique_ptr<Issuer>> issuers_;  // by issuer string
  bool background_ = false;
  std::mutex worker_mu_;  // guards stop_
  std::condition_variable worker_cv_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace interlock::auth::jwt
