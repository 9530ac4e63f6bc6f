// JwtVerifier: every rejection reason, claims extraction, key rotation through refetch
// and its rate limit, with a fake clock and a fake fetcher (no network).
#include "userspace/auth/jwt/oidc_verifier.h"

#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_issuer.h"
#include "userspace/common/file_util.h"

namespace interlock::auth::jwt {
namespace {

using ::interlock::testing::Base64Url;
using ::interlock::testing::FakeClock;
using ::interlock::testing::JsonObject;
using ::interlock::testing::TestIssuer;
using ::interlock::testing::TestKeyKind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using namespace std::string_literals;

constexpr char kIssuer[] = "https://idp.test/realms/agents";
constexpr char kDiscoveryUrl[] = "https://idp.test/realms/agents/.well-known/openid-configuration";
constexpr char kJwksUrl[] = "https://idp.test/realms/agents/protocol/openid-connect/certs";

// Serves canned bodies by URL and counts requests.
class FakeFetcher final : public JwksFetcher {
 public:
  absl::StatusOr<std::string> Fetch(const std::string& url) override {
    ++calls[url];
    auto it = bodies.find(url);
    if (it == bodies.end())
      return absl::UnavailableError(absl::StrCat("fetch ", url, ": http status 404"));
    return it->second;
  }
  int Calls(const std::string& url) const {
    auto it = calls.find(url);
    return it == calls.end() ? 0 : it->second;
  }
  std::map<std::string, absl::StatusOr<std::string>> bodies;
  std::map<std::string, int> calls;
};

std::string DiscoveryDoc(const std::string& issuer, const std::string& jwks_uri) {
  return JsonObject()
      .Str("issuer", issuer)
      .Str("jwks_uri", jwks_uri)
      .Str("authorization_endpoint", issuer + "/auth")
      .Strs("id_token_signing_alg_values_supported", {"RS256"})
      .Json();
}

class JwtVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    idp_ = TestIssuer::Create(kIssuer).value().release();
    for (auto [kid, kind] :
         std::vector<std::pair<std::string, TestKeyKind>>{{"rsa-1", TestKeyKind::kRsa2048},
                                                          {"rsa-2", TestKeyKind::kRsa2048},
                                                          {"ec-1", TestKeyKind::kP256},
                                                          {"ed-1", TestKeyKind::kEd25519},
                                                          {"weak", TestKeyKind::kRsa1024}}) {
      ASSERT_TRUE(idp_->AddKey(kid, kind).ok());
    }
  }
  static void TearDownTestSuite() { delete idp_; }

  void SetUp() override {
    fetcher_ = std::make_shared<FakeFetcher>();
    fetcher_->bodies[kDiscoveryUrl] = DiscoveryDoc(kIssuer, kJwksUrl);
    fetcher_->bodies[kJwksUrl] = idp_->Jwks({"rsa-1", "ec-1", "ed-1"});
  }

  static IssuerConfig Config() {
    return IssuerConfig{
        .issuer = kIssuer,
        .audiences = {"interlock", "interlock-staging"},
        .algorithms = {"RS256", "PS256", "ES256", "EdDSA"},
        .discovery = true,
        .groups_claim = "realm_access.roles",
    };
  }

  std::unique_ptr<JwtVerifier> Make(IssuerConfig config) {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
        JwtVerifier::Create({config}, clock_, fetcher_);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *std::move(v) : nullptr;
  }

  JsonObject Claims() const { return idp_->StandardClaims(clock_.Now()); }

  std::string Mint(const std::string& kid, absl::string_view alg, const JsonObject& claims) const {
    absl::StatusOr<std::string> token = idp_->Mint(kid, alg, claims);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }

  static std::string Reason(const absl::StatusOr<TokenClaims>& r) {
    return r.ok() ? "ok" : std::string(JwtVerifier::ReasonOf(r.status()));
  }

  static TestIssuer* idp_;
  FakeClock clock_;
  std::shared_ptr<FakeFetcher> fetcher_;
  TokenContext ctx_{.workload = "billing-agent", .cgroup_id = 42};
};
TestIssuer* JwtVerifierTest::idp_ = nullptr;

TEST_F(JwtVerifierTest, AcceptsEachAlgorithm) {
  auto v = Make(Config());
  for (auto [kid, alg] : std::vector<std::pair<std::string, std::string>>{
           {"rsa-1", "RS256"}, {"rsa-1", "PS256"}, {"ec-1", "ES256"}, {"ed-1", "EdDSA"}}) {
    absl::StatusOr<TokenClaims> c = v->Verify(Mint(kid, alg, Claims()), ctx_);
    EXPECT_TRUE(c.ok()) << alg << ": " << c.status();
  }
  // One discovery and one JWKS fetch served all of them.
  EXPECT_EQ(fetcher_->Calls(kDiscoveryUrl), 1);
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 1);
}

// require_low_s: the (r, n-s) twin of an ES256 token is refused as bad_signature with
// its own message; the low-s form passes. Off (the default), both verify.
TEST_F(JwtVerifierTest, RequireLowSRefusesTheHighSTwin) {
  std::string token = Mint("ec-1", "ES256", Claims());
  std::string twin = ::interlock::testing::ReencodeEs256Token(token);
  std::string sig = ::interlock::testing::Base64UrlDecodeLenient(token.substr(token.rfind('.') + 1));
  const std::string& high = IsHighS(sig) ? token : twin;
  const std::string& low = IsHighS(sig) ? twin : token;
  auto lenient = Make(Config());
  EXPECT_EQ(Reason(lenient->Verify(high, ctx_)), "ok");
  EXPECT_EQ(Reason(lenient->Verify(low, ctx_)), "ok");
  IssuerConfig c = Config();
  c.require_low_s = true;
  auto strict = Make(c);
  EXPECT_EQ(Reason(strict->Verify(low, ctx_)), "ok");
  absl::StatusOr<TokenClaims> r = strict->Verify(high, ctx_);
  EXPECT_EQ(Reason(r), "bad_signature");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("high_s"));
}

