#include "userspace/common/privileges.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock {
namespace {

using ::testing::HasSubstr;

class TableDb final : public UserDb {
 public:
  std::optional<UserEntry> UserByName(const std::string& name) const override {
    for (const UserEntry& e : users_) {
      if (e.name == name) return e;
    }
    return std::nullopt;
  }
  std::optional<UserEntry> UserById(uid_t uid) const override {
    for (const UserEntry& e : users_) {
      if (e.uid == uid) return e;
    }
    return std::nullopt;
  }
  std::optional<gid_t> GroupByName(const std::string& name) const override {
    auto it = groups_.find(name);
    if (it == groups_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::vector<UserEntry> users_ = {
      {"root", 0, 0, "/root"},
      {"bob", 1000, 1000, "/home/bob"},
      {"nobody", 65534, 65534, "/nonexistent"},
      // A user whose name is digits: --user 4242 is the uid, not this name.
      {"4242", 3000, 3000, "/home/digits"},
  };
  std::map<std::string, gid_t> groups_ = {{"root", 0}, {"staff", 50}, {"nogroup", 65534}};
};

struct Case {
  const char* what;
  PrivilegeSpec spec;
  uid_t invoker = 0;
  // Expected outcome: either an error code + substring, or the credentials.
  absl::StatusCode code = absl::StatusCode::kOk;
  const char* message = "";
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const char* entry_name = nullptr;  // nullptr: no passwd entry expected
};

TEST(ResolveCredentials, Table) {
  using C = absl::StatusCode;
  // clang-format off
  const std::vector<Case> cases = {
      {"user by name, its primary group", {.user = "bob"}, 0, C::kOk, "", true, 1000, 1000, "bob"},
      {"user by uid with an entry", {.user = "65534"}, 0, C::kOk, "", true, 65534, 65534, "nobody"},
      {"digits are an id, not a name", {.user = "4242", .group = "7"}, 0, C::kOk, "", true, 4242, 7,
       nullptr},
      {"numeric uid without an entry needs --group", {.user = "4242"}, 0, C::kInvalidArgument,
       "--user 4242: no passwd entry for uid 4242, so no primary group: give --group"},
      {"group by name overrides", {.user = "bob", .group = "staff"}, 0, C::kOk, "", true, 1000, 50,
       "bob"},
      {"group by gid", {.user = "bob", .group = "0"}, 0, C::kOk, "", true, 1000, 0, "bob"},
      {"unknown user", {.user = "mallory"}, 0, C::kNotFound, "--user mallory: no such user"},
      {"unknown group", {.user = "bob", .group = "wheel"}, 0, C::kNotFound,
       "--group wheel: no such group"},
      {"uid -1 is not an id", {.user = "4294967295"}, 0, C::kInvalidArgument, "not a valid uid"},
      {"uid overflows", {.user = "99999999999"}, 0, C::kInvalidArgument, "not a valid uid"},
      {"gid -1 is not an id", {.user = "bob", .group = "4294967295"}, 0, C::kInvalidArgument,
       "not a valid gid"},
      {"signed uid is a name, and unknown", {.user = "-1"}, 0, C::kNotFound, "no such user"},
      {"root by name refused", {.user = "root"}, 0, C::kPermissionDenied,
       "--user root is root: refusing to run the agent as root"},
      {"root by uid refused", {.user = "0"}, 0, C::kPermissionDenied, "refusing"},
      {"root by padded uid refused", {.user = "000"}, 0, C::kPermissionDenied, "refusing"},
      {"root allowed: nothing dropped", {.user = "root", .allow_root = true}, 0, C::kOk, "", false,
       0, 0, "root"},
      {"root with --group is confusing", {.user = "root", .group = "staff", .allow_root = true}, 0,
       C::kInvalidArgument, "--group staff: needs a non-root user"},
      {"no user, root invoker refused", {}, 0, C::kPermissionDenied,
       "no --user and no SUDO_UID: the agent would run as the invoker, root: refusing"},
      {"no user, root invoker allowed", {.allow_root = true}, 0, C::kOk, "", false, 0, 0, nullptr},
      {"no user, non-root invoker stays", {}, 1000, C::kOk, "", false, 1000, 0, nullptr},
      {"--group without a user, non-root invoker", {.group = "staff"}, 1000, C::kInvalidArgument,
       "--group staff: needs --user"},
      {"SUDO_UID default", {.sudo_uid = "1000", .sudo_gid = "1000"}, 0, C::kOk, "", true, 1000,
       1000, "bob"},
      {"SUDO_GID wins over the passwd group", {.sudo_uid = "1000", .sudo_gid = "50"}, 0, C::kOk, "",
       true, 1000, 50, "bob"},
      {"SUDO_UID without SUDO_GID: passwd group", {.sudo_uid = "65534"}, 0, C::kOk, "", true, 65534,
       65534, "nobody"},
      {"SUDO_UID unknown, SUDO_GID given", {.sudo_uid = "5000", .sudo_gid = "5000"}, 0, C::kOk, "",
       true, 5000, 5000, nullptr},
      {"SUDO_UID unknown, no SUDO_GID", {.sudo_uid = "5000"}, 0, C::kInvalidArgument,
       "SUDO_UID=5000: no passwd entry"},
      {"SUDO_UID=0 refused", {.sudo_uid = "0", .sudo_gid = "0"}, 0, C::kPermissionDenied,
       "SUDO_UID=0 is root: refusing"},
      {"SUDO_UID garbage", {.sudo_uid = "1000; rm"}, 0, C::kInvalidArgument,
       "SUDO_UID=1000; rm: not a valid uid"},
      {"SUDO_GID garbage", {.sudo_uid = "1000", .sudo_gid = "x"}, 0, C::kInvalidArgument,
       "SUDO_GID=x: not a valid gid"},
      {"empty SUDO_UID is absent", {.sudo_uid = ""}, 0, C::kPermissionDenied, "refusing"},
      {"--user wins over SUDO_UID", {.user = "nobody", .sudo_uid = "1000"}, 0, C::kOk, "", true,
       65534, 65534, "nobody"},
      {"--user ignores SUDO_GID", {.user = "nobody", .sudo_uid = "1000", .sudo_gid = "50"}, 0,
       C::kOk, "", true, 65534, 65534, "nobody"},
      {"--group wins over SUDO_GID", {.group = "staff", .sudo_uid = "1000", .sudo_gid = "1000"}, 0,
       C::kOk, "", true, 1000, 50, "bob"},
  };
  // clang-format on
  TableDb db;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<Credentials> got = ResolveCredentials(c.spec, db, c.invoker);
    ASSERT_EQ(got.status().code(), c.code) << got.status();
    if (!got.ok()) {
      EXPECT_THAT(std::string(got.status().message()), HasSubstr(c.message));
      continue;
    }
    EXPECT_EQ(got->drop, c.drop);
    EXPECT_EQ(got->uid, c.uid);
    if (c.drop) {
      EXPECT_EQ(got->gid, c.gid);
    }
    if (c.entry_name == nullptr) {
      EXPECT_FALSE(got->entry.has_value());
    } else {
      ASSERT_TRUE(got->entry.has_value());
      EXPECT_EQ(got->entry->name, c.entry_name);
    }
  }
}

TEST(ResolveCredentials, RootRefusalSaysWhatRootCanUndo) {
  TableDb db;
  absl::StatusOr<Credentials> got = ResolveCredentials({.user = "root"}, db, 0);
  ASSERT_FALSE(got.ok());
  for (const char* s : {"detach", "cgroup", "kill interlockd", "state dir", "--allow-root"}) {
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(s));
  }
}

TEST(ParsePreserveFds, Table) {
  EXPECT_EQ(*ParsePreserveFds("0"), 0);
  EXPECT_EQ(*ParsePreserveFds("3"), 3);
  EXPECT_EQ(*ParsePreserveFds("1024"), 1024);
  for (const char* bad : {"", "-1", "+1", "1025", "x", "1x", " 1", "99999999999999", "0x10"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<int> r = ParsePreserveFds(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("--preserve-fds"));
  }
}

TEST(PrepareDrop, ReplacesHomeUserLognameForAKnownUser) {
  std::vector<std::string> env = {"HOME=/root",   "PATH=/usr/bin", "USER=root",
                                  "LOGNAME=root", "HOMEX=keep",    "SUDO_UID=1000"};
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  Credentials c{.drop = true,
                .uid = 65534,
                .gid = 65534,
                .entry = UserEntry{"nobody", 65534, 65534, "/nonexistent"}};
  auto p = PrepareDrop(c, envp.data());
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> got;
  for (char** e = (*p)->envp(); *e != nullptr; ++e) got.emplace_back(*e);
  EXPECT_THAT(
      got, ::testing::UnorderedElementsAre("PATH=/usr/bin", "HOMEX=keep", "SUDO_UID=1000",
                                           "HOME=/nonexistent", "USER=nobody", "LOGNAME=nobody"));
  EXPECT_GT((*p)->last_cap(), 30);  // CAP_AUDIT_READ (37) on every supported kernel
}

TEST(PrepareDrop, KeepsTheEnvironmentWithoutAPasswdEntry) {
  std::vector<std::string> env = {"HOME=/root", "USER=root"};
  std::vector<char*> envp = {env[0].data(), env[1].data(), nullptr};
  auto p = PrepareDrop(Credentials{.drop = true, .uid = 5000, .gid = 5000}, envp.data());
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> got;
  for (char** e = (*p)->envp(); *e != nullptr; ++e) got.emplace_back(*e);
  EXPECT_THAT(got, ::testing::ElementsAre("HOME=/root", "USER=root"));
}

// ApplyDrop for real, in a forked child (it changes the process for good). Needs root,
// which unit tests have in CI; without it the drop itself must fail, which we check too.
TEST(ApplyDrop, ChildEndsWithTheAskedIdsNoCapsAndCannotRegainRoot) {
  auto p = PrepareDrop(Credentials{.drop = true, .uid = 65534, .gid = 65534}, environ);
  ASSERT_TRUE(p.ok()) << p.status();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    DropFailure f = ApplyDrop(**p);
    if (f.stage != DropStage::kNone) _exit(10 + static_cast<int>(f.stage));
    // Independent checks through glibc, not the calls ApplyDrop used.
    if (::getuid() != 65534 || ::geteuid() != 65534 || ::getgid() != 65534) _exit(2);
    if (::getgroups(0, nullptr) != 0) _exit(3);
    if (::setuid(0) == 0 || ::seteuid(0) == 0) _exit(4);
    if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) _exit(5);
    if (::prctl(PR_CAPBSET_READ, 21 /* CAP_SYS_ADMIN */, 0, 0, 0) != 0) _exit(6);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (::geteuid() == 0) {
    EXPECT_EQ(WEXITSTATUS(status), 0);
  } else {
    EXPECT_GE(WEXITSTATUS(status), 10) << "an unprivileged drop to another user must fail";
  }
}

// Fail closed: without the privilege to drop (here: already dropped once), ApplyDrop
// reports the step that failed instead of carrying on to exec as whoever it is.
TEST(ApplyDrop, ReportsTheFailedStepWithoutPrivilege) {
  auto first = PrepareDrop(Credentials{.drop = true, .uid = 65534, .gid = 65534}, environ);
  auto second = PrepareDrop(Credentials{.drop = true, .uid = 4242, .gid = 4242}, environ);
  ASSERT_TRUE(first.ok() && second.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    (void)ApplyDrop(**first);  // as root: succeeds; as non-root: fails, either way unprivileged
    DropFailure f = ApplyDrop(**second);
    if (f.stage != DropStage::kBounding || f.err != EPERM) _exit(1);
    if (::getuid() == 4242) _exit(2);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ApplyDrop, NothingToDoWhenNotDropping) {
  auto p = PrepareDrop(Credentials{.drop = false}, environ);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(ApplyDrop(**p).stage, DropStage::kNone);  // and we are still who we were
  EXPECT_EQ(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
}

TEST(CloseOnExecFrom, MarksEveryFdFromFirst) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);  // not CLOEXEC
  int low = std::min(fds[0], fds[1]);
  int high = std::max(fds[0], fds[1]);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (CloseOnExecFrom(high, 1024) != 0) _exit(2);
    if ((::fcntl(high, F_GETFD) & FD_CLOEXEC) == 0) _exit(3);
    if ((::fcntl(low, F_GETFD) & FD_CLOEXEC) != 0) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace interlock
