#include "userspace/record/retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"

namespace interlock::record {
namespace {

using test::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

RecordingFile File(const std::string& id, uint64_t bytes, absl::Time modified) {
  return RecordingFile{id + ".rec", id, bytes, modified};
}

std::vector<std::string> Ids(const std::vector<RecordingFile>& files) {
  std::vector<std::string> out;
  for (const RecordingFile& f : files) out.push_back(f.session_id);
  return out;
}

// Sessions that ended at clock times, one MiB each; the clock moves on.
class RetentionTest : public ::testing::Test {
 protected:
  void End(const std::string& id, uint64_t bytes = 1 << 20) {
    files_.push_back(File(id, bytes, clock_.Now()));
    clock_.Advance(absl::Hours(1));
  }
  interlock::testing::FakeClock clock_;
  std::vector<RecordingFile> files_;
  absl::flat_hash_set<std::string> live_;
};

TEST_F(RetentionTest, NoLimitsKeepsEverything) {
  End("a");
  End("b");
  EXPECT_THAT(PickExpired(files_, live_, RetentionLimits{}, clock_.Now()), IsEmpty());
}

TEST_F(RetentionTest, SizeLimitDeletesTheOldestFirst) {
  End("a");
  End("b");
  End("c");
  End("d");
  // Listed in any order (readdir): the choice is by age.
  std::swap(files_[0], files_[3]);
  RetentionLimits limits{.max_bytes = uint64_t{2} << 20};
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("a", "b"));
}

TEST_F(RetentionTest, SizeLimitAtExactlyTheTotalDeletesNothing) {
  End("a");
  End("b");
  RetentionLimits limits{.max_bytes = uint64_t{2} << 20};
  EXPECT_THAT(PickExpired(files_, live_, limits, clock_.Now()), IsEmpty());
}

TEST_F(RetentionTest, NeverPicksALiveSession) {
  End("live-oldest", uint64_t{10} << 20);
  End("b");
  End("c");
  live_.insert("live-oldest");
  RetentionLimits limits{.max_bytes = uint64_t{1} << 20, .max_age = absl::Minutes(1)};
  // The live one is older and bigger than any limit, and stays; it does not count toward
  // the size either (it cannot give its bytes back).
  clock_.Advance(absl::Hours(24));
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("b", "c"));
}

TEST_F(RetentionTest, AgeLimitFollowsTheClock) {
  End("a");  // t0
  End("b");  // t0 + 1h
  End("c");  // t0 + 2h; now t0 + 3h
  RetentionLimits limits{.max_age = absl::Hours(2)};
  // b is exactly 2 h old: not older than the limit yet.
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("a"));
  clock_.Advance(absl::Nanoseconds(1));
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("a", "b"));
  clock_.Advance(absl::Minutes(59));
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("a", "b"));
  clock_.Advance(absl::Minutes(2));
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("a", "b", "c"));
}

TEST_F(RetentionTest, AgeAndSizeTogether) {
  End("a");
  End("b", uint64_t{3} << 20);
  End("c");
  End("d");
  // a is too old; after it, b..d hold 5 MiB against a limit of 2.
  RetentionLimits limits{.max_bytes = uint64_t{2} << 20, .max_age = absl::Hours(3) + absl::Minutes(30)};
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, clock_.Now())), ElementsAre("a", "b"));
}

TEST_F(RetentionTest, TiesAreBrokenByName) {
  const absl::Time t = clock_.Now();
  files_ = {File("z", 1 << 20, t), File("m", 1 << 20, t), File("a", 1 << 20, t)};
  RetentionLimits limits{.max_bytes = uint64_t{1} << 20};
  EXPECT_THAT(Ids(PickExpired(files_, live_, limits, t)), ElementsAre("a", "m"));
}

TEST(ListRecordingFiles, ListsOnlyRecordingFiles) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("s1.rec"), "12345", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("s2.rec"), "", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("index.v1"), "xx", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File(".rec"), "no id", 0600).ok());
  ASSERT_EQ(::symlink("/etc/passwd", dir.File("link.rec").c_str()), 0);
  ASSERT_EQ(::mkdir(dir.File("dir.rec").c_str(), 0700), 0);
  // An mtime set by hand comes back.
  const timespec times[2] = {{1700000000, 0}, {1700000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir.File("s1.rec").c_str(), times, 0), 0);
  auto files = ListRecordingFiles(dir.path());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Ids(*files), UnorderedElementsAre("s1", "s2"));
  for (const RecordingFile& f : *files) {
    if (f.session_id == "s1") {
      EXPECT_EQ(f.bytes, 5u);
      EXPECT_EQ(f.modified, absl::FromUnixSeconds(1700000000));
      EXPECT_EQ(f.name, "s1.rec");
    }
  }
  EXPECT_FALSE(ListRecordingFiles(dir.File("missing")).ok());
}

TEST(FreeSpaceGauge, ReadsAgainOnlyAfterTheTtl) {
  TempDir dir;
  interlock::testing::FakeClock clock;
  FreeSpaceGauge gauge(dir.path(), absl::Seconds(1));
  auto first = gauge.Get(clock.Monotonic());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(*first, 0u);
  // The directory goes away: within the ttl the old reading stands, after it the error shows.
  const std::string gone = dir.File("sub");
  ASSERT_EQ(::mkdir(gone.c_str(), 0700), 0);
  FreeSpaceGauge sub(gone, absl::Seconds(1));
  ASSERT_TRUE(sub.Get(clock.Monotonic()).ok());
  ASSERT_EQ(::rmdir(gone.c_str()), 0);
  clock.Advance(absl::Milliseconds(999));
  EXPECT_TRUE(sub.Get(clock.Monotonic()).ok());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_FALSE(sub.Get(clock.Monotonic()).ok());
  ASSERT_EQ(::mkdir(gone.c_str(), 0700), 0);
  EXPECT_FALSE(sub.Get(clock.Monotonic()).ok()) << "still cached";
  sub.Invalidate();
  EXPECT_TRUE(sub.Get(clock.Monotonic()).ok());
}

}  // namespace
}  // namespace interlock::record
