#include "userspace/auth/jwt/oidc_verifier.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/file_util.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"

namespace interlock::auth::jwt {

using google::protobuf::Struct;
using google::protobuf::Value;

struct JwtVerifier::Issuer {
  IssuerConfig config;
  std::vector<Alg> algs;
  std::shared_ptr<JwksFetcher> fetcher;  // HTTPS issuers only
  mutable std::mutex fetch_mu;           // one fetch at a time (caller's or worker's)

  // The key cache, guarded by JwtVerifier::mu_.
  std::optional<KeySet> keys;                  // nullopt until the first successful load
  absl::Duration loaded_at;                    // monotonic time of that load
  std::optional<absl::Duration> last_attempt;  // monotonic time of the last load attempt
  std::string discovered_jwks_uri;             // discovery issuers: from the last document
  std::string last_error;                      // of the last failed attempt
};

struct JwtVerifier::Loaded {
  absl::Status status;  // OK, or kKeyFetchFailed with the reason
  std::optional<KeySet> keys;
  std::string discovered_jwks_uri;  // what the issuer's discovered uri should be now
};

namespace {

// Untrusted text (from a token or a fetched document) made safe for a log line: at most
// 64 bytes, C-escaped, quoted.
std::string Quote(absl::string_view untrusted) {
  constexpr size_t kMax = 64;
  std::string out = absl::StrCat("\"", absl::CHexEscape(untrusted.substr(0, kMax)));
  if (untrusted.size() > kMax) absl::StrAppend(&out, "...");
  absl::StrAppend(&out, "\"");
  return out;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string FormatSeconds(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))), "s");
}

// The claim at `path`: the top-level member of exactly that name if there is one, else
// the dotted path through nested objects. nullptr when absent (JSON null counts as absent).
const Value* ClaimAt(const Struct& claims, absl::string_view path) {
  auto it = claims.fields().find(std::string(path));
  if (it != claims.fields().end()) {
    return it->second.kind_case() == Value::kNullValue ? nullptr : &it->second;
  }
  std::vector<absl::string_view> segments = absl::StrSplit(path, '.');
  if (segments.size() < 2) return nullptr;
  const Struct* cur = &claims;
  for (size_t i = 0; i < segments.size(); ++i) {
    auto member = cur->fields().find(std::string(segments[i]));
    if (member == cur->fields().end()) return nullptr;
    const Value& v = member->second;
    if (i + 1 == segments.size()) return v.kind_case() == Value::kNullValue ? nullptr : &v;
    if (v.kind_case() != Value::kStructValue) return nullptr;
    cur = &v.struct_value();
  }
  return nullptr;
}

// A NumericDate claim (RFC 7519 §2: seconds since the epoch, may be fractional). nullopt
// when absent; malformed when not a number in [0, year 9999].
absl::StatusOr<std::optional<absl::Time>> NumericDate(const Struct& claims, const char* name) {
  auto it = claims.fields().find(name);
  if (it == claims.fields().end()) return std::optional<absl::Time>();
  constexpr double kMaxSeconds = 253402300799.0;  // 9999-12-31T23:59:59Z
  double v = it->second.number_value();
  if (it->second.kind_case() != Value::kNumberValue || !std::isfinite(v) || v < 0 ||
      v > kMaxSeconds) {
    return Fail(Reason::kMalformed, absl::StrCat("claim \"", name, "\" is not a NumericDate"));
  }
  return std::optional<absl::Time>(absl::FromUnixMicros(static_cast<int64_t>(v * 1e6)));
}

// The candidate keys for (kid, alg) in `keys`, or why there is none and whether a fresh
// JWKS could change that.
struct Pick {
  std::vector<const Jwk*> keys;  // empty: see reason/detail
  Reason reason = Reason::kUnknownKid;
  std::string detail;
  bool refetch_may_help = false;

  absl::StatusOr<std::vector<const Jwk*>> Result() && {
    if (!keys.empty()) return std::move(keys);
    return Fail(reason, detail);
  }
};

