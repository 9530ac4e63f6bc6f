// StaticTokenVerifier: bearer tokens accepted by their listed SHA-256.
#include "userspace/auth/token_verifier.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// FIPS 180-2 / NIST examples.
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcSha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlockSha[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

TEST(Sha256Hex, KnownVectors) {
  struct Case {
    std::string in;
    std::string want;
  };
  const Case cases[] = {
      {"", kEmptySha},
      {"abc", kAbcSha},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", kTwoBlockSha},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Sha256Hex(c.in), c.want) << c.in.size() << " bytes";
  }
}

struct VerifyCase {
  std::string name;
  std::vector<std::string> listed;
  std::string token;
  bool want_ok;
  std::string want_reason;  // in the UNAUTHENTICATED message
};
void PrintTo(const VerifyCase& c, std::ostream* os) { *os << c.name; }

class StaticTokenVerifierTable : public ::testing::TestWithParam<VerifyCase> {};

TEST_P(StaticTokenVerifierTable, Verify) {
  const VerifyCase& c = GetParam();
  StaticTokenVerifier v(c.listed);
  absl::StatusOr<TokenClaims> claims =
      v.Verify(c.token, {.workload = "billing-agent", .cgroup_id = 7});
  if (!c.want_ok) {
    EXPECT_EQ(claims.status().code(), absl::StatusCode::kUnauthenticated) << claims.status();
    EXPECT_THAT(std::string(claims.status().message()), HasSubstr(c.want_reason));
    // The rejection never echoes the token.
    if (!c.token.empty()) {
      EXPECT_THAT(std::string(claims.status().message()), ::testing::Not(HasSubstr(c.token)));
    }
    return;
  }
  ASSERT_TRUE(claims.ok()) << claims.status();
  const std::string digest = Sha256Hex(c.token);
  EXPECT_EQ(claims->token_sha256, digest);
  EXPECT_EQ(claims->subject, "static:" + digest.substr(0, 12));
  EXPECT_THAT(claims->issuer, IsEmpty());
  EXPECT_THAT(claims->groups, IsEmpty());
}

// clang-format off
const VerifyCase kVerifyCases[] = {
    {"ListedLowerCase", {kAbcSha}, "abc", true, ""},
    {"ListedUpperCase", {absl::AsciiStrToUpper(kAbcSha)}, "abc", true, ""},
    {"ListedMixedCase", {"BA7816bf8f01CFEA414140de5dae2223b00361a396177a9cb410ff61f20015AD"}, "abc",
     true, ""},
    {"OneOfSeveral", {kEmptySha, kTwoBlockSha, kAbcSha}, "abc", true, ""},
    {"NotListed", {kAbcSha}, "abd", false, "not accepted"},
    {"CaseOfTokenMatters", {kAbcSha}, "ABC", false, "not accepted"},
    {"TrailingNewline", {kAbcSha}, "abc\n", false, "not accepted"},
    {"NothingListed", {}, "abc", false, "not accepted"},
    {"TruncatedDigestListed", {std::string(kAbcSha).substr(0, 63)}, "abc", false, "not accepted"},
    {"DigestItselfIsNotAToken", {kAbcSha}, kAbcSha, false, "not accepted"},
    {"EmptyToken", {kAbcSha}, "", false, "no token"},
    {"EmptyTokenEvenIfItsDigestIsListed", {kEmptySha}, "", false, "no token"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Tokens, StaticTokenVerifierTable, ::testing::ValuesIn(kVerifyCases),
                         [](const ::testing::TestParamInfo<VerifyCase>& i) {
                           return i.param.name;
                         });

TEST(StaticTokenVerifier, WorksThroughTheInterface) {
  StaticTokenVerifier s({kAbcSha});
  const TokenVerifier& v = s;
  EXPECT_TRUE(v.Verify("abc", {}).ok());
  EXPECT_EQ(v.Verify("abcd", {}).status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace interlock::auth
