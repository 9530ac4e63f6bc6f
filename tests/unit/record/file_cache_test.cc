#include "userspace/record/file_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"

namespace interlock::record {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

UniqueFd Create(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
}

void Write(FileCache::Slot& slot, const std::string& bytes) {
  auto fd = slot.Get();
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_EQ(::write(*fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

// Descriptors of this process open on files under `dir`.
int OpenUnder(const std::string& dir) {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) {
    char target[4096];
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
    if (len <= 0) continue;
    if (std::string(target, static_cast<size_t>(len)).rfind(dir + "/", 0) == 0) ++n;
  }
  ::closedir(d);
  return n;
}

FileCache::Slot Adopt(FileCache& cache, const std::string& path) {
  auto slot = cache.Adopt(path, Create(path));
  EXPECT_TRUE(slot.ok()) << slot.status();
  return slot.ok() ? *std::move(slot) : FileCache::Slot();
}

TEST(FileCache, HoldsAtMostMaxOpenDescriptors) {
  TempDir dir;
  FileCache cache(3);
  std::vector<FileCache::Slot> slots;
  for (int i = 0; i < 10; ++i) slots.push_back(Adopt(cache, dir.File(std::to_string(i))));
  EXPECT_EQ(cache.open_count(), 3u);
  EXPECT_EQ(OpenUnder(dir.path()), 3);
  EXPECT_EQ(cache.evictions(), 7u);
  // The three most recent keep theirs.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(slots[i].is_open(), i >= 7) << i;
}

TEST(FileCache, EvictsTheLeastRecentlyUsed) {
  TempDir dir;
  FileCache cache(2);
  FileCache::Slot a = Adopt(cache, dir.File("a"));
  FileCache::Slot b = Adopt(cache, dir.File("b"));
  Write(a, "1");  // a is now more recent than b
  FileCache::Slot c = Adopt(cache, dir.File("c"));
  EXPECT_TRUE(a.is_open());
  EXPECT_FALSE(b.is_open());
  EXPECT_TRUE(c.is_open());
}

TEST(FileCache, ReopenedFileIsAppendedToInOrder) {
  TempDir dir;
  FileCache cache(1);
  FileCache::Slot a = Adopt(cache, dir.File("a"));
  FileCache::Slot b = Adopt(cache, dir.File("b"));
  for (int i = 0; i < 5; ++i) {  // each write evicts the other file
    Write(a, "a" + std::to_string(i));
    Write(b, "b" + std::to_string(i));
  }
  EXPECT_EQ(cache.reopens(), 10u);  // a was evicted when b came: every write reopens
  EXPECT_EQ(OpenUnder(dir.path()), 1);
  EXPECT_EQ(*ReadFile(dir.File("a")), "a0a1a2a3a4");
  EXPECT_EQ(*ReadFile(dir.File("b")), "b0b1b2b3b4");
}

TEST(FileCache, ReopenOfARemovedFileFails) {
  TempDir dir;
  FileCache cache(1);
  FileCache::Slot a = Adopt(cache, dir.File("a"));
  FileCache::Slot b = Adopt(cache, dir.File("b"));
  ASSERT_FALSE(a.is_open());
  ASSERT_EQ(::unlink(dir.File("a").c_str()), 0);
  auto fd = a.Get();
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(fd.status().message(), HasSubstr("reopen " + dir.File("a")));
}

TEST(FileCache, ReopenOfAReplacedFileIsDataLossAndSticky) {
  TempDir dir;
  FileCache cache(1);
  FileCache::Slot a = Adopt(cache, dir.File("a"));
  Write(a, "original");
  FileCache::Slot b = Adopt(cache, dir.File("b"));
  // Another file renamed over the path: the recording must not continue in it.
  ASSERT_TRUE(WriteFileAtomic(dir.File("a"), "forged", 0600).ok());
  auto fd = a.Get();
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(a.Get().status(), fd.status());
  EXPECT_EQ(*ReadFile(dir.File("a")), "forged");
  EXPECT_EQ(OpenUnder(dir.path()), 1);  // b's; nothing leaked by the refused reopen
}

TEST(FileCache, ReopenAtTheOpenFilesLimitFails) {
  TempDir dir;
  FileCache cache(1);
  FileCache::Slot a = Adopt(cache, dir.File("a"));
  FileCache::Slot b = Adopt(cache, dir.File("b"));
  ASSERT_FALSE(a.is_open());
  // Use up every descriptor below the limit, then try to reopen.
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = old;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<UniqueFd> hog;
  for (;;) {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!fd) break;
    hog.push_back(std::move(fd));
  }
  auto fd = a.Get();
  hog.clear();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.status().message(), HasSubstr("Too many open files"));
}

TEST(FileCache, CloseClosesForGood) {
  TempDir dir;
  FileCache cache(4);
  FileCache::Slot a = Adopt(cache, dir.File("a"));
  EXPECT_TRUE(a.Close().ok());
  EXPECT_EQ(cache.open_count(), 0u);
  EXPECT_EQ(OpenUnder(dir.path()), 0);
  EXPECT_EQ(a.Get().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(a.Close().ok());
}

TEST(FileCache, DestroyedSlotLeavesTheCache) {
  TempDir dir;
  FileCache cache(2);
  {
    FileCache::Slot a = Adopt(cache, dir.File("a"));
    FileCache::Slot moved = std::move(a);
    EXPECT_EQ(cache.open_count(), 1u);
  }
  EXPECT_EQ(cache.open_count(), 0u);
  EXPECT_EQ(OpenUnder(dir.path()), 0);
}

}  // namespace
}  // namespace interlock::record