Pick PickKeys(const KeySet& keys, absl::string_view kid, Alg alg) {
  Pick pick;
  if (!kid.empty()) {
    std::vector<const Jwk*> with_kid = keys.WithKid(kid);
    if (with_kid.empty()) {
      pick.detail = absl::StrCat("kid ", Quote(kid), " is not in the issuer's JWKS");
      pick.refetch_may_help = true;
      return pick;
    }
    for (const Jwk* k : with_kid) {
      if (k->Fits(alg)) pick.keys.push_back(k);
    }
    if (pick.keys.empty()) {
      const Jwk& k = *with_kid.front();
      pick.reason = Reason::kAlgNotAllowed;
      pick.detail = absl::StrCat("key ", Quote(kid), " is ", KeyTypeName(k.type),
                                 k.alg.has_value() ? absl::StrCat(" for ", AlgName(*k.alg)) : "",
                                 ", it cannot verify ", AlgName(alg));
    }
    return pick;
  }
  std::vector<const Jwk*> fitting = keys.Fitting(alg);
  if (fitting.size() == 1) {
    pick.keys = std::move(fitting);
  } else if (fitting.empty()) {
    pick.detail = absl::StrCat("token has no kid and no key of the issuer fits ", AlgName(alg));
    pick.refetch_may_help = true;
  } else {
    pick.detail = absl::StrCat("token has no kid and ", fitting.size(), " keys of the issuer fit ",
                               AlgName(alg));
  }
  return pick;
}

absl::Status ValidateIssuer(const IssuerConfig& c, std::vector<Alg>* algs) {
  if (c.audiences.empty()) return absl::InvalidArgumentError("audiences: at least one is required");
  for (const std::string& a : c.audiences) {
    if (a.empty()) return absl::InvalidArgumentError("audiences: empty audience");
  }
  if (c.algorithms.empty()) {
    return absl::InvalidArgumentError("algorithms: at least one must be pinned");
  }
  for (const std::string& name : c.algorithms) {
    if (absl::EqualsIgnoreCase(name, "none")) {
      return absl::InvalidArgumentError("algorithms: \"none\" is never accepted");
    }
    if (absl::StartsWithIgnoreCase(name, "HS")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "algorithms: ", name, " is symmetric and never accepted (the key would be public)"));
    }
    std::optional<Alg> alg = ParseAlg(name);
    if (!alg.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("algorithms: unsupported ", Quote(name),
                                                     " (supported: RS256, PS256, ES256, EdDSA)"));
    }
    if (std::find(algs->begin(), algs->end(), *alg) == algs->end()) algs->push_back(*alg);
  }
  int sources = !c.jwks_file.empty() + !c.jwks_uri.empty() + c.discovery;
  if (sources != 1) {
    return absl::InvalidArgumentError("exactly one of jwks_file, jwks_uri, discovery is required");
  }
  if (c.clock_skew < absl::ZeroDuration()) return absl::InvalidArgumentError("clock_skew < 0");
  if (c.groups_claim.empty()) return absl::InvalidArgumentError("groups_claim is empty");
  if (c.max_token_lifetime < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_token_lifetime < 0");
  }
  if (c.min_refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("min_refresh_interval < 1s");
  }
  if (c.jwks_max_age <= absl::ZeroDuration())
    return absl::InvalidArgumentError("jwks_max_age <= 0");
  if (c.fetch_timeout <= absl::ZeroDuration())
    return absl::InvalidArgumentError("fetch_timeout <= 0");
  return absl::OkStatus();
}

// OpenID Connect Discovery 1.0 §4: the issuer without its trailing '/', then the
// well-known path.
std::string DiscoveryUrl(absl::string_view issuer) {
  absl::ConsumeSuffix(&issuer, "/");
  return absl::StrCat(issuer, "/.well-known/openid-configuration");
}

}  // namespace

JwtVerifier::JwtVerifier(const Clock& clock, std::map<std::string, std::unique_ptr<Issuer>> issuers)
    : clock_(clock), issuers_(std::move(issuers)) {}

JwtVerifier::~JwtVerifier() { StopRefresher(); }

