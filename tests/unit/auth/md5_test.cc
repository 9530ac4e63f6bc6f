#include "userspace/auth/md5.h"

#include "gtest/gtest.h"

namespace interlock::auth {
namespace {

TEST(Md5PasswordResponse, MatchesIndependentComputation) {
  // Computed with coreutils and OpenSSL, not with this code:
  //   inner=$(printf '%s' secretpostgres | md5sum | cut -d' ' -f1)   # 53f48b7c...
  //   { printf '%s' "$inner"; printf '\x01\x02\x03\x04'; } | md5sum  # bb41a296...
  absl::StatusOr<std::string> r =
      Md5PasswordResponse("postgres", "secret", Md5Salt{0x01, 0x02, 0x03, 0x04});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "md5bb41a296aab6baccb36ff243a562abff");
}

TEST(Md5PasswordResponse, DependsOnSaltUserAndPassword) {
  const std::string base = *Md5PasswordResponse("postgres", "secret", Md5Salt{1, 2, 3, 4});
  EXPECT_NE(*Md5PasswordResponse("postgres", "secret", Md5Salt{1, 2, 3, 5}), base);
  EXPECT_NE(*Md5PasswordResponse("postgre", "secret", Md5Salt{1, 2, 3, 4}), base);
  EXPECT_NE(*Md5PasswordResponse("postgres", "secreT", Md5Salt{1, 2, 3, 4}), base);
  EXPECT_EQ(base.size(), 35u);
}

TEST(Md5PasswordResponse, SaltBytesAreBinary) {
  // A salt with NUL and high bytes must be hashed as 4 raw bytes, not as a C string.
  EXPECT_NE(*Md5PasswordResponse("u", "p", Md5Salt{0x00, 0x00, 0x00, 0x00}),
            *Md5PasswordResponse("u", "p", Md5Salt{0x00, 0xff, 0x00, 0x00}));
}

}  // namespace
}  // namespace interlock::auth
