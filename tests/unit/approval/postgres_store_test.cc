// The pure part of PostgresApprovalStore: which store URLs it accepts (the store itself
// is tested against a real PostgreSQL in tests/integration/approval_store_pg_test.cc).
#include "userspace/approval/postgres_store.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::approval {
namespace {

using ::testing::HasSubstr;

TEST(CheckStoreUrl, RemoteServerDefaultsToVerifyFull) {
  auto mode = CheckStoreUrl("postgres://interlock@db.example.internal:5432/approvals");
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, "verify-full");
  mode = CheckStoreUrl("postgresql://interlock@10.1.2.3/approvals?sslmode=verify-full&sslrootcert=/etc/ca.pem");
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, "");  // named: left as it is
}

TEST(CheckStoreUrl, RemoteServerWithAWeakerSslmodeIsRefused) {
  for (const char* m : {"disable", "allow", "prefer", "require", "verify-ca"}) {
    auto st = CheckStoreUrl(absl::StrCat("postgres://interlock@10.1.2.3/approvals?sslmode=", m));
    EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition) << m;
    EXPECT_THAT(st.status().message(), HasSubstr("verify-full")) << m;
  }
  // One remote host in a list is enough to need verification.
  auto st = CheckStoreUrl("postgres://interlock@127.0.0.1,10.1.2.3/approvals?sslmode=disable");
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
  st = CheckStoreUrl("postgres://interlock@/approvals?host=127.0.0.1&hostaddr=10.1.2.3&sslmode=disable");
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CheckStoreUrl, LoopbackAndUnixSocketsMayGoWithoutTls) {
  for (const char* url :
       {"postgres://interlock@127.0.0.1:5432/approvals?sslmode=disable", "postgres://interlock@127.9.8.7/approvals",
        "postgres://interlock@localhost/approvals", "postgres://interlock@[::1]:5432/approvals?sslmode=disable",
        "postgres:///approvals?host=/var/run/postgresql", "postgres:///approvals"}) {
    auto mode = CheckStoreUrl(url);
    ASSERT_TRUE(mode.ok()) << url << ": " << mode.status();
    EXPECT_EQ(*mode, "") << url;
  }
}

TEST(CheckStoreUrl, APasswordInTheUrlIsRefusedWithoutEchoingIt) {
  for (const char* url : {"postgres://interlock:hunter2@127.0.0.1/approvals",
                          "postgres://interlock@127.0.0.1/approvals?password=hunter2"}) {
    auto st = CheckStoreUrl(url);
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(st.status().message(), HasSubstr("store_password_ref"));
    EXPECT_THAT(st.status().message(), ::testing::Not(HasSubstr("hunter2")));
  }
}

TEST(CheckStoreUrl, NotAUrlIsInvalid) {
  auto st = CheckStoreUrl("postgres://interlock@127.0.0.1/approvals?nosuchoption=1");
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.status().message(), HasSubstr("nosuchoption"));
}

}  // namespace
}  // namespace interlock::approval