void JwtVerifier::StopRefresher() {
  {
    std::lock_guard<std::mutex> lock(worker_mu_);
    stop_ = true;
  }
  worker_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void JwtVerifier::RefreshLoop() {
  std::unique_lock<std::mutex> wlock(worker_mu_);
  while (!stop_) {
    const absl::Duration now = clock_.Monotonic();
    std::vector<std::pair<Issuer*, std::string>> due;  // issuer, its discovered jwks_uri
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [name, is] : issuers_) {
        if (!is->config.jwks_file.empty()) continue;  // files: re-read on the caller's thread
        absl::Duration at = absl::ZeroDuration();
        if (is->keys.has_value()) at = is->loaded_at + is->config.jwks_max_age / 2;
        if (is->last_attempt.has_value()) at = std::max(at, *is->last_attempt + is->config.min_refresh_interval);
        if (at <= now) due.emplace_back(is.get(), is->discovered_jwks_uri);
      }
    }
    if (due.empty()) {
      worker_cv_.wait_for(wlock, std::chrono::seconds(1));
      continue;
    }
    wlock.unlock();
    for (auto& [is, uri] : due) {
      // last_attempt is set only once this fetch is done: a caller that finds no keys
      // meanwhile is not rate-limited by it, it waits for the fetch lock and loads itself.
      Loaded loaded = Load(*is, std::move(uri));
      std::lock_guard<std::mutex> lock(mu_);
      absl::Status st = Install(*is, std::move(loaded), now);
      if (!st.ok()) {
        INTERLOCK_LOG(kWarning, "jwt issuer %s: background key refresh failed: %s", Quote(is->config.issuer),
                      st.message());
      }
    }
    wlock.lock();
  }
}

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(
    std::vector<IssuerConfig> configs, const Clock& clock, std::shared_ptr<JwksFetcher> fetcher,
    bool background_refresh) {
  if (configs.empty()) return absl::InvalidArgumentError("jwt: no issuer configured");
  std::map<std::string, std::unique_ptr<Issuer>> issuers;
  for (IssuerConfig& c : configs) {
    if (c.issuer.empty()) return absl::InvalidArgumentError("jwt issuer: empty issuer");
    std::string where = absl::StrCat("jwt issuer ", Quote(c.issuer));
    if (issuers.count(c.issuer) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": configured twice"));
    }
    auto issuer = std::make_unique<Issuer>();
    INTERLOCK_RETURN_IF_ERROR(Annotate(ValidateIssuer(c, &issuer->algs), where));
    if (c.jwks_file.empty()) {
      if (fetcher != nullptr) {
        issuer->fetcher = fetcher;
      } else {
        absl::StatusOr<std::unique_ptr<CurlJwksFetcher>> curl =
            CurlJwksFetcher::Create({.ca_file = c.ca_file, .timeout = c.fetch_timeout});
        if (!curl.ok()) return Annotate(curl.status(), where);
        issuer->fetcher = *std::move(curl);
      }
    }
    issuer->config = std::move(c);
    std::string name = issuer->config.issuer;
    issuers.emplace(std::move(name), std::move(issuer));
  }
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(clock, std::move(issuers)));
  bool any_https = false;
  {
    std::lock_guard<std::mutex> lock(verifier->mu_);
    for (auto& [name, issuer] : verifier->issuers_) {
      if (issuer->config.jwks_file.empty()) {
        any_https = true;
        continue;
      }
      absl::Status loaded = verifier->Refresh(*issuer);
      if (!loaded.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("jwt issuer ", Quote(name), ": ", loaded.message()));
      }
    }
  }
  if (background_refresh && any_https) {
    verifier->background_ = true;
    JwtVerifier* v = verifier.get();
    verifier->worker_ = std::thread([v] { v->RefreshLoop(); });
  }
  return verifier;
}

absl::Status JwtVerifier::Refresh(Issuer& is) const {
  const absl::Duration started = clock_.Monotonic();
  is.last_attempt = started;
  return Install(is, Load(is, is.discovered_jwks_uri), started);
}

