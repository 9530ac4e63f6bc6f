// IdentityResolver against a fake /proc (a temp dir with <pid>/exe symlinks) and a fake
// cgroup tree (temp dirs whose inode numbers stand in for cgroup ids).
#include "userspace/identity/workload_identity.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace interlock::identity {
namespace {

class IdentityTest : public ::testing::Test {
 protected:
  IdentityTest() {
    std::string tmpl = "/tmp/identity_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    root_ = tmpl;
    mount_ = root_ + "/cgroup";
    proc_ = root_ + "/proc";
    MakeDir(mount_);
    MakeDir(proc_);
    MakeDir(mount_ + "/interlock");
    MakeDir(mount_ + "/interlock/workloads");
    MakeDir(mount_ + "/interlock/workloads/billing.1");
    MakeDir(mount_ + "/interlock/workloads/search.2");
    MakeDir(mount_ + "/interlock/workloads/search.2/child");
    MakeDir(mount_ + "/system.slice");  // outside the search dir
  }
  ~IdentityTest() override {
    ::nftw(
        root_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }

  static void MakeDir(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0) abort();
  }
  static uint64_t Inode(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) abort();
    return st.st_ino;
  }
  uint64_t CgroupId(absl::string_view rel) const { return Inode(absl::StrCat(mount_, rel)); }
  // proc/<pid>/exe -> target (which need not exist, like a deleted binary).
  void FakeProcess(uint32_t pid, const std::string& exe) {
    std::string dir = absl::StrCat(proc_, "/", pid);
    MakeDir(dir);
    if (::symlink(exe.c_str(), (dir + "/exe").c_str()) != 0) abort();
  }
  IdentityResolver Resolver() const {
    return IdentityResolver(mount_, mount_ + "/interlock", proc_);
  }

  std::string root_;
  std::string mount_;
  std::string proc_;
};

KernelAttestation Attested(uint64_t cgroup_id, uint32_t pid, uint32_t uid = 0) {
  KernelAttestation a;
  a.cgroup_id = cgroup_id;
  a.pid = pid;
  a.tid = pid + 1;
  a.uid = uid;
  a.gid = uid == 0 ? 0 : 1000;
  a.login_uid = 1000;
  a.comm = "python3";
  return a;
}

TEST_F(IdentityTest, ResolveFillsEverything) {
  FakeProcess(4242, "/usr/bin/python3.11");
  const uint64_t id = CgroupId("/interlock/workloads/billing.1");
  IdentityResolver resolver = Resolver();
  v1::WorkloadIdentity who = resolver.Resolve(Attested(id, 4242), "billing");
  EXPECT_EQ(who.workload(), "billing");
  EXPECT_EQ(who.cgroup_id(), id);
  EXPECT_EQ(who.cgroup_path(), "/interlock/workloads/billing.1");
  EXPECT_EQ(who.pid(), 4242u);
  EXPECT_EQ(who.tid(), 4243u);
  EXPECT_EQ(who.uid(), 0u);
  EXPECT_EQ(who.gid(), 0u);
  EXPECT_EQ(who.login_uid(), 1000u);
  EXPECT_EQ(who.comm(), "python3");
  EXPECT_EQ(who.exe(), "/usr/bin/python3.11");
  EXPECT_EQ(who.user(), "root");
}

TEST_F(IdentityTest, FindsNestedCgroupByWalking) {
  IdentityResolver resolver = Resolver();
  EXPECT_EQ(resolver.CgroupPath(CgroupId("/interlock/workloads/search.2/child")),
            "/interlock/workloads/search.2/child");
  EXPECT_EQ(resolver.CgroupPath(CgroupId("/interlock")), "/interlock");
}

TEST_F(IdentityTest, SearchDirEqualToMountGivesSlash) {
  IdentityResolver resolver(mount_, mount_, proc_);
  EXPECT_EQ(resolver.CgroupPath(CgroupId("")), "/");
  EXPECT_EQ(resolver.CgroupPath(CgroupId("/system.slice")), "/system.slice");
}

TEST_F(IdentityTest, GoneProcessLeavesExeEmpty) {
  const uint64_t id = CgroupId("/interlock/workloads/billing.1");
  IdentityResolver resolver = Resolver();
  v1::WorkloadIdentity who = resolver.Resolve(Attested(id, 999999), "billing");
  EXPECT_EQ(who.exe(), "");
  // The kernel-attested fields stand on their own.
  EXPECT_EQ(who.pid(), 999999u);
  EXPECT_EQ(who.comm(), "python3");
  EXPECT_EQ(who.cgroup_path(), "/interlock/workloads/billing.1");
}

