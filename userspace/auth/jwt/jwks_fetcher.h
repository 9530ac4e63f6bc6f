// JwksFetcher: how JwtVerifier GETs an issuer's OpenID discovery document and JWKS. An
// interface so tests inject a fake; CurlJwksFetcher is the libcurl implementation.
//
// CurlJwksFetcher is deliberately narrow: HTTPS only (peer and host name verified, TLS
// 1.2+, the issuer's CA file or the system store), no redirects, no proxies (http_proxy
// and friends in the environment are ignored), no content decoding, a whole-transfer
// timeout and a body size cap. Plain HTTP is possible only with allow_http_for_loopback
// and only to a literal loopback address (127.0.0.0/8, [::1]) — for tests.
//
// Fetch() BLOCKS the calling thread for up to `timeout` (default 2 s). JwtVerifier calls
// it from its background refresher (start-up load, refresh before keys age out) and, on
// the verifying thread, only for an unknown kid or an issuer with no keys yet, rate-limited
// per issuer (min_refresh_interval). Not thread-safe: one Fetch() at a time (JwtVerifier
// serializes them per issuer).
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto fetcher, CurlJwksFetcher::Create({.ca_file = ca}));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string body, fetcher->Fetch("https://idp/jwks"));
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/auth/jwt/jwks.h"

namespace interlock::auth::jwt {

class JwksFetcher {
 public:
  virtual ~JwksFetcher() = default;
  // GETs `url` and returns the body of a 200 response. Errors: INVALID_ARGUMENT for a URL
  // this fetcher refuses (scheme, host), DEADLINE_EXCEEDED on timeout, RESOURCE_EXHAUSTED
  // for a body over the cap, UNAVAILABLE for any other transport or HTTP failure.
  virtual absl::StatusOr<std::string> Fetch(const std::string& url) = 0;
};

struct CurlFetcherOptions {
  // PEM file of CAs trusted for the issuer's HTTPS server; empty: the system's store.
  std::string ca_file;
  // Whole transfer (DNS, connect, TLS, body).
  absl::Duration timeout = absl::Seconds(2);
  // Larger bodies are refused (RESOURCE_EXHAUSTED) while being received.
  size_t max_body_bytes = kMaxJwksBytes;
  // Tests only: also allow http:// to a literal loopback address.
  bool allow_http_for_loopback = false;
};

class CurlJwksFetcher final : public JwksFetcher {
 public:
  // INVALID_ARGUMENT when the options are unusable (non-positive timeout or body cap,
  // unreadable ca_file).
  static absl::StatusOr<std::unique_ptr<CurlJwksFetcher>> Create(CurlFetcherOptions options);

  absl::StatusOr<std::string> Fetch(const std::string& url) override;

 private:
  explicit CurlJwksFetcher(CurlFetcherOptions options) : options_(std::move(options)) {}
  CurlFetcherOptions options_;
};

}  // namespace interlock::auth::jwt