TEST_F(JwtVerifierTest, ExtractsClaims) {
  auto v = Make(Config());
  JsonObject claims = Claims();
  claims.Strs("aud", {"other-service", "interlock-staging"})
      .Str("azp", "agent-cli")
      .Str("client_id", "ignored-when-azp")
      .Str("email", "bot@example.com")
      .Obj("realm_access", JsonObject().Strs("roles", {"db-readers", "ops"}))
      .Strs("groups", {"not-the-configured-claim"})
      .Raw("email_verified", "true");
  std::string token = Mint("ec-1", "ES256", claims);
  absl::StatusOr<TokenClaims> c = v->Verify(token, ctx_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->issuer, kIssuer);
  EXPECT_EQ(c->subject, "agent-1");
  EXPECT_EQ(c->audience, "interlock-staging");
  EXPECT_EQ(c->azp, "agent-cli");
  EXPECT_THAT(c->groups, ElementsAre("db-readers", "ops"));
  EXPECT_EQ(c->expires_at, clock_.Now() + absl::Hours(1));
  EXPECT_EQ(c->token_sha256, Sha256Hex(token));
  EXPECT_THAT(
      c->string_claims,
      ElementsAre(Pair("azp", "agent-cli"), Pair("client_id", "ignored-when-azp"),
                  Pair("email", "bot@example.com"), Pair("iss", kIssuer), Pair("sub", "agent-1")));

  // Without azp, client_id (Okta/Keycloak access tokens) names the client.
  claims.Erase("azp");
  c = v->Verify(Mint("ec-1", "ES256", claims), ctx_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->azp, "ignored-when-azp");
}

TEST_F(JwtVerifierTest, GroupsClaimShapes) {
  struct Case {
    std::string name;
    std::string groups_claim;
    std::string member;  // top-level member name
    std::string json;    // its value
    std::string want;    // "ok" or a reason
    std::vector<std::string> groups;
  };
  const std::vector<Case> cases = {
      {"array", "groups", "groups", R"(["a","b"])", "ok", {"a", "b"}},
      {"single string", "groups", "groups", R"("a")", "ok", {"a"}},
      {"absent", "groups", "other", R"(["a"])", "ok", {}},
      {"null", "groups", "groups", "null", "ok", {}},
      {"empty array", "groups", "groups", "[]", "ok", {}},
      {"nested path", "realm_access.roles", "realm_access", R"({"roles":["r1"]})", "ok", {"r1"}},
      {"deep path",
       "resource_access.my-client.roles",
       "resource_access",
       R"({"my-client":{"roles":["c1","c2"]},"other":{"roles":["x"]}})",
       "ok",
       {"c1", "c2"}},
      {"path through a non-object", "realm_access.roles", "realm_access", R"(["r1"])", "ok", {}},
      {"dotted top-level name",
       "https://example.com/groups",
       "https://example.com/groups",
       R"(["ns"])",
       "ok",
       {"ns"}},
      {"number", "groups", "groups", "7", "malformed", {}},
      {"object", "groups", "groups", R"({"a":1})", "malformed", {}},
      {"array with a number", "groups", "groups", R"(["a",1])", "malformed", {}},
      {"nested array", "groups", "groups", R"([["a"]])", "malformed", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IssuerConfig config = Config();
    config.groups_claim = c.groups_claim;
    auto v = Make(config);
    absl::StatusOr<TokenClaims> r =
        v->Verify(Mint("rsa-1", "RS256", Claims().Raw(c.member, c.json)), ctx_);
    EXPECT_EQ(Reason(r), c.want) << r.status();
    if (r.ok()) {
      EXPECT_EQ(r->groups, c.groups);
    }
  }
}

struct TimeCase {
  std::string name;
  absl::Duration iat, nbf, exp;  // relative to now
  std::string want;
};
void PrintTo(const TimeCase& c, std::ostream* os) { *os << c.name; }

class JwtVerifierTimeTest : public JwtVerifierTest,
                            public ::testing::WithParamInterface<TimeCase> {};

TEST_P(JwtVerifierTimeTest, HonorsSkewOnBothSides) {
  const TimeCase& c = GetParam();
  auto v = Make(Config());  // clock_skew 60 s
  int64_t now = absl::ToUnixSeconds(clock_.Now());
  JsonObject claims = Claims();
  claims.Int("iat", now + absl::ToInt64Seconds(c.iat))
      .Int("nbf", now + absl::ToInt64Seconds(c.nbf))
      .Int("exp", now + absl::ToInt64Seconds(c.exp));
  absl::StatusOr<TokenClaims> r = v->Verify(Mint("rsa-1", "RS256", claims), ctx_);
  EXPECT_EQ(Reason(r), c.want) << r.status();
}

constexpr absl::Duration kS = absl::Seconds(1);
INSTANTIATE_TEST_SUITE_P(
    Times, JwtVerifierTimeTest,
    ::testing::Values(TimeCase{"fresh", -10 * kS, -10 * kS, 3600 * kS, "ok"},
                      TimeCase{"expired beyond skew", -7200 * kS, -7200 * kS, -61 * kS, "expired"},
                      TimeCase{"expired exactly at skew", -7200 * kS, -7200 * kS, -60 * kS,
                               "expired"},
                      TimeCase{"expired within skew", -7200 * kS, -7200 * kS, -59 * kS, "ok"},
                      TimeCase{"nbf beyond skew", -10 * kS, 61 * kS, 3600 * kS, "not_yet_valid"},
                      TimeCase{"nbf exactly at skew", -10 * kS, 60 * kS, 3600 * kS, "ok"},
                      TimeCase{"nbf within skew", -10 * kS, 59 * kS, 3600 * kS, "ok"},
                      TimeCase{"iat beyond skew", 61 * kS, 0 * kS, 3600 * kS, "issued_in_future"},
                      TimeCase{"iat exactly at skew", 60 * kS, 0 * kS, 3600 * kS, "ok"},
                      TimeCase{"iat within skew", 59 * kS, 0 * kS, 3600 * kS, "ok"}),
    [](const ::testing::TestParamInfo<TimeCase>& info) {
      return absl::StrReplaceAll(info.param.name, {{" ", "_"}});
    });

TEST_F(JwtVerifierTest, SkewIsConfigurable) {
  IssuerConfig config = Config();
  config.clock_skew = absl::ZeroDuration();
  auto v = Make(config);
  int64_t now = absl::ToUnixSeconds(clock_.Now());
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Int("exp", now)), ctx_)), "expired");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Int("exp", now + 1)), ctx_)), "ok");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Int("nbf", now + 1)), ctx_)),
            "not_yet_valid");
  config.clock_skew = absl::Minutes(5);
  v = Make(config);
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Int("exp", now - 299)), ctx_)), "ok");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Int("nbf", now + 299)), ctx_)), "ok");
}