TEST_F(IdentityTest, UserNamesAreReadAgainOnceTheyAreAMinuteOld) {
  interlock::testing::FakeClock clock{absl::FromUnixSeconds(1767225600)};
  std::map<uint32_t, std::string> passwd = {{1000, "alice"}};
  int lookups = 0;
  IdentityResolver resolver(mount_, mount_ + "/interlock", proc_, &clock, [&](uint32_t uid) -> std::optional<std::string> {
    ++lookups;
    auto it = passwd.find(uid);
    return it == passwd.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 1000), "").user(), "alice");
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 2000), "").user(), "");
  EXPECT_EQ(lookups, 2);
  // Renamed, and 2000 created: seen once the readings are kUserNameTtl old, not before.
  passwd[1000] = "alice2";
  passwd[2000] = "bob";
  clock.Advance(IdentityResolver::kUserNameTtl - absl::Seconds(1));
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 1000), "").user(), "alice");
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 2000), "").user(), "");
  EXPECT_EQ(lookups, 2);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 1000), "").user(), "alice2");
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 2000), "").user(), "bob");
  EXPECT_EQ(lookups, 4);
}

TEST_F(IdentityTest, WithoutAClockEveryResolveReadsTheUserName) {
  int lookups = 0;
  IdentityResolver resolver(mount_, mount_ + "/interlock", proc_, nullptr, [&](uint32_t) -> std::optional<std::string> {
    ++lookups;
    return "carol";
  });
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 7), "").user(), "carol");
  EXPECT_EQ(resolver.Resolve(Attested(0, 1, 7), "").user(), "carol");
  EXPECT_EQ(lookups, 2);
}

TEST_F(IdentityTest, UnknownUidLeavesUserEmpty) {
  IdentityResolver resolver = Resolver();
  v1::WorkloadIdentity who = resolver.Resolve(Attested(0, 1, /*uid=*/3999999999u), "");
  EXPECT_EQ(who.uid(), 3999999999u);
  EXPECT_EQ(who.user(), "");
  EXPECT_EQ(who.workload(), "");
}

TEST_F(IdentityTest, RememberCgroupShortCircuitsTheWalk) {
  const uint64_t id = CgroupId("/interlock/workloads/billing.1");
  IdentityResolver resolver = Resolver();
  resolver.RememberCgroup(id, "/remembered/path");
  EXPECT_EQ(resolver.CgroupPath(id), "/remembered/path");
  EXPECT_EQ(resolver.Resolve(Attested(id, 1), "billing").cgroup_path(), "/remembered/path");
  // Also for ids that exist nowhere in the tree (e.g. already removed).
  resolver.RememberCgroup(123456789012345u, "/gone");
  EXPECT_EQ(resolver.CgroupPath(123456789012345u), "/gone");
  // Forgetting falls back to the walk.
  resolver.ForgetCgroup(id);
  EXPECT_EQ(resolver.CgroupPath(id), "/interlock/workloads/billing.1");
}

TEST_F(IdentityTest, WalkResultIsCached) {
  const uint64_t id = CgroupId("/interlock/workloads/billing.1");
  IdentityResolver resolver = Resolver();
  EXPECT_EQ(resolver.CgroupPath(id), "/interlock/workloads/billing.1");
  // The directory moves; the cached answer stands until ForgetCgroup.
  ASSERT_EQ(::rename((mount_ + "/interlock/workloads/billing.1").c_str(),
                     (mount_ + "/interlock/workloads/billing.renamed").c_str()),
            0);
  EXPECT_EQ(resolver.CgroupPath(id), "/interlock/workloads/billing.1");
  resolver.ForgetCgroup(id);
  EXPECT_EQ(resolver.CgroupPath(id), "/interlock/workloads/billing.renamed");
}

TEST_F(IdentityTest, UnknownIdIsEmptyPath) {
  IdentityResolver resolver = Resolver();
  // A regular file's inode can never be a directory's.
  const std::string file = mount_ + "/interlock/cgroup.procs";
  int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(resolver.CgroupPath(Inode(file)), "");
  // Outside the search dir is not found either.
  EXPECT_EQ(resolver.CgroupPath(CgroupId("/system.slice")), "");
  EXPECT_EQ(resolver.Resolve(Attested(Inode(file), 1), "x").cgroup_path(), "");
}

TEST_F(IdentityTest, WalkReachesEightLevelsBelowSearchDir) {
  std::string dir = mount_ + "/interlock";
  std::string rel = "/interlock";
  for (int i = 1; i <= 8; ++i) {
    dir += absl::StrCat("/l", i);
    rel += absl::StrCat("/l", i);
    MakeDir(dir);
  }
  IdentityResolver resolver = Resolver();
  EXPECT_EQ(resolver.CgroupPath(Inode(dir)), rel);
}

}  // namespace
}  // namespace interlock::identity
