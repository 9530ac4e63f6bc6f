#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/control/server.h"

namespace interlock::control {
namespace {

using ::testing::HasSubstr;

Caller MakeCaller(uid_t uid, gid_t gid, std::string cgroup = "/user.slice") {
  Caller c;
  c.cred = net::PeerCred{/*pid=*/4242, uid, gid};
  c.cgroup_path = std::move(cgroup);
  return c;
}

TEST(AuthorizeCaller, Table) {
  constexpr gid_t kAdmin = 990;
  struct Case {
    const char* name;
    Caller caller;
    std::optional<gid_t> admin_gid;
    std::vector<gid_t> groups;
    bool enrolled;
    bool allowed;
  };
  const Case cases[] = {
      {"root, root-only", MakeCaller(0, 0), std::nullopt, {}, false, true},
      {"root, admin group set", MakeCaller(0, 0), kAdmin, {}, false, true},
      {"user, root-only", MakeCaller(1000, 1000), std::nullopt, {}, false, false},
      {"user, root-only, in a group that would match",
       MakeCaller(1000, kAdmin),
       std::nullopt,
       {kAdmin},
       false,
       false},
      {"user, not in admin group", MakeCaller(1000, 1000), kAdmin, {4, 24, 27}, false, false},
      {"user, admin via primary gid", MakeCaller(1000, kAdmin), kAdmin, {}, false, true},
      {"user, admin via supplementary group",
       MakeCaller(1000, 1000),
       kAdmin,
       {4, kAdmin, 27},
       false,
       true},
      {"gid 0 is not uid 0", MakeCaller(1000, 0), std::nullopt, {0}, false, false},
      {"root in enrolled cgroup", MakeCaller(0, 0), std::nullopt, {}, true, false},
      {"admin in enrolled cgroup", MakeCaller(1000, kAdmin), kAdmin, {kAdmin}, true, false},
  };
  for (const Case& c : cases) {
    absl::Status st = AuthorizeCaller(c.caller, c.admin_gid, c.groups, c.enrolled);
    if (c.allowed) {
      EXPECT_TRUE(st.ok()) << c.name << ": " << st;
    } else {
      EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << c.name << ": " << st;
      EXPECT_THAT(st.message(), HasSubstr("control: refused")) << c.name;
    }
  }
}

TEST(AuthorizeCaller, NonAdminRefusalSaysWhy) {
  absl::Status st = AuthorizeCaller(MakeCaller(1000, 1000), gid_t{990}, {}, false);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("uid 1000"));
  EXPECT_THAT(st.message(), HasSubstr("neither root nor in the admin group"));
}

TEST(AuthorizeCaller, EnrolledCgroupRefusedEvenForRoot) {
  absl::Status st = AuthorizeCaller(MakeCaller(0, 0, "/interlock/workloads/billing.3"),
                                    std::nullopt, {}, /*in_enrolled_cgroup=*/true);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("is an enrolled workload"));
  EXPECT_THAT(st.message(), HasSubstr("/interlock/workloads/billing.3"));
  EXPECT_THAT(st.message(), HasSubstr("pid 4242"));
}

}  // namespace
}  // namespace interlock::control