TEST_F(JwtVerifierTest, ExpAndLifetimeRules) {
  int64_t now = absl::ToUnixSeconds(clock_.Now());
  auto v = Make(Config());
  absl::StatusOr<TokenClaims> r = v->Verify(Mint("rsa-1", "RS256", Claims().Erase("exp")), ctx_);
  EXPECT_EQ(Reason(r), "missing_claim");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("\"exp\""));
  // Fractional NumericDates are valid; strings are not.
  EXPECT_EQ(Reason(v->Verify(
                Mint("rsa-1", "RS256", Claims().Raw("exp", absl::StrCat(now + 10, ".5"))), ctx_)),
            "ok");
  EXPECT_EQ(
      Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Str("exp", absl::StrCat(now + 10))), ctx_)),
      "malformed");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Raw("nbf", "-1")), ctx_)),
            "malformed");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Raw("iat", "1e300")), ctx_)),
            "malformed");

  IssuerConfig config = Config();
  config.require_exp = false;
  v = Make(config);
  r = v->Verify(Mint("rsa-1", "RS256", Claims().Erase("exp")), ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->expires_at, absl::InfiniteFuture());

  config = Config();
  config.max_token_lifetime = absl::Hours(1);
  v = Make(config);
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_)), "ok");  // exactly 1 h
  r = v->Verify(Mint("rsa-1", "RS256", Claims().Int("exp", now + 3601)), ctx_);
  EXPECT_EQ(Reason(r), "expired");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("lifetime 3601s exceeds the max 3600s"));
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Erase("iat")), ctx_)),
            "missing_claim");
}

TEST_F(JwtVerifierTest, Audience) {
  auto v = Make(Config());
  struct Case {
    std::string json;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {R"("interlock")", "ok"},
           {R"(["a","interlock"])", "ok"},
           {R"("Interlock")", "wrong_audience"},
           {R"("other")", "wrong_audience"},
           {R"(["a","b","c","d"])", "wrong_audience"},
           {R"([])", "wrong_audience"},
           {R"(7)", "malformed"},
           {R"(["interlock",7])", "malformed"},
       }) {
    EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Raw("aud", c.json)), ctx_)), c.want)
        << c.json;
  }
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Erase("aud")), ctx_)),
            "missing_claim");
}

TEST_F(JwtVerifierTest, IssuerAndSubject) {
  auto v = Make(Config());
  EXPECT_EQ(
      Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Str("iss", "https://evil.test")), ctx_)),
      "wrong_issuer");
  // Exact match: no trailing-slash or case folding.
  EXPECT_EQ(Reason(v->Verify(
                Mint("rsa-1", "RS256", Claims().Str("iss", absl::StrCat(kIssuer, "/"))), ctx_)),
            "wrong_issuer");
  EXPECT_EQ(
      Reason(v->Verify(
          Mint("rsa-1", "RS256", Claims().Str("iss", "HTTPS://IDP.TEST/realms/agents")), ctx_)),
      "wrong_issuer");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Erase("iss")), ctx_)),
            "missing_claim");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Raw("iss", "[]")), ctx_)),
            "malformed");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Erase("sub")), ctx_)),
            "missing_claim");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims().Int("sub", 5)), ctx_)), "malformed");
  // A wrong issuer costs no fetch.
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 1);
}

TEST_F(JwtVerifierTest, AlgNoneRejected) {
  auto v = Make(Config());
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    std::string token =
        TestIssuer::Unsigned(TestIssuer::Header(alg, "rsa-1").Json(), Claims().Json());
    EXPECT_EQ(Reason(v->Verify(token, ctx_)), "alg_none") << alg;
    // With a (meaningless) signature attached too.
    EXPECT_EQ(Reason(v->Verify(token + Base64Url("sig"), ctx_)), "alg_none") << alg;
  }
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 0);
}

TEST_F(JwtVerifierTest, HmacWithThePublicKeyAsSecretRejected) {
  // The classic confusion: RS256 verifier, token signed HS256 with the RSA public key
  // bytes as the HMAC secret. Must fail whatever the secret encoding.
  IssuerConfig config = Config();
  config.algorithms = {"RS256"};
  auto v = Make(config);
  std::string pem = idp_->PublicKeyPem("rsa-1");
  ASSERT_FALSE(pem.empty());
  for (const char* alg : {"HS256", "HS384", "HS512", "hs256"}) {
    for (const std::string& secret : {pem, idp_->PublicJwk("rsa-1").Json()}) {
      std::string token =
          TestIssuer::SignHs256(secret, TestIssuer::Header(alg, "rsa-1").Json(), Claims().Json());
      absl::StatusOr<TokenClaims> r = v->Verify(token, ctx_);
      EXPECT_EQ(Reason(r), "alg_not_allowed") << alg;
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("never accepted"));
    }
  }
}

