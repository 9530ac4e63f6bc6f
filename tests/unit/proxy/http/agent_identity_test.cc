// Which token speaks for the agent per request, and the identity headers (pure
// parts).
#include "userspace/proxy/http/agent_identity.h"

#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/auth/jwt/jwt.h"

namespace interlock::proxy::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
namespace chttp = codec::http;

// Accepts tokens it was told about; counts how often it was asked.
class FakeVerifier final : public auth::TokenVerifier {
 public:
  absl::StatusOr<auth::TokenClaims> Verify(absl::string_view token, const auth::TokenContext&) const override {
    ++calls;
    auto it = tokens.find(std::string(token));
    if (it == tokens.end()) return absl::UnauthenticatedError("wrong_issuer: iss names no configured issuer");
    return it->second;
  }
  std::map<std::string, auth::TokenClaims> tokens;
  mutable int calls = 0;
};

auth::TokenClaims Claims(const std::string& sub, absl::Time exp) {
  auth::TokenClaims c;
  c.issuer = "https://idp.test";
  c.subject = sub;
  c.groups = {"analysts"};
  c.token_sha256 = absl::StrCat("sha-of-", sub);
  c.azp = "cli";
  c.expires_at = exp;
  c.string_claims = {{"sub", sub}, {"email", sub + "@x"}};
  return c;
}

class AgentTokensTest : public ::testing::Test {
 protected:
  AgentTokensTest() {
    http_.token_issuers = {"corp"};
    verifier_.tokens["agent-jwt"] = Claims("agent-7", clock_.Now() + absl::Minutes(5));
    verifier_.tokens["bound-jwt"] = Claims("svc-billing", clock_.Now() + absl::Minutes(10));
  }
  AgentTokens Make(std::string bound = "") {
    AgentTokens::BoundTokenFn fn;
    if (!bound.empty()) {
      fn = [this, bound]() -> absl::StatusOr<std::optional<std::string>> {
        ++bound_reads_;
        return std::optional<std::string>(bound);
      };
    }
    return AgentTokens(http_, &verifier_, fn, &clock_);
  }
  std::vector<chttp::HeaderField> Auth(absl::string_view value) { return {{"Host", "x"}, {"Authorization", value}}; }

  config::HttpConfig http_;
  FakeVerifier verifier_;
  testing::FakeClock clock_;
  auth::TokenContext context_{"billing", 7, "/interlock/billing"};
  int bound_reads_ = 0;
};

TEST_F(AgentTokensTest, TheAgentsBearerIsVerifiedAndRememberedUntilItExpires) {
  AgentTokens t = Make();
  TokenDecision d = t.ForRequest(Auth("Bearer agent-jwt"), context_);
  ASSERT_NE(d.claims, nullptr);
  EXPECT_EQ(d.source, TokenDecision::Source::kAgent);
  EXPECT_EQ(d.claims->subject, "agent-7");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].reason, "token");
  EXPECT_THAT(d.events[0].detail, Not(HasSubstr("agent-jwt")));
  // Again on the same connection: no second verification, no second event.
  d = t.ForRequest(Auth("bearer   agent-jwt"), context_);
  ASSERT_NE(d.claims, nullptr);
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(verifier_.calls, 1);
  // Expired: verified again (and the fake says no more).
  clock_.Advance(absl::Minutes(6));
  verifier_.tokens.erase("agent-jwt");
  d = t.ForRequest(Auth("Bearer agent-jwt"), context_);
  EXPECT_EQ(d.claims, nullptr);
  EXPECT_EQ(verifier_.calls, 2);
}

TEST_F(AgentTokensTest, AnInvalidAgentTokenIsReportedAndTheBoundOneSpeaks) {
  AgentTokens t = Make("bound-jwt");
  for (const char* bad : {"Bearer forged", "Basic YWRtaW46YWRtaW4=", "Bearer"}) {
    TokenDecision d = t.ForRequest(Auth(bad), context_);
    EXPECT_FALSE(d.refused) << bad;
    ASSERT_NE(d.claims, nullptr) << bad;
    EXPECT_EQ(d.source, TokenDecision::Source::kBound);
    EXPECT_EQ(d.claims->subject, "svc-billing");
    ASSERT_FALSE(d.events.empty()) << bad;
    EXPECT_EQ(d.events[0].outcome, "denied");
    EXPECT_EQ(d.events[0].reason, "agent_token_invalid");
    EXPECT_THAT(d.events[0].detail, Not(HasSubstr("forged")));
    EXPECT_THAT(d.events[0].detail, Not(HasSubstr("YWRtaW46")));
  }
  // The bound token is read and verified once for the session.
  EXPECT_EQ(bound_reads_, 1);
}

