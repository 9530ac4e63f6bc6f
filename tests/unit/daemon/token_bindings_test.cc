// TokenBindings and the binding verifier: a bound token speaks only for its enrollment's
// cgroup subtree, rotation is seen, and unsafe token files are refused.
#include "userspace/daemon/token_bindings.h"

#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_issuer.h"
#include "userspace/common/file_util.h"

namespace interlock::daemon {
namespace {

using ::testing::HasSubstr;

class AcceptAll final : public auth::TokenVerifier {
 public:
  absl::StatusOr<auth::TokenClaims> Verify(absl::string_view token, const auth::TokenContext&) const override {
    auth::TokenClaims c;
    c.subject = std::string(token);
    return c;
  }
};

class TokenBindingsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("interlock-bind-"); }
  void TearDown() override { testing::RemoveTree(dir_); }
  std::string Write(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(p, content, 0600).ok());
    return p;
  }
  std::string dir_;
  TokenBindings b_;
};

TEST_F(TokenBindingsTest, TokenForTheEnrollmentAndItsSubtreeOnly) {
  b_.Bind("/il/workloads/a.1", "a", Write("a.token", "tok-a\n"));
  EXPECT_EQ(**b_.TokenFor("/il/workloads/a.1"), "tok-a");
  EXPECT_EQ(**b_.TokenFor("/il/workloads/a.1/child"), "tok-a");
  EXPECT_FALSE(b_.TokenFor("/il/workloads/a.10")->has_value());
  EXPECT_FALSE(b_.TokenFor("/il/workloads/b.1")->has_value());
  b_.Unbind("/il/workloads/a.1");
  EXPECT_FALSE(b_.TokenFor("/il/workloads/a.1")->has_value());
}

TEST_F(TokenBindingsTest, RotationIsSeen) {
  std::string f = Write("a.token", "first");
  b_.Bind("/il/a", "a", f);
  EXPECT_EQ(**b_.TokenFor("/il/a"), "first");
  ASSERT_TRUE(WriteFileAtomic(f, "second-token", 0600).ok());
  EXPECT_EQ(**b_.TokenFor("/il/a"), "second-token");
}

TEST_F(TokenBindingsTest, UnsafeFilesAreRefusedWithoutTheirContents) {
  std::string target = Write("real.token", "secret-token");
  std::string link = dir_ + "/link.token";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  b_.Bind("/il/a", "a", link);
  auto t = b_.TokenFor("/il/a");
  EXPECT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), ::testing::Not(HasSubstr("secret-token")));
  b_.Bind("/il/a", "a", dir_);  // a directory
  EXPECT_FALSE(b_.TokenFor("/il/a").ok());
  b_.Bind("/il/a", "a", Write("empty.token", ""));
  EXPECT_FALSE(b_.TokenFor("/il/a").ok());
  b_.Bind("/il/a", "a", Write("huge.token", std::string(kMaxTokenFileBytes + 1, 'x')));
  EXPECT_FALSE(b_.TokenFor("/il/a").ok());
}