TEST_F(JwtVerifierTest, AlgMustBePinnedForTheIssuer) {
  IssuerConfig config = Config();
  config.algorithms = {"RS256"};
  auto v = Make(config);
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_)), "ok");
  absl::StatusOr<TokenClaims> r = v->Verify(Mint("rsa-1", "PS256", Claims()), ctx_);
  EXPECT_EQ(Reason(r), "alg_not_allowed");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not pinned"));
  EXPECT_EQ(Reason(v->Verify(Mint("ec-1", "ES256", Claims()), ctx_)), "alg_not_allowed");
  EXPECT_EQ(Reason(v->Verify(Mint("ed-1", "EdDSA", Claims()), ctx_)), "alg_not_allowed");
  // Unsupported algorithms are refused before anything else.
  std::string rs512 =
      TestIssuer::Unsigned(TestIssuer::Header("RS512", "rsa-1").Json(), Claims().Json()) +
      Base64Url(std::string(256, 'x'));
  EXPECT_EQ(Reason(v->Verify(rs512, ctx_)), "alg_not_allowed");
}

TEST_F(JwtVerifierTest, AlgMustMatchTheKeyNamedByKid) {
  auto v = Make(Config());
  // ES256 signed with the EC key, but naming the RSA key's kid.
  std::string es_as_rsa =
      idp_->Sign("ec-1", "ES256", TestIssuer::Header("ES256", "rsa-1").Json(), Claims().Json())
          .value();
  absl::StatusOr<TokenClaims> r = v->Verify(es_as_rsa, ctx_);
  EXPECT_EQ(Reason(r), "alg_not_allowed");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is RSA, it cannot verify ES256"));
  std::string rs_as_ec =
      idp_->Sign("rsa-1", "RS256", TestIssuer::Header("RS256", "ec-1").Json(), Claims().Json())
          .value();
  EXPECT_EQ(Reason(v->Verify(rs_as_ec, ctx_)), "alg_not_allowed");
  std::string ed_as_ec =
      idp_->Sign("ed-1", "EdDSA", TestIssuer::Header("EdDSA", "ec-1").Json(), Claims().Json())
          .value();
  EXPECT_EQ(Reason(v->Verify(ed_as_ec, ctx_)), "alg_not_allowed");

  // A JWK "alg" pins the key to that one algorithm.
  fetcher_->bodies[kJwksUrl] = TestIssuer::JwksOf({idp_->PublicJwk("rsa-1").Str("alg", "PS256")});
  v = Make(Config());
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "PS256", Claims()), ctx_)), "ok");
  r = v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_);
  EXPECT_EQ(Reason(r), "alg_not_allowed");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is RSA for PS256"));
}

TEST_F(JwtVerifierTest, UnknownKidRefetchPicksUpRotationAtABoundedRate) {
  auto v = Make(Config());  // min_refresh_interval 30 s
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_)), "ok");
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 1);

  // The IdP rotates: rsa-2 appears. A token signed with it arrives 10 s after the first
  // fetch: refetching is not allowed yet.
  fetcher_->bodies[kJwksUrl] = idp_->Jwks({"rsa-1", "rsa-2"});
  clock_.Advance(absl::Seconds(10));
  std::string rotated = Mint("rsa-2", "RS256", Claims());
  absl::StatusOr<TokenClaims> r = v->Verify(rotated, ctx_);
  EXPECT_EQ(Reason(r), "unknown_kid");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("rate-limited, next in 20s"));
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 1);

  // 30 s after the last fetch: one refetch, and the new key verifies.
  clock_.Advance(absl::Seconds(20));
  r = v->Verify(rotated, ctx_);
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 2);
  EXPECT_EQ(fetcher_->Calls(kDiscoveryUrl), 1);  // the discovered jwks_uri is reused

  // A flood of tokens with made-up kids costs at most one fetch per interval.
  for (int i = 0; i < 70; ++i) {
    clock_.Advance(absl::Seconds(1));
    std::string forged =
        idp_->Sign("rsa-1", "RS256", TestIssuer::Header("RS256", absl::StrCat("kid-", i)).Json(),
                   Claims().Json())
            .value();
    EXPECT_EQ(Reason(v->Verify(forged, ctx_)), "unknown_kid");
  }
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 2 + 2);  // 30 s and 60 s after the last fetch
  // The keys still in the set keep working without any fetch.
  EXPECT_EQ(Reason(v->Verify(rotated, ctx_)), "ok");
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 4);
}

TEST_F(JwtVerifierTest, KeyRemovedFromTheJwksStopsVerifyingAfterRefresh) {
  IssuerConfig config = Config();
  config.jwks_max_age = absl::Minutes(5);
  auto v = Make(config);
  std::string old_key_token =
      Mint("rsa-1", "RS256", Claims().Int("exp", absl::ToUnixSeconds(clock_.Now()) + 86400));
  EXPECT_EQ(Reason(v->Verify(old_key_token, ctx_)), "ok");
  fetcher_->bodies[kJwksUrl] = idp_->Jwks({"rsa-2"});
  clock_.Advance(absl::Minutes(4));
  EXPECT_EQ(Reason(v->Verify(old_key_token, ctx_)), "ok");  // cached keys still fresh
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Reason(v->Verify(old_key_token, ctx_)), "unknown_kid");  // refreshed: gone
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 2);
}

TEST_F(JwtVerifierTest, FailedRefreshKeepsTheCachedKeys) {
  auto v = Make(Config());
  std::string token =
      Mint("rsa-1", "RS256", Claims().Int("exp", absl::ToUnixSeconds(clock_.Now()) + 86400));
  EXPECT_EQ(Reason(v->Verify(token, ctx_)), "ok");
  fetcher_->bodies[kJwksUrl] = absl::UnavailableError("fetch: connection refused");
  clock_.Advance(absl::Minutes(11));  // past jwks_max_age
  EXPECT_EQ(Reason(v->Verify(token, ctx_)), "ok");
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), 2);
  // A failed JWKS fetch also forgets the discovered jwks_uri: the next try rediscovers.
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(Reason(v->Verify(token, ctx_)), "ok");
  EXPECT_EQ(fetcher_->Calls(kDiscoveryUrl), 2);
}