TEST_F(AgentTokensTest, RequiredTokenRefusesMissingAndInvalidOnes) {
  http_.require_agent_token = true;
  AgentTokens t = Make();
  TokenDecision none = t.ForRequest({{"Host", "x"}}, context_);
  EXPECT_TRUE(none.refused);
  EXPECT_EQ(none.reason, "token_required");
  ASSERT_EQ(none.events.size(), 1u);
  EXPECT_EQ(none.events[0].reason, "token_required");
  TokenDecision bad = t.ForRequest(Auth("Bearer forged"), context_);
  EXPECT_TRUE(bad.refused);
  EXPECT_EQ(bad.reason, "token_invalid");
  EXPECT_THAT(bad.detail, HasSubstr("wrong_issuer"));
  EXPECT_THAT(bad.detail, Not(HasSubstr("forged")));
  // Two Authorization fields: which one would the upstream read? Neither.
  TokenDecision two =
      t.ForRequest({{"Authorization", "Bearer agent-jwt"}, {"authorization", "Bearer agent-jwt"}}, context_);
  EXPECT_TRUE(two.refused);
  EXPECT_TRUE(t.ForRequest(Auth("Bearer agent-jwt"), context_).claims != nullptr);
  // An invalid agent token is refused even when a bound one exists: the agent
  // said who it is.
  AgentTokens bound = Make("bound-jwt");
  EXPECT_TRUE(bound.ForRequest(Auth("Bearer forged"), context_).refused);
  EXPECT_FALSE(bound.ForRequest({}, context_).refused);
}

TEST_F(AgentTokensTest, ABoundTokenIsVerifiedAgainWhenItExpires) {
  AgentTokens t = Make("bound-jwt");
  EXPECT_NE(t.ForRequest({}, context_).claims, nullptr);
  EXPECT_NE(t.ForRequest({}, context_).claims, nullptr);
  EXPECT_EQ(bound_reads_, 1);
  clock_.Advance(absl::Minutes(11));
  verifier_.tokens["bound-jwt"] = Claims("svc-billing-2", clock_.Now() + absl::Minutes(10));
  TokenDecision d = t.ForRequest({}, context_);
  ASSERT_NE(d.claims, nullptr);
  EXPECT_EQ(d.claims->subject, "svc-billing-2");
  EXPECT_EQ(bound_reads_, 2);
  // A bound token that stops verifying: reported once, not per request, and no
  // identity.
  clock_.Advance(absl::Minutes(11));
  verifier_.tokens.erase("bound-jwt");
  d = t.ForRequest({}, context_);
  EXPECT_EQ(d.claims, nullptr);
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].reason, "wrong_issuer");
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(t.ForRequest({}, context_).events.empty());
}

TEST_F(AgentTokensTest, NoIssuersNoTokens) {
  http_.token_issuers.clear();
  AgentTokens t = Make("bound-jwt");
  TokenDecision d = t.ForRequest(Auth("Bearer agent-jwt"), context_);
  EXPECT_EQ(d.claims, nullptr);
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(verifier_.calls, 0);
}

TEST(ApplyToken, FillsAndClearsSubjectAndIdentity) {
  policy::SubjectFacts s;
  s.workload = "billing";
  v1::WorkloadIdentity id;
  id.set_workload("billing");
  auth::TokenClaims c = Claims("agent-7", absl::InfiniteFuture());
  ApplyToken(&c, &s, &id);
  EXPECT_TRUE(s.has_token);
  EXPECT_EQ(s.sub, "agent-7");
  EXPECT_THAT(s.groups, ElementsAre("analysts"));
  EXPECT_EQ(s.claims["azp"], "cli");
  EXPECT_EQ(s.claims["email"], "agent-7@x");
  EXPECT_EQ(id.token_subject(), "agent-7");
  EXPECT_EQ(id.token_issuer(), "https://idp.test");
  EXPECT_THAT(id.token_groups(), ElementsAre("analysts"));
  ApplyToken(nullptr, &s, &id);
  EXPECT_FALSE(s.has_token);
  EXPECT_TRUE(s.sub.empty());
  EXPECT_TRUE(s.claims.empty());
  EXPECT_EQ(s.workload, "billing");
  EXPECT_EQ(id.token_subject(), "");
  EXPECT_EQ(id.token_groups_size(), 0);
}

