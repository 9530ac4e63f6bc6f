// TokenBindings and the binding verifier: a bound token speaks only for its enrollment's
// cgroup subtree, rotation is seen, and unsafe token files are refused.
#include "userspace/daemon/token_bindings.h"

#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
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