TEST_F(JwtVerifierTest, KeyFetchFailures) {
  fetcher_->bodies[kDiscoveryUrl] = absl::DeadlineExceededError("fetch: timed out after 2s");
  auto v = Make(Config());
  std::string token =
      Mint("rsa-1", "RS256", Claims().Int("exp", absl::ToUnixSeconds(clock_.Now()) + 86400));
  absl::StatusOr<TokenClaims> r = v->Verify(token, ctx_);
  EXPECT_EQ(Reason(r), "key_fetch_failed");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("discovery: fetch: timed out"));
  // Retried no sooner than min_refresh_interval.
  fetcher_->bodies[kDiscoveryUrl] = DiscoveryDoc(kIssuer, kJwksUrl);
  r = v->Verify(token, ctx_);
  EXPECT_EQ(Reason(r), "key_fetch_failed");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("retry in 30s"));
  EXPECT_EQ(fetcher_->Calls(kDiscoveryUrl), 1);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(Reason(v->Verify(token, ctx_)), "ok");

  struct Case {
    std::string name;
    std::string discovery;
    std::string jwks;
    std::string want;  // in the message
  };
  for (const Case& c : std::vector<Case>{
           {"discovery names another issuer", DiscoveryDoc("https://evil.test", kJwksUrl),
            idp_->Jwks({"rsa-1"}), "not the configured issuer"},
           {"discovery without jwks_uri", JsonObject().Str("issuer", kIssuer).Json(),
            idp_->Jwks({"rsa-1"}), "no \"jwks_uri\""},
           {"discovery not json", "<html>", idp_->Jwks({"rsa-1"}), "discovery: json"},
           {"jwks not json", DiscoveryDoc(kIssuer, kJwksUrl), "<html>", "jwks: json"},
           {"jwks without keys", DiscoveryDoc(kIssuer, kJwksUrl), "{}", "no \"keys\" array"},
           {"jwks with no usable key", DiscoveryDoc(kIssuer, kJwksUrl), idp_->Jwks({"weak"}),
            "no usable key"},
       }) {
    SCOPED_TRACE(c.name);
    fetcher_->bodies[kDiscoveryUrl] = c.discovery;
    fetcher_->bodies[kJwksUrl] = c.jwks;
    v = Make(Config());
    r = v->Verify(token, ctx_);
    EXPECT_EQ(Reason(r), "key_fetch_failed");
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.want));
  }
}

TEST_F(JwtVerifierTest, JwksUriWithoutDiscovery) {
  IssuerConfig config = Config();
  config.discovery = false;
  config.jwks_uri = "https://keys.idp.test/jwks";
  fetcher_->bodies[config.jwks_uri] = idp_->Jwks({"ed-1"});
  auto v = Make(config);
  EXPECT_EQ(Reason(v->Verify(Mint("ed-1", "EdDSA", Claims()), ctx_)), "ok");
  EXPECT_EQ(fetcher_->Calls(kDiscoveryUrl), 0);
}

TEST_F(JwtVerifierTest, JwksFileRotationByReRead) {
  std::string dir = ::interlock::testing::MakeTempDir("jwt-test-");
  std::string path = dir + "/jwks.json";
  ASSERT_TRUE(WriteFileAtomic(path, idp_->Jwks({"rsa-1"}), 0644).ok());
  IssuerConfig config = Config();
  config.discovery = false;
  config.jwks_file = path;
  auto v = Make(config);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_)), "ok");

  ASSERT_TRUE(WriteFileAtomic(path, idp_->Jwks({"rsa-1", "ec-1"}), 0644).ok());
  std::string rotated = Mint("ec-1", "ES256", Claims());
  EXPECT_EQ(Reason(v->Verify(rotated, ctx_)), "unknown_kid");  // read at Create: rate-limited
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(Reason(v->Verify(rotated, ctx_)), "ok");
  EXPECT_EQ(fetcher_->calls.size(), 0u);  // files never go through the fetcher

  // A broken file fails Create (startup), with the reason.
  ASSERT_TRUE(WriteFileAtomic(path, "{\"keys\": 3}", 0644).ok());
  absl::StatusOr<std::unique_ptr<JwtVerifier>> broken = JwtVerifier::Create({config}, clock_);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("no \"keys\" array"));
  config.jwks_file = dir + "/missing.json";
  EXPECT_FALSE(JwtVerifier::Create({config}, clock_).ok());
  ::interlock::testing::RemoveTree(dir);
}

TEST_F(JwtVerifierTest, JwksWithBadKeysStillServesTheGoodOnes) {
  fetcher_->bodies[kJwksUrl] = TestIssuer::JwksOf({
      JsonObject().Str("kty", "oct").Str("kid", "hmac").Str("k", "c2VjcmV0"),
      idp_->PublicJwk("weak"),
      idp_->PublicJwk("ec-1").Str("crv", "P-521"),
      idp_->PublicJwk("rsa-2").Str("use", "enc"),
      idp_->PublicJwk("rsa-1"),
  });
  auto v = Make(Config());
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_)), "ok");
  EXPECT_EQ(Reason(v->Verify(Mint("ec-1", "ES256", Claims()), ctx_)), "unknown_kid");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-2", "RS256", Claims()), ctx_)), "unknown_kid");
}

