#include "userspace/common/cgroup_fs.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/file_util.h"

namespace interlock {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A real mountinfo from a cgroup v2-only host (trimmed).
constexpr absl::string_view kUnifiedMountinfo =
    "22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "26 22 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n";

// A hybrid host: v1 controllers under /sys/fs/cgroup/<controller>, v2 at .../unified.
constexpr absl::string_view kHybridMountinfo =
    "25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "30 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup "
    "cgroup rw,memory\n";

TEST(CgroupFs, ParsesUnifiedMountinfo) {
  auto mount = ParseCgroup2Mount(kUnifiedMountinfo);
  ASSERT_TRUE(mount.ok()) << mount.status();
  EXPECT_EQ(*mount, "/sys/fs/cgroup");
}

TEST(CgroupFs, ParsesHybridMountinfo) {
  auto mount = ParseCgroup2Mount(kHybridMountinfo);
  ASSERT_TRUE(mount.ok()) << mount.status();
  EXPECT_EQ(*mount, "/sys/fs/cgroup/unified");
}

TEST(CgroupFs, OptionalFieldsOfAnyCountBeforeSeparator) {
  // mountinfo(5): zero or more optional fields ("shared:N", "master:N", ...) precede " - ".
  EXPECT_EQ(*ParseCgroup2Mount("26 22 0:25 / /cg0 rw - cgroup2 cgroup2 rw\n"), "/cg0");
  EXPECT_EQ(*ParseCgroup2Mount("26 22 0:25 / /cg1 rw shared:9 - cgroup2 cgroup2 rw\n"), "/cg1");
  EXPECT_EQ(*ParseCgroup2Mount(
                "26 22 0:25 / /cg3 rw shared:9 master:2 propagate_from:1 - cgroup2 none rw\n"),
            "/cg3");
}

TEST(CgroupFs, ReturnsFirstCgroup2Mount) {
  auto mount = ParseCgroup2Mount(
      "1 0 0:1 / /first rw - cgroup2 cgroup2 rw\n"
      "2 0 0:2 / /second rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(mount.ok()) << mount.status();
  EXPECT_EQ(*mount, "/first");
}

TEST(CgroupFs, NoCgroup2IsNotFound) {
  std::string v1_only(kHybridMountinfo);
  v1_only.erase(v1_only.find("26 25"), v1_only.find("27 25") - v1_only.find("26 25"));
  for (absl::string_view text :
       {absl::string_view(v1_only), absl::string_view(""), absl::string_view("\n\n")}) {
    auto mount = ParseCgroup2Mount(text);
    EXPECT_EQ(mount.status().code(), absl::StatusCode::kNotFound) << text;
  }
}

TEST(CgroupFs, SkipsGarbageLines) {
  auto mount = ParseCgroup2Mount(
      "garbage\n"
      " - cgroup2\n"                  // separator but no head fields
      "1 2 3 - cgroup2 cgroup2 rw\n"  // too few head fields for a mount point
      "1 2 0:3 / /x rw -\n"           // no separator (" - " needs a trailing space)
      "1 2 0:3 / /y rw - \n"          // separator, empty fstype
      "\x01\xff junk\n"
      "1 2 0:3 / /tmpfs-named-cgroup2 rw - tmpfs cgroup2 rw\n"  // source, not fstype
      "9 8 0:30 / /real rw shared:1 - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(mount.ok()) << mount.status();
  EXPECT_EQ(*mount, "/real");
  EXPECT_EQ(ParseCgroup2Mount("garbage\n - cgroup2\n1 2 3 - cgroup2 x\n").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CgroupFs, ParsesProcCgroupUnified) {
  auto path = ParseProcCgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, "/user.slice/user-1000.slice/session-2.scope");
  EXPECT_EQ(*ParseProcCgroup("0::/\n"), "/");
}

TEST(CgroupFs, ParsesProcCgroupHybrid) {
  auto path = ParseProcCgroup(
      "12:memory:/system.slice/x.service\n"
      "1:name=systemd:/system.slice/x.service\n"
      "0::/interlock/workloads/billing.3\n");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, "/interlock/workloads/billing.3");
}

TEST(CgroupFs, ProcCgroupWithoutV2LineIsNotFound) {
  for (absl::string_view text : {absl::string_view("12:memory:/a\n1:name=systemd:/a\n"),
                                 absl::string_view(""), absl::string_view("10::/not-zero\n")}) {
    EXPECT_EQ(ParseProcCgroup(text).status().code(), absl::StatusCode::kNotFound) << text;
  }
}

TEST(CgroupFs, CgroupDirResolvesAgainstMount) {
  const std::string mount = "/sys/fs/cgroup";
  EXPECT_EQ(CgroupDir(mount, "interlock"), "/sys/fs/cgroup/interlock");
  EXPECT_EQ(CgroupDir(mount, "interlock/workloads"), "/sys/fs/cgroup/interlock/workloads");
  EXPECT_EQ(CgroupDir(mount, "/interlock"), "/sys/fs/cgroup/interlock");
  EXPECT_EQ(CgroupDir(mount, "/sys/fs/cgroup/interlock"), "/sys/fs/cgroup/interlock");
  EXPECT_EQ(CgroupDir(mount, "/sys/fs/cgroup"), "/sys/fs/cgroup");
  // A sibling that merely shares the prefix is not under the mount.
  EXPECT_EQ(CgroupDir(mount, "/sys/fs/cgroupx"), "/sys/fs/cgroup/sys/fs/cgroupx");
  EXPECT_EQ(CgroupDir("/sys/fs/cgroup/unified", "interlock"), "/sys/fs/cgroup/unified/interlock");
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/common_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~TempDir() {
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

TEST(CgroupFs, CgroupIdOfDirIsInode) {
  TempDir dir;
  const std::string cg = dir.File("cg");
  ASSERT_EQ(::mkdir(cg.c_str(), 0755), 0);
  struct stat st;
  ASSERT_EQ(::stat(cg.c_str(), &st), 0);
  auto id = CgroupIdOfDir(cg);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, static_cast<uint64_t>(st.st_ino));

  ASSERT_TRUE(WriteFileAtomic(dir.File("file"), "x", 0600).ok());
  EXPECT_EQ(CgroupIdOfDir(dir.File("file")).status().code(), absl::StatusCode::kFailedPrecondition);
  auto missing = CgroupIdOfDir(dir.File("missing"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.File("missing")));
}

TEST(CgroupFs, CgroupProcsSkipsNonNumbers) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("cgroup.procs"), "1\n4242\nnot-a-pid\n\n77\n", 0644).ok());
  auto pids = CgroupProcs(dir.path());
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(1, 4242, 77));
  EXPECT_EQ(CgroupProcs(dir.File("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST(CgroupFs, CgroupTreeProcsWalksEveryCgroupBelow) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("cgroup.procs"), "1\n", 0644).ok());
  ASSERT_EQ(::mkdir(dir.File("a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.File("a/b").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.File("empty").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomic(dir.File("a/cgroup.procs"), "2\n3\n", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("a/b/cgroup.procs"), "4\n", 0644).ok());
  EXPECT_THAT(CgroupTreeProcs(dir.path()), UnorderedElementsAre(1, 2, 3, 4));
  EXPECT_THAT(CgroupTreeProcs(dir.File("missing")), IsEmpty());
}

// Units and slices are found by their directory's own name at any depth up to the
// limit, the start directory included; files and other names are not.
TEST(CgroupFs, FindsCgroupsByTheirOwnName) {
  TempDir t;
  const std::string d = t.path();
  for (const char* rel : {"/a.slice", "/a.slice/x.service", "/a.slice/b.slice",
                          "/a.slice/b.slice/x.service", "/a.slice/b.slice/y.service",
                          "/1", "/1/2", "/1/2/3", "/1/2/3/x.service"}) {
    ASSERT_EQ(::mkdir((d + rel).c_str(), 0755), 0) << rel;
  }
  ASSERT_TRUE(WriteFileAtomic(d + "/a.slice/y.service", "a file", 0600).ok());
  std::vector<std::string> found = FindCgroupsNamed(d, {"x.service", "y.service"}, 16);
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (std::vector<std::string>{d + "/1/2/3/x.service", d + "/a.slice/b.slice/x.service",
                                             d + "/a.slice/b.slice/y.service",
                                             d + "/a.slice/x.service"}));
  EXPECT_EQ(FindCgroupsNamed(d, {"x.service"}, 2),
            std::vector<std::string>{d + "/a.slice/x.service"});
  EXPECT_EQ(FindCgroupsNamed(d + "/a.slice", {"a.slice"}, 4), std::vector<std::string>{d + "/a.slice"});
  EXPECT_TRUE(FindCgroupsNamed(d, {}, 16).empty());
  EXPECT_TRUE(FindCgroupsNamed(d + "/gone", {"x.service"}, 16).empty());
}

}  // namespace
}  // namespace interlock