TEST_F(TokenBindingsTest, BindingVerifierRefusesATokenFromAnotherCgroup) {
  b_.Bind("/il/workloads/a.1", "a", Write("a.token", "tok-a"));
  BindingVerifier v(std::make_unique<AcceptAll>(), &b_);
  auth::TokenContext own{"a", 1, "/il/workloads/a.1/sub"};
  EXPECT_TRUE(v.Verify("tok-a", own).ok());
  auth::TokenContext thief{"b", 2, "/il/workloads/b.1"};
  auto r = v.Verify("tok-a", thief);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("token_bound_elsewhere"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("enrollment a (cgroup /il/workloads/a.1)"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("workload b (cgroup /il/workloads/b.1)"));
  // Unbound tokens go to the inner verifier.
  EXPECT_TRUE(v.Verify("tok-other", thief).ok());
}

// The attack of issue 12 item 10: steal a bound ES256 token, re-encode its signature as
// (r, n-s) — it still verifies — and present it from another cgroup. The binding must
// recognise it by what it says, not by its bytes. So must every base64 spelling of the
// header and payload (padding, the standard alphabet, non-zero trailing bits).
TEST_F(TokenBindingsTest, ReencodedBoundTokenIsStillRecognisedFromAnotherCgroup) {
  auto idp = testing::TestIssuer::Create("https://idp.test").value();
  ASSERT_TRUE(idp->AddKey("ec", testing::TestKeyKind::kP256).ok());
  std::string token = idp->Mint("ec", "ES256", idp->StandardClaims(absl::Now())).value();
  b_.Bind("/il/workloads/a.1", "a", Write("a.token", token + "\n"));
  BindingVerifier v(std::make_unique<AcceptAll>(), &b_);
  auth::TokenContext thief{"b", 2, "/il/workloads/b.1"};

  std::string flipped = testing::ReencodeEs256Token(token);
  ASSERT_NE(flipped, token);
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string header_std = absl::StrReplaceAll(parts[0], {{"-", "+"}, {"_", "/"}});
  std::string padded_payload = parts[1] + std::string((4 - parts[1].size() % 4) % 4, '=');
  std::vector<std::string> variants = {
      flipped,
      absl::StrCat(parts[0], ".", padded_payload, ".", parts[2]),
      absl::StrCat(header_std, ".", parts[1], ".", parts[2]),
      absl::StrCat(parts[0], ".", parts[1], ".", testing::Base64Url("anything")),
  };
  // Non-zero trailing bits: the last character of the payload names the same bytes with
  // its unused low bits set (when the length leaves any).
  if (parts[1].size() % 4 != 0) {
    std::string dirty = parts[1];
    char& last = dirty.back();
    std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t idx = alphabet.find(last);
    int unused = parts[1].size() % 4 == 2 ? 4 : 2;
    last = alphabet[idx | ((1u << unused) - 1)];
    if (dirty != parts[1]) variants.push_back(absl::StrCat(parts[0], ".", dirty, ".", parts[2]));
  }
  for (const std::string& t : variants) {
    SCOPED_TRACE(t);
    EXPECT_EQ(TokenIdentity(t), TokenIdentity(token));
    auto r = v.Verify(t, thief);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("token_bound_elsewhere"));
  }
  // The enrollment itself still uses it; another token (other claims) is not bound.
  EXPECT_TRUE(v.Verify(flipped, {"a", 1, "/il/workloads/a.1"}).ok());
  std::string other = idp->Mint("ec", "ES256", idp->StandardClaims(absl::Now(), "agent-2")).value();
  EXPECT_NE(TokenIdentity(other), TokenIdentity(token));
  EXPECT_TRUE(v.Verify(other, thief).ok());
}

TEST(TokenIdentity, StaticTokensByTheirBytesAndNoHeaderPayloadSplitCollides) {
  EXPECT_EQ(TokenIdentity("tok-a"), TokenIdentity("tok-a"));
  EXPECT_NE(TokenIdentity("tok-a"), TokenIdentity("tok-b"));
  EXPECT_TRUE(absl::StartsWith(TokenIdentity("tok-a"), "raw:"));
  EXPECT_TRUE(absl::StartsWith(TokenIdentity("a.b.c!"), "jws:"));  // signature not decoded
  EXPECT_TRUE(absl::StartsWith(TokenIdentity("a!.b.c"), "raw:"));
  // "ab" + "c" vs "a" + "bc" decoded: same concatenation, different identities.
  EXPECT_NE(TokenIdentity(absl::StrCat(testing::Base64Url("ab"), ".", testing::Base64Url("c"), ".x")),
            TokenIdentity(absl::StrCat(testing::Base64Url("a"), ".", testing::Base64Url("bc"), ".x")));
}

TEST(AnyTokenVerifier, RoutesJwtsAndStaticTokens) {
  class Named final : public auth::TokenVerifier {
   public:
    explicit Named(std::string n) : n_(std::move(n)) {}
    absl::StatusOr<auth::TokenClaims> Verify(absl::string_view, const auth::TokenContext&) const override {
      auth::TokenClaims c;
      c.subject = n_;
      return c;
    }
    std::string n_;
  };
  AnyTokenVerifier v(std::make_unique<Named>("jwt"), std::make_unique<Named>("static"));
  EXPECT_EQ(v.Verify("a.b.c", {})->subject, "jwt");
  EXPECT_EQ(v.Verify("opaque-token", {})->subject, "static");
  AnyTokenVerifier none(nullptr, nullptr);
  EXPECT_TRUE(absl::IsUnauthenticated(none.Verify("x", {}).status()));
}

}  // namespace
}  // namespace interlock::daemon