TEST_F(JwtVerifierTest, Rsa1024KeyRejected) {
  fetcher_->bodies[kJwksUrl] = idp_->Jwks({"weak", "rsa-1"});
  auto v = Make(Config());
  absl::StatusOr<TokenClaims> r = v->Verify(Mint("weak", "RS256", Claims()), ctx_);
  EXPECT_EQ(Reason(r), "unknown_kid");
  EXPECT_EQ(Reason(v->Verify(Mint("rsa-1", "RS256", Claims()), ctx_)), "ok");
}

TEST_F(JwtVerifierTest, Tampering) {
  auto v = Make(Config());
  for (auto [kid, alg] : std::vector<std::pair<std::string, std::string>>{
           {"rsa-1", "RS256"}, {"rsa-1", "PS256"}, {"ec-1", "ES256"}, {"ed-1", "EdDSA"}}) {
    SCOPED_TRACE(alg);
    JsonObject claims = Claims().Strs("groups", {"readers"});
    std::string token = Mint(kid, alg, claims);
    size_t dot1 = token.find('.');
    size_t dot2 = token.rfind('.');
    std::string sig = token.substr(dot2 + 1);

    // Payload swapped for one granting more, signature kept.
    std::string more = Base64Url(Claims().Strs("groups", {"admins"}).Json());
    std::string forged = absl::StrCat(token.substr(0, dot1 + 1), more, ".", sig);
    EXPECT_EQ(Reason(v->Verify(forged, ctx_)), "bad_signature");

    // One bit of the decoded signature flipped.
    std::string raw = Base64UrlDecode(sig).value();
    raw[raw.size() / 3] ^= 0x01;
    EXPECT_EQ(Reason(v->Verify(absl::StrCat(token.substr(0, dot2 + 1), Base64Url(raw)), ctx_)),
              "bad_signature");
    // The signature of another token.
    std::string other = Mint(kid, alg, Claims().Str("sub", "agent-2"));
    EXPECT_EQ(
        Reason(v->Verify(
            absl::StrCat(token.substr(0, dot2 + 1), other.substr(other.rfind('.') + 1)), ctx_)),
        "bad_signature");
    // Signature stripped.
    EXPECT_EQ(Reason(v->Verify(token.substr(0, dot2 + 1), ctx_)), "bad_signature");
  }
  // Signed by a key the issuer does not publish, under a published kid.
  std::string impostor =
      idp_->Sign("rsa-2", "RS256", TestIssuer::Header("RS256", "rsa-1").Json(), Claims().Json())
          .value();
  EXPECT_EQ(Reason(v->Verify(impostor, ctx_)), "bad_signature");
}

TEST_F(JwtVerifierTest, MalformedTokens) {
  auto v = Make(Config());
  std::string good = Mint("rsa-1", "RS256", Claims());
  ASSERT_EQ(Reason(v->Verify(good, ctx_)), "ok");
  // Every truncation of a good token is rejected, none crashes.
  for (size_t n = 0; n < good.size(); ++n) {
    absl::StatusOr<TokenClaims> r = v->Verify(good.substr(0, n), ctx_);
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_FALSE(JwtVerifier::ReasonOf(r.status()).empty()) << n << ": " << r.status();
  }
  size_t dot1 = good.find('.');
  size_t dot2 = good.rfind('.');
  for (const std::string& token : std::vector<std::string>{
           "",
           "garbage",
           "a.b",
           "...",
           "\x00\x01\x02"s,
           std::string(kMaxTokenBytes + 1, 'A'),
           good + "=",
           good + ".extra",
           absl::StrCat(good.substr(0, dot1), "=", good.substr(dot1)),
           absl::StrCat(good.substr(0, dot2 + 1), "+/", good.substr(dot2 + 3)),
           " " + good,
           good + "\n",
           "Bearer " + good,
       }) {
    absl::StatusOr<TokenClaims> r = v->Verify(token, ctx_);
    EXPECT_EQ(Reason(r), "malformed") << r.status();
  }
}

TEST_F(JwtVerifierTest, RejectionsNeverEchoTheToken) {
  auto v = Make(Config());
  int64_t now = absl::ToUnixSeconds(clock_.Now());
  for (const std::string& token :
       {Mint("rsa-1", "RS256", Claims().Int("exp", now - 3600)),
        Mint("rsa-1", "RS256", Claims().Str("aud", "x")), Mint("rsa-1", "RS256", Claims()) + "x"}) {
    absl::StatusOr<TokenClaims> r = v->Verify(token, ctx_);
    ASSERT_FALSE(r.ok());
    std::string message(r.status().message());
    EXPECT_THAT(message, ::testing::Not(HasSubstr(token.substr(token.rfind('.') + 1, 16))));
    EXPECT_THAT(message, ::testing::Not(HasSubstr(token.substr(0, 16))));
  }
}

TEST_F(JwtVerifierTest, TokenWithoutKid) {
  fetcher_->bodies[kJwksUrl] = idp_->Jwks({"rsa-1", "ec-1"});
  auto v = Make(Config());
  // Exactly one key fits ES256: it is used.
  std::string es =
      idp_->Sign("ec-1", "ES256", TestIssuer::Header("ES256", "").Json(), Claims().Json()).value();
  EXPECT_EQ(Reason(v->Verify(es, ctx_)), "ok");
  // No Ed25519 key at all.
  std::string ed =
      idp_->Sign("ed-1", "EdDSA", TestIssuer::Header("EdDSA", "").Json(), Claims().Json()).value();
  EXPECT_EQ(Reason(v->Verify(ed, ctx_)), "unknown_kid");
  // Two RSA keys fit: ambiguous, refused, and no refetch (it could not help).
  fetcher_->bodies[kJwksUrl] = idp_->Jwks({"rsa-1", "rsa-2"});
  v = Make(Config());
  int before = fetcher_->Calls(kJwksUrl);
  clock_.Advance(absl::Seconds(60));
  std::string rs =
      idp_->Sign("rsa-1", "RS256", TestIssuer::Header("RS256", "").Json(), Claims().Json()).value();
  absl::StatusOr<TokenClaims> r = v->Verify(rs, ctx_);
  EXPECT_EQ(Reason(r), "unknown_kid");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("2 keys of the issuer fit"));
  EXPECT_EQ(fetcher_->Calls(kJwksUrl), before + 1);  // only the first load
}

