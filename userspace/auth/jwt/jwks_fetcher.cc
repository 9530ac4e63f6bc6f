#include "userspace/auth/jwt/jwks_fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace interlock::auth::jwt {

namespace {

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlUrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringFree {
  void operator()(char* s) const { curl_free(s); }
};
using CurlString = std::unique_ptr<char, CurlStringFree>;

// curl_global_init is not thread-safe with respect to other curl calls; do it once, first.
absl::Status GlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

// A literal IPv4 address in 127.0.0.0/8 or the IPv6 loopback; host names never qualify
// (they would be resolved, and resolution is not ours to trust).
bool IsLoopbackLiteral(absl::string_view host) {
  std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  absl::string_view inner = host;
  if (absl::ConsumePrefix(&inner, "[") && absl::ConsumeSuffix(&inner, "]")) {
    in6_addr v6;
    std::string s(inner);
    return inet_pton(AF_INET6, s.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

struct Body {
  std::string data;
  size_t max = 0;
  bool too_big = false;
};

size_t OnData(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* body = static_cast<Body*>(userdata);
  size_t n = size * nmemb;
  if (body->data.size() + n > body->max) {
    body->too_big = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  body->data.append(ptr, n);
  return n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CurlJwksFetcher>> CurlJwksFetcher::Create(
    CurlFetcherOptions options) {
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("jwks fetcher: timeout must be positive");
  }
  if (options.max_body_bytes == 0) {
    return absl::InvalidArgumentError("jwks fetcher: max_body_bytes must be positive");
  }
  if (!options.ca_file.empty() && ::access(options.ca_file.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("jwks fetcher: ca_file ", options.ca_file, " is not readable"));
  }
  if (absl::Status s = GlobalInit(); !s.ok()) return s;
  return std::unique_ptr<CurlJwksFetcher>(new CurlJwksFetcher(std::move(options)));
}

absl::StatusOr<std::string> CurlJwksFetcher::Fetch(const std::string& url) {
  // Parse once, check scheme and host, and hand curl the very same parsed URL
  // (CURLOPT_CURLU), so what is checked is what is fetched.
  std::unique_ptr<CURLU, CurlUrlFree> u(curl_url());
  if (u == nullptr) return absl::InternalError("curl_url: out of memory");
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("fetch: invalid url ", url));
  }
  char* raw = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &raw, 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("fetch: no scheme in ", url));
  }
  CurlString scheme(raw);
  raw = nullptr;
  if (curl_url_get(u.get(), CURLUPART_HOST, &raw, 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("fetch: no host in ", url));
  }
  CurlString host(raw);
  const bool https = absl::EqualsIgnoreCase(scheme.get(), "https");
  const bool http = absl::EqualsIgnoreCase(scheme.get(), "http");
  if (http && !(options_.allow_http_for_loopback && IsLoopbackLiteral(host.get()))) {
    return absl::InvalidArgumentError(absl::StrCat("fetch: ", url, " is not https"));
  }
  if (!https && !http) {
    return absl::InvalidArgumentError(absl::StrCat("fetch: ", url, " is not https"));
  }

  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  Body body{.max = options_.max_body_bytes};
  char errbuf[CURL_ERROR_SIZE] = {0};
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options_.timeout));
  bool ok = true;
  auto set = [&ok](CURLcode rc) { ok &= rc == CURLE_OK; };
  set(curl_easy_setopt(c, CURLOPT_CURLU, u.get()));
  set(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, https ? "https" : "http"));
  set(curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(c, CURLOPT_PROXY, ""));  // ignore *_proxy environment variables
  set(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms));
  set(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms));
  set(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(options_.max_body_bytes)));
  set(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnData));
  set(curl_easy_setopt(c, CURLOPT_WRITEDATA, &body));
  set(curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf));
  set(curl_easy_setopt(c, CURLOPT_USERAGENT, "interlockd-jwks"));
  if (https) {
    set(curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L));
    set(curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L));
    set(curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
    if (!options_.ca_file.empty()) {
      // Trust exactly the issuer's CAs, not also the system directory.
      set(curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str()));
      set(curl_easy_setopt(c, CURLOPT_CAPATH, nullptr));
    }
  }
  if (!ok) return absl::InternalError(absl::StrCat("fetch ", url, ": curl_easy_setopt failed"));

  CURLcode rc = curl_easy_perform(c);
  if (body.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("fetch ", url, ": body larger than ", options_.max_body_bytes, " bytes"));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat("fetch ", url, ": timed out after ", absl::FormatDuration(options_.timeout)));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("fetch ", url, ": ", curl_easy_strerror(rc),
                     errbuf[0] != 0 ? absl::StrCat(" (", errbuf, ")") : std::string()));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat("fetch ", url, ": http status ", status));
  }
  return std::move(body.data);
}

}  // namespace interlock::auth::jwt