JwtVerifier::Loaded JwtVerifier::Load(const Issuer& is, std::string discovered_uri) const {
  const IssuerConfig& c = is.config;
  Loaded out;
  out.discovered_jwks_uri = std::move(discovered_uri);
  auto failed = [&out](absl::string_view why) {
    out.status = Fail(Reason::kKeyFetchFailed, why);
    return std::move(out);
  };

  std::string body;
  if (!c.jwks_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(c.jwks_file);
    if (!text.ok()) return failed(text.status().message());
    body = *std::move(text);
  } else {
    std::lock_guard<std::mutex> fetching(is.fetch_mu);
    std::string uri = c.jwks_uri;
    if (c.discovery) {
      if (out.discovered_jwks_uri.empty()) {
        absl::StatusOr<std::string> doc_text = is.fetcher->Fetch(DiscoveryUrl(c.issuer));
        if (!doc_text.ok()) return failed(absl::StrCat("discovery: ", doc_text.status().message()));
        if (doc_text->size() > kMaxJwksBytes) return failed("discovery: document too large");
        absl::StatusOr<Struct> doc = ParseJsonObject(*doc_text);
        if (!doc.ok()) return failed(absl::StrCat("discovery: ", doc.status().message()));
        const Value* doc_issuer = ClaimAt(*doc, "issuer");
        // OIDC Discovery §4.3: the document must be about this very issuer.
        if (doc_issuer == nullptr || doc_issuer->kind_case() != Value::kStringValue ||
            doc_issuer->string_value() != c.issuer) {
          return failed("discovery: the document's \"issuer\" is not the configured issuer");
        }
        const Value* jwks_uri = ClaimAt(*doc, "jwks_uri");
        if (jwks_uri == nullptr || jwks_uri->kind_case() != Value::kStringValue ||
            jwks_uri->string_value().empty()) {
          return failed("discovery: no \"jwks_uri\"");
        }
        out.discovered_jwks_uri = jwks_uri->string_value();
      }
      uri = out.discovered_jwks_uri;
    }
    absl::StatusOr<std::string> text = is.fetcher->Fetch(uri);
    if (!text.ok()) {
      out.discovered_jwks_uri.clear();  // the next attempt rediscovers; the IdP may have moved
      return failed(text.status().message());
    }
    body = *std::move(text);
  }

  std::vector<std::string> notes;
  absl::StatusOr<KeySet> keys = KeySet::Parse(body, &notes);
  for (const std::string& note : notes) {
    INTERLOCK_LOG(kWarning, "jwt issuer %s: %s", Quote(c.issuer), note);
  }
  if (!keys.ok()) return failed(keys.status().message());
  if (keys->empty()) return failed("the jwks has no usable key");
  out.keys = *std::move(keys);
  return out;
}