TEST_F(JwtVerifierTest, SeveralIssuers) {
  auto other = TestIssuer::Create("https://other.test").value();
  ASSERT_TRUE(other->AddKey("o-1", TestKeyKind::kEd25519).ok());
  fetcher_->bodies["https://other.test/jwks"] = other->Jwks();
  IssuerConfig second{.issuer = "https://other.test",
                      .audiences = {"interlock"},
                      .algorithms = {"EdDSA"},
                      .jwks_uri = "https://other.test/jwks",
                      .groups_claim = "groups"};
  absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
      JwtVerifier::Create({Config(), second}, clock_, fetcher_);
  ASSERT_TRUE(v.ok()) << v.status();
  std::string from_other =
      other->Mint("o-1", "EdDSA", other->StandardClaims(clock_.Now()).Strs("groups", {"g"}))
          .value();
  absl::StatusOr<TokenClaims> r = (*v)->Verify(from_other, ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->issuer, "https://other.test");
  EXPECT_THAT(r->groups, ElementsAre("g"));
  EXPECT_EQ(Reason((*v)->Verify(Mint("ed-1", "EdDSA", Claims()), ctx_)), "ok");
  // A token claiming the other issuer but signed by ours: the other issuer's keys decide.
  std::string cross =
      idp_->Mint("ed-1", "EdDSA", Claims().Str("iss", "https://other.test")).value();
  EXPECT_EQ(Reason((*v)->Verify(cross, ctx_)), "unknown_kid");
  std::string cross_kid = idp_->Sign("ed-1", "EdDSA", TestIssuer::Header("EdDSA", "o-1").Json(),
                                     Claims().Str("iss", "https://other.test").Json())
                              .value();
  EXPECT_EQ(Reason((*v)->Verify(cross_kid, ctx_)), "bad_signature");
  // Algorithms are pinned per issuer.
  std::string rs_other =
      idp_->Mint("rsa-1", "RS256", Claims().Str("iss", "https://other.test")).value();
  EXPECT_EQ(Reason((*v)->Verify(rs_other, ctx_)), "alg_not_allowed");
}

TEST_F(JwtVerifierTest, CreateRefusesUnsafeOrIncompleteConfig) {
  struct Case {
    std::string name;
    std::function<void(IssuerConfig&)> mutate;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"no issuer", [](IssuerConfig& c) { c.issuer = ""; }, "empty issuer"},
      {"no audiences", [](IssuerConfig& c) { c.audiences = {}; }, "audiences"},
      {"empty audience", [](IssuerConfig& c) { c.audiences = {""}; }, "empty audience"},
      {"no algorithms", [](IssuerConfig& c) { c.algorithms = {}; }, "at least one must be pinned"},
      {"none",
       [](IssuerConfig& c) {
         c.algorithms = {"RS256", "none"};
       },
       "\"none\" is never"},
      {"HS256", [](IssuerConfig& c) { c.algorithms = {"HS256"}; }, "symmetric"},
      {"hs512", [](IssuerConfig& c) { c.algorithms = {"hs512"}; }, "symmetric"},
      {"RS512", [](IssuerConfig& c) { c.algorithms = {"RS512"}; }, "unsupported"},
      {"no key source", [](IssuerConfig& c) { c.discovery = false; }, "exactly one of"},
      {"two key sources", [](IssuerConfig& c) { c.jwks_uri = "https://x/jwks"; }, "exactly one of"},
      {"negative skew", [](IssuerConfig& c) { c.clock_skew = -absl::Seconds(1); }, "clock_skew"},
      {"empty groups claim", [](IssuerConfig& c) { c.groups_claim = ""; }, "groups_claim"},
      {"refresh too often",
       [](IssuerConfig& c) { c.min_refresh_interval = absl::Milliseconds(10); },
       "min_refresh_interval"},
      {"negative lifetime", [](IssuerConfig& c) { c.max_token_lifetime = -absl::Seconds(1); },
       "max_token_lifetime"},
      {"zero max age", [](IssuerConfig& c) { c.jwks_max_age = absl::ZeroDuration(); },
       "jwks_max_age"},
  };
  for (const Case& c : cases) {
    IssuerConfig config = Config();
    c.mutate(config);
    absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
        JwtVerifier::Create({config}, clock_, fetcher_);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(c.want)) << c.name;
  }
  EXPECT_FALSE(JwtVerifier::Create({}, clock_, fetcher_).ok());
  absl::StatusOr<std::unique_ptr<JwtVerifier>> twice =
      JwtVerifier::Create({Config(), Config()}, clock_, fetcher_);
  EXPECT_THAT(std::string(twice.status().message()), HasSubstr("configured twice"));
  // Without an injected fetcher, a curl fetcher is made per issuer; its CA file must exist.
  IssuerConfig config = Config();
  config.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(std::string(JwtVerifier::Create({config}, clock_).status().message()),
              HasSubstr("ca_file"));
}

}  // namespace
}  // namespace interlock::auth::jwt

// ---- Background refresh --------------------------------------------------------------