TEST(WithoutIdentityHeaders, RemovesEveryInterlockFieldWhateverItsCase) {
  std::vector<std::string> removed;
  auto out = WithoutIdentityHeaders({{"Host", "x"},
                                     {"Interlock-Workload", "admin"},
                                     {"INTERLOCK-ASSERTION", "forged"},
                                     {"interlock-anything", "1"},
                                     {"X-Interlock-Workload", "kept"},
                                     {"Interlocked", "kept"}},
                                    &removed);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].name, "X-Interlock-Workload");
  EXPECT_EQ(out[2].name, "Interlocked");
  EXPECT_THAT(removed, ElementsAre("interlock-workload", "interlock-assertion", "interlock-anything"));
}

class IdentityHeadersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/interlock-idh-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto key = auth::jwt::AssertionKey::Init(dir_);
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *std::move(key);
    id_.set_workload("billing");
    id_.set_cgroup_path("/interlock/billing");
    id_.set_uid(65534);
    id_.set_pid(77);
    id_.set_exe("/usr/bin/curl");
  }
  void TearDown() override {
    ::unlink(key_->file().c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_;
  std::unique_ptr<auth::jwt::AssertionKey> key_;
  v1::WorkloadIdentity id_;
};

TEST_F(IdentityHeadersTest, WorkloadSubjectAndASignedAssertion) {
  auth::TokenClaims c = Claims("agent-7", absl::InfiniteFuture());
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  auto fields = IdentityHeaders(
      *key_, {.resource = "crm", .session_id = "s1", .identity = &id_, .claims = &c, .now = now, .jti = "j1"});
  ASSERT_TRUE(fields.ok()) << fields.status();
  ASSERT_EQ(fields->size(), 3u);
  EXPECT_EQ((*fields)[0].name, "Interlock-Workload");
  EXPECT_EQ((*fields)[0].value, "billing");
  EXPECT_EQ((*fields)[1].name, "Interlock-Subject");
  EXPECT_EQ((*fields)[1].value, "agent-7");
  EXPECT_EQ((*fields)[2].name, "Interlock-Assertion");
  auto jws = auth::jwt::DecodeJws((*fields)[2].value);
  ASSERT_TRUE(jws.ok()) << jws.status();
  EXPECT_EQ(jws->kid, key_->kid());
  EXPECT_TRUE(
      auth::jwt::VerifySignature(auth::jwt::Alg::kES256, key_->pkey(), jws->signing_input, jws->signature).ok());
  const auto& f = jws->payload.fields();
  EXPECT_EQ(f.at("iss").string_value(), "interlockd");
  EXPECT_EQ(f.at("aud").string_value(), "crm");
  EXPECT_EQ(f.at("iat").number_value(), 1700000000);
  EXPECT_EQ(f.at("exp").number_value(), 1700000060);
  EXPECT_EQ(f.at("jti").string_value(), "j1");
  EXPECT_EQ(f.at("sid").string_value(), "s1");
  EXPECT_EQ(f.at("workload").string_value(), "billing");
  EXPECT_EQ(f.at("cgroup_path").string_value(), "/interlock/billing");
  EXPECT_EQ(f.at("uid").number_value(), 65534);
  EXPECT_EQ(f.at("pid").number_value(), 77);
  EXPECT_EQ(f.at("exe").string_value(), "/usr/bin/curl");
  EXPECT_EQ(f.at("sub").string_value(), "agent-7");
  EXPECT_EQ(f.at("token_iss").string_value(), "https://idp.test");
  EXPECT_EQ(f.at("groups").list_value().values(0).string_value(), "analysts");

  // Without a token: no Interlock-Subject, no token claims.
  auto plain =
      IdentityHeaders(*key_, {.resource = "crm", .session_id = "s1", .identity = &id_, .now = now, .jti = "j2"});
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(plain->size(), 2u);
  EXPECT_EQ((*plain)[1].name, "Interlock-Assertion");
  auto jws2 = auth::jwt::DecodeJws((*plain)[1].value);
  ASSERT_TRUE(jws2.ok());
  EXPECT_EQ(jws2->payload.fields().count("sub"), 0u);
  EXPECT_EQ(jws2->payload.fields().count("groups"), 0u);
}

TEST_F(IdentityHeadersTest, AControlCharacterInASubjectIsNotWrittenIntoAField) {
  auth::TokenClaims c = Claims("agent-7\r\nInterlock-Workload: admin", absl::InfiniteFuture());
  auto fields = IdentityHeaders(*key_, {.resource = "crm", .identity = &id_, .claims = &c, .jti = "j"});
  EXPECT_TRUE(absl::IsInvalidArgument(fields.status()));
}

TEST(NewAssertionId, RandomHex) {
  std::string a = NewAssertionId(), b = NewAssertionId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace interlock::proxy::http