absl::Status JwtVerifier::Install(Issuer& is, Loaded loaded, absl::Duration started) const {
  is.last_attempt = std::max(is.last_attempt.value_or(started), started);
  // A load that began later (a caller's, for an unknown kid, while the worker's fetch was
  // in flight) has already installed newer keys: this older outcome must not replace them.
  if (is.keys.has_value() && is.loaded_at > started) return loaded.status;
  is.discovered_jwks_uri = std::move(loaded.discovered_jwks_uri);
  if (!loaded.status.ok()) {
    is.last_error = std::string(loaded.status.message());
    return loaded.status;
  }
  is.keys = *std::move(loaded.keys);
  is.loaded_at = started;
  is.last_error.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<const Jwk*>> JwtVerifier::SelectKeys(Issuer& is, absl::string_view kid,
                                                                Alg alg) const {
  const absl::Duration now = clock_.Monotonic();
  auto next_allowed = [&]() -> absl::Duration {
    if (!is.last_attempt.has_value()) return absl::ZeroDuration();
    return std::max(absl::ZeroDuration(), *is.last_attempt + is.config.min_refresh_interval - now);
  };

  bool refreshed = false;
  // Stale keys are the worker's to refresh in the background; a caller fetches only when
  // there is nothing to verify with at all (or for an unknown kid, below).
  const bool https = is.config.jwks_file.empty();
  const bool stale = now - is.loaded_at >= is.config.jwks_max_age;
  if (!is.keys.has_value() || (stale && !(background_ && https))) {
    if (next_allowed() == absl::ZeroDuration()) {
      absl::Status s = Refresh(is);
      refreshed = true;
      if (!s.ok()) {
        INTERLOCK_LOG(kWarning, "jwt issuer %s: key refresh failed: %s", Quote(is.config.issuer),
                      s.message());
        if (!is.keys.has_value()) return s;
        // Stale keys remain in use until a refresh succeeds.
      }
    } else if (!is.keys.has_value()) {
      return Fail(Reason::kKeyFetchFailed,
                  absl::StrCat(is.last_error, " (retry in ", FormatSeconds(next_allowed()), ")"));
    }
  }

  Pick pick = PickKeys(*is.keys, kid, alg);
  if (!pick.keys.empty() || !pick.refetch_may_help || refreshed) return std::move(pick).Result();
  if (absl::Duration wait = next_allowed(); wait > absl::ZeroDuration()) {
    return Fail(pick.reason,
                absl::StrCat(pick.detail, "; refetch rate-limited, next in ", FormatSeconds(wait)));
  }
  INTERLOCK_RETURN_IF_ERROR(Refresh(is));
  return PickKeys(*is.keys, kid, alg).Result();
}

absl::StatusOr<TokenClaims> JwtVerifier::Verify(absl::string_view token,
                                                const TokenContext& context) const {
  if (token.size() > kMaxTokenBytes) {
    return Fail(Reason::kMalformed,
                absl::StrCat("token of ", token.size(), " bytes > max ", kMaxTokenBytes));
  }
  INTERLOCK_ASSIGN_OR_RETURN(Jws jws, DecodeJws(token));
  if (absl::EqualsIgnoreCase(jws.alg, "none")) {
    return Fail(Reason::kAlgNone, "unsigned token (alg \"none\")");
  }
  std::optional<Alg> alg = ParseAlg(jws.alg);
  if (!alg.has_value()) {
    return Fail(Reason::kAlgNotAllowed,
                absl::StartsWithIgnoreCase(jws.alg, "HS")
                    ? absl::StrCat("symmetric alg ", Quote(jws.alg), " is never accepted")
                    : absl::StrCat("alg ", Quote(jws.alg), " is not supported"));
  }
  const Struct& payload = jws.payload;

  // The issuer, to know which keys to use. Trusted only once the signature verifies with
  // that issuer's keys.
  auto iss = payload.fields().find("iss");
  if (iss == payload.fields().end()) return Fail(Reason::kMissingClaim, "no \"iss\"");
  if (iss->second.kind_case() != Value::kStringValue) {
    return Fail(Reason::kMalformed, "claim \"iss\" is not a string");
  }
  auto found = issuers_.find(iss->second.string_value());
  if (found == issuers_.end()) {
    return Fail(Reason::kWrongIssuer,
                absl::StrCat("issuer ", Quote(iss->second.string_value()), " is not configured"));
  }
  Issuer& is = *found->second;
  const IssuerConfig& c = is.config;
  if (std::find(is.algs.begin(), is.algs.end(), *alg) == is.algs.end()) {
    return Fail(Reason::kAlgNotAllowed,
                absl::StrCat("alg ", AlgName(*alg), " is not pinned for issuer ", Quote(c.issuer),
                             " (allowed: ", absl::StrJoin(c.algorithms, ", "), ")"));
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    INTERLOCK_ASSIGN_OR_RETURN(std::vector<const Jwk*> keys, SelectKeys(is, jws.kid, *alg));
    absl::Status verified = Fail(Reason::kBadSignature, "no key");
    for (const Jwk* k : keys) {
      verified = VerifySignature(*alg, k->key.get(), jws.signing_input, jws.signature,
                                 SignatureRules{.require_low_s = c.require_low_s});
      if (verified.ok()) break;
    }
    INTERLOCK_RETURN_IF_ERROR(verified);
  }

  TokenClaims claims;
  claims.issuer = c.issuer;

  // aud: RFC 7519 §4.1.3, a string or an array of strings.
  auto aud = payload.fields().find("aud");
  if (aud == payload.fields().end()) return Fail(Reason::kMissingClaim, "no \"aud\"");
  std::vector<std::string> token_auds;
  if (aud->second.kind_case() == Value::kStringValue) {
    token_auds.push_back(aud->second.string_value());
  } else if (aud->second.kind_case() == Value::kListValue) {
    for (const Value& v : aud->second.list_value().values()) {
      if (v.kind_case() != Value::kStringValue) {
        return Fail(Reason::kMalformed, "claim \"aud\" holds a non-string");
      }
      token_auds.push_back(v.string_value());
    }
  } else {
    return Fail(Reason::kMalformed, "claim \"aud\" is neither a string nor an array");
  }
  for (const std::string& a : token_auds) {
    if (std::find(c.audiences.begin(), c.audiences.end(), a) != c.audiences.end()) {
      claims.audience = a;
      break;
    }
  }
  if (claims.audience.empty()) {
    std::vector<std::string> shown;
    for (size_t i = 0; i < token_auds.size() && i < 3; ++i) shown.push_back(Quote(token_auds[i]));
    if (token_auds.size() > 3) shown.push_back("...");
    return Fail(Reason::kWrongAudience,
                absl::StrCat("aud [", absl::StrJoin(shown, ", "), "] names none of the issuer's ",
                             c.audiences.size(), " audiences"));
  }

  // Times: RFC 7519 §4.1.4-6, each with the configured skew.
  const absl::Time now = clock_.Now();
  const absl::Duration skew = c.clock_skew;
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<absl::Time> exp, NumericDate(payload, "exp"));
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<absl::Time> nbf, NumericDate(payload, "nbf"));
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<absl::Time> iat, NumericDate(payload, "iat"));
  if (!exp.has_value() && (c.require_exp || c.max_token_lifetime > absl::ZeroDuration())) {
    return Fail(Reason::kMissingClaim, "no \"exp\"");
  }
  std::string skew_text = absl::StrCat(" (clock skew ", FormatSeconds(skew), ")");
  if (exp.has_value() && *exp <= now - skew) {
    return Fail(Reason::kExpired,
                absl::StrCat("expired at ", Rfc3339(*exp), ", now ", Rfc3339(now), skew_text));
  }
  if (nbf.has_value() && *nbf > now + skew) {
    return Fail(Reason::kNotYetValid, absl::StrCat("not valid before ", Rfc3339(*nbf), ", now ",
                                                   Rfc3339(now), skew_text));
  }
  if (iat.has_value() && *iat > now + skew) {
    return Fail(Reason::kIssuedInFuture,
                absl::StrCat("issued at ", Rfc3339(*iat), ", now ", Rfc3339(now), skew_text));
  }
  if (c.max_token_lifetime > absl::ZeroDuration()) {
    if (!iat.has_value()) return Fail(Reason::kMissingClaim, "no \"iat\" (max lifetime is set)");
    if (*exp - *iat > c.max_token_lifetime) {
      return Fail(Reason::kExpired,
                  absl::StrCat("lifetime ", FormatSeconds(*exp - *iat), " exceeds the max ",
                               FormatSeconds(c.max_token_lifetime)));
    }
  }
  claims.expires_at = exp.value_or(absl::InfiniteFuture());

  // sub: who the token is about; policy subjects match on it.
  auto sub = payload.fields().find("sub");
  if (sub == payload.fields().end()) return Fail(Reason::kMissingClaim, "no \"sub\"");
  if (sub->second.kind_case() != Value::kStringValue) {
    return Fail(Reason::kMalformed, "claim \"sub\" is not a string");
  }
  claims.subject = sub->second.string_value();

  // Groups. A claim of the wrong shape fails closed: a policy that denies a group must not
  // be dodged by a token whose groups the verifier could not read.
  if (const Value* groups = ClaimAt(payload, c.groups_claim); groups != nullptr) {
    if (groups->kind_case() == Value::kStringValue) {
      claims.groups.push_back(groups->string_value());
    } else if (groups->kind_case() == Value::kListValue) {
      for (const Value& g : groups->list_value().values()) {
        if (g.kind_case() != Value::kStringValue) {
          return Fail(Reason::kMalformed,
                      absl::StrCat("groups claim ", Quote(c.groups_claim), " holds a non-string"));
        }
        claims.groups.push_back(g.string_value());
      }
    } else {
      return Fail(Reason::kMalformed, absl::StrCat("groups claim ", Quote(c.groups_claim),
                                                   " is neither a string nor an array"));
    }
  }

  for (const auto& [name, value] : payload.fields()) {
    if (value.kind_case() == Value::kStringValue) claims.string_claims[name] = value.string_value();
  }
  if (auto azp = claims.string_claims.find("azp"); azp != claims.string_claims.end()) {
    claims.azp = azp->second;
  } else if (auto cid = claims.string_claims.find("client_id"); cid != claims.string_claims.end()) {
    claims.azp = cid->second;
  }
  claims.token_sha256 = Sha256Hex(token);
  return claims;
}

}  // namespace interlock::auth::jwt