namespace interlock::auth::jwt {
namespace {

// A clock and a fetcher the verifier's worker thread may use while the test does.
class SharedClock final : public Clock {
 public:
  absl::Time Now() const override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  absl::Duration Monotonic() const override {
    std::lock_guard<std::mutex> l(mu_);
    return mono_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
    mono_ += d;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1767225600);
  absl::Duration mono_ = absl::Seconds(1000);
};

// Serves one JWKS; while closed, a fetch waits for Open() (an IdP that hangs).
class GatedFetcher final : public JwksFetcher {
 public:
  explicit GatedFetcher(std::string jwks) : jwks_(std::move(jwks)) {}
  absl::StatusOr<std::string> Fetch(const std::string& url) override {
    std::unique_lock<std::mutex> l(mu_);
    std::string body = jwks_;  // what the IdP served when the request arrived
    ++started_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
    ++finished_;
    cv_.notify_all();
    return body;
  }
  void Serve(std::string jwks) {
    std::lock_guard<std::mutex> l(mu_);
    jwks_ = std::move(jwks);
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits up to 10 s for the count of started / finished fetches to reach n.
  bool WaitStarted(int n) { return WaitFor([&] { return started_ >= n; }); }
  bool WaitFinished(int n) { return WaitFor([&] { return finished_ >= n; }); }
  int started() {
    std::lock_guard<std::mutex> l(mu_);
    return started_;
  }

 private:
  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), pred);
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::string jwks_;
  bool open_ = true;
  int started_ = 0;
  int finished_ = 0;
};

TEST_F(JwtVerifierTest, BackgroundRefreshFetchesAheadAndNeverMakesVerifyWaitForStaleKeys) {
  SharedClock clock;
  auto fetcher = std::make_shared<GatedFetcher>(idp_->Jwks({"rsa-1", "ec-1", "ed-1"}));
  IssuerConfig config = Config();
  config.discovery = false;
  config.jwks_uri = kJwksUrl;
  config.jwks_max_age = absl::Minutes(10);
  config.min_refresh_interval = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<JwtVerifier>> made =
      JwtVerifier::Create({config}, clock, fetcher, /*background_refresh=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  JwtVerifier& v = **made;

  // The worker loads the keys at once, before any token needs them.
  ASSERT_TRUE(fetcher->WaitFinished(1));
  const std::string token = Mint("rsa-1", "RS256", idp_->StandardClaims(clock.Now()));
  EXPECT_EQ(Reason(v.Verify(token, ctx_)), "ok");
  // (A Verify racing the worker's install may load once more itself; never more.)
  EXPECT_LE(fetcher->started(), 2);
  const int loaded = fetcher->started();

  // The IdP hangs. Half-way through jwks_max_age the worker refreshes (and waits on it)...
  EXPECT_EQ(Reason(v.Verify(token, ctx_)), "ok");
  EXPECT_EQ(fetcher->started(), loaded) << "Verify fetched although keys were loaded";
  fetcher->Close();
  clock.Advance(absl::Minutes(6));
  ASSERT_TRUE(fetcher->WaitStarted(loaded + 1));
  // ...and once the keys are stale, Verify still answers at once with them.
  clock.Advance(absl::Minutes(5));
  auto verdict = std::async(std::launch::async, [&] { return Reason(v.Verify(token, ctx_)); });
  ASSERT_EQ(verdict.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "Verify waited for the hanging IdP";
  EXPECT_EQ(verdict.get(), "ok");
  EXPECT_EQ(fetcher->started(), loaded + 1);
  fetcher->Open();
  ASSERT_TRUE(fetcher->WaitFinished(loaded + 1));
}

TEST_F(JwtVerifierTest, BackgroundRefreshNeverReplacesNewerKeysWithAnOlderFetch) {
  SharedClock clock;
  auto fetcher = std::make_shared<GatedFetcher>(idp_->Jwks({"rsa-1"}));
  IssuerConfig config = Config();
  config.discovery = false;
  config.jwks_uri = kJwksUrl;
  config.jwks_max_age = absl::Minutes(10);
  config.min_refresh_interval = absl::Seconds(30);
  auto made = JwtVerifier::Create({config}, clock, fetcher, /*background_refresh=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  JwtVerifier& v = **made;
  ASSERT_TRUE(fetcher->WaitFinished(1));
  const std::string old_token = Mint("rsa-1", "RS256", idp_->StandardClaims(clock.Now()));
  EXPECT_EQ(Reason(v.Verify(old_token, ctx_)), "ok");
  const int before = fetcher->started();

  // The worker's refresh gets the old key set and hangs before returning it...
  fetcher->Close();
  clock.Advance(absl::Minutes(6));
  ASSERT_TRUE(fetcher->WaitStarted(before + 1));
  // ...the IdP rotates to rsa-2, and a token signed with it makes a later load of its own,
  // which waits for the worker's fetch to end, then gets the new set.
  fetcher->Serve(idp_->Jwks({"rsa-2"}));
  clock.Advance(absl::Seconds(1));
  const std::string new_token = Mint("rsa-2", "RS256", idp_->StandardClaims(clock.Now()));
  auto first = std::async(std::launch::async, [&] { return Reason(v.Verify(new_token, ctx_)); });
  // The overlap is the point: the caller's load must begin while the worker's still
  // hangs. Released too early, the worker's fetch ends first and the caller's unknown kid
  // is (rightly) rate-limited instead of loaded — give the caller time to get there.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  fetcher->Open();
  ASSERT_EQ(first.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(first.get(), "ok");
  ASSERT_TRUE(fetcher->WaitFinished(before + 2));
  // The worker's older outcome (rsa-1 only) did not replace the newer keys.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Reason(v.Verify(new_token, ctx_)), "ok");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

TEST_F(JwtVerifierTest, BackgroundRefreshStopsWithTheVerifier) {
  SharedClock clock;
  auto fetcher = std::make_shared<GatedFetcher>(idp_->Jwks({"rsa-1"}));
  IssuerConfig config = Config();
  config.discovery = false;
  config.jwks_uri = kJwksUrl;
  auto made = JwtVerifier::Create({config}, clock, fetcher, /*background_refresh=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_TRUE(fetcher->WaitFinished(1));
  made->reset();  // joins the worker; a hang here fails the test by timeout
  EXPECT_EQ(fetcher->started(), 1);
}

}  // namespace
}  // namespace interlock::auth::jwt
