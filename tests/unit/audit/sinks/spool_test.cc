#include "userspace/audit/sinks/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "userspace/common/file_util.h"

namespace interlock::audit::sinks {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = interlock::testing::MakeTempDir("spool-test-"); }
  void TearDown() override { interlock::testing::RemoveTree(dir_); }
  std::string SpoolDir() const { return dir_ + "/spool/sink"; }
  std::unique_ptr<Spool> Open(uint64_t max_bytes = 1 << 20, uint64_t segment_bytes = 1 << 20) {
    auto s =
        Spool::Open({.dir = SpoolDir(), .max_bytes = max_bytes, .segment_bytes = segment_bytes});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  std::string dir_;
};

TEST(SpoolRecord, EncodeDecodeRoundTrip) {
  std::string data = EncodeSpoolRecord("one") + EncodeSpoolRecord("") + EncodeSpoolRecord("three");
  uint64_t bad = 99;
  EXPECT_THAT(DecodeSpoolRecords(data, &bad), ElementsAre("one", "", "three"));
  EXPECT_EQ(bad, 0u);
}

TEST(SpoolRecord, TruncatedTailIsReportedNotReturned) {
  std::string data = EncodeSpoolRecord("one") + EncodeSpoolRecord("two");
  for (size_t cut = 1; cut < 11; ++cut) {
    uint64_t bad = 0;
    EXPECT_THAT(DecodeSpoolRecords(absl::string_view(data).substr(0, data.size() - cut), &bad),
                ElementsAre("one"));
    EXPECT_EQ(bad, 11 - cut);
  }
}

TEST(SpoolRecord, FlippedBitAndHugeLengthStopReading) {
  std::string data =
      EncodeSpoolRecord("one") + EncodeSpoolRecord("two") + EncodeSpoolRecord("three");
  std::string flipped = data;
  flipped[11 + 8] ^= 0x01;  // a payload byte of "two"
  uint64_t bad = 0;
  EXPECT_THAT(DecodeSpoolRecords(flipped, &bad), ElementsAre("one"));
  EXPECT_EQ(bad, data.size() - 11);
  std::string huge = data;
  huge[11] = huge[12] = huge[13] = huge[14] = '\xff';  // length 4 GiB - 1
  EXPECT_THAT(DecodeSpoolRecords(huge, &bad), ElementsAre("one"));
  EXPECT_THAT(DecodeSpoolRecords("garbage that is no spool", &bad), IsEmpty());
}

TEST_F(SpoolTest, AppendReadRemove) {
  auto spool = Open();
  EXPECT_EQ(spool->events(), 0u);
  ASSERT_TRUE(spool->Append({"a", "b"}).ok());
  ASSERT_TRUE(spool->Append({"c"}).ok());
  EXPECT_EQ(spool->events(), 3u);
  EXPECT_EQ(spool->bytes(), 3 * (kRecordHeaderBytes + 1));
  auto seg = spool->ReadOldest();
  ASSERT_TRUE(seg.ok() && seg->has_value());
  EXPECT_THAT((*seg)->records, ElementsAre("a", "b", "c"));
  // Appends after a read go to a new segment; the one read is unchanged.
  ASSERT_TRUE(spool->Append({"d"}).ok());
  auto again = spool->ReadOldest();
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->seq, (*seg)->seq);
  EXPECT_THAT((*again)->records, ElementsAre("a", "b", "c"));
  ASSERT_TRUE(spool->Remove((*seg)->seq).ok());
  auto next = spool->ReadOldest();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_THAT((*next)->records, ElementsAre("d"));
  ASSERT_TRUE(spool->Remove((*next)->seq).ok());
  EXPECT_EQ(spool->events(), 0u);
  EXPECT_EQ(spool->bytes(), 0u);
  auto none = spool->ReadOldest();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(SpoolTest, ModesArePrivate) {
  auto spool = Open();
  ASSERT_TRUE(spool->Append({"secret-ish"}).ok());
  struct stat st;
  ASSERT_EQ(::stat(SpoolDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((SpoolDir() + "/00000000000000000001.spool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SpoolTest, ReopenResumesWhatWasLeft) {
  {
    auto spool = Open(1 << 20, 64);  // tiny segments: several files
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(spool->Append({absl::StrCat("event-", i)}).ok());
  }
  auto spool = Open(1 << 20, 64);
  EXPECT_EQ(spool->events(), 20u);
  std::vector<std::string> all;
  while (true) {
    auto seg = spool->ReadOldest();
    ASSERT_TRUE(seg.ok());
    if (!seg->has_value()) break;
    for (auto& r : (*seg)->records) all.push_back(r);
    ASSERT_TRUE(spool->Remove((*seg)->seq).ok());
  }
  ASSERT_EQ(all.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(all[i], absl::StrCat("event-", i));  // oldest first
  // New segments after a reopen never reuse an old number.
  ASSERT_TRUE(spool->Append({"new"}).ok());
}

TEST_F(SpoolTest, BoundRefusesTheNewestWhole) {
  const uint64_t rec = kRecordHeaderBytes + 10;
  auto spool = Open(3 * rec);
  const std::string ten(10, 'x');
  ASSERT_TRUE(spool->Append({ten, ten}).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(spool->Append({ten, ten})));  // whole batch refused
  ASSERT_TRUE(spool->Append({ten}).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(spool->Append({"y"})));
  EXPECT_EQ(spool->events(), 3u);
  EXPECT_LE(spool->bytes(), 3 * rec);
}

TEST_F(SpoolTest, CorruptFileDeliversTheGoodPrefixAndIsRemoved) {
  ASSERT_TRUE(MakeDirs(SpoolDir(), 0700).ok());
  const std::string path = SpoolDir() + "/00000000000000000007.spool";
  std::string data = EncodeSpoolRecord("good-1") + EncodeSpoolRecord("good-2") +
                     std::string("\x05\x00\x00\x00torn", 8);
  ASSERT_TRUE(WriteFileAtomic(path, data, 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(SpoolDir() + "/README", "not a segment", 0600).ok());
  auto spool = Open();
  EXPECT_EQ(spool->events(), 2u);
  auto seg = spool->ReadOldest();
  ASSERT_TRUE(seg.ok() && seg->has_value());
  EXPECT_EQ((*seg)->seq, 7u);
  EXPECT_THAT((*seg)->records, ElementsAre("good-1", "good-2"));
  EXPECT_EQ((*seg)->corrupt_bytes, 8u);
  ASSERT_TRUE(spool->Remove(7).ok());
  EXPECT_EQ(spool->bytes(), 0u);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
  // The next append gets a sequence after the old file's.
  ASSERT_TRUE(spool->Append({"x"}).ok());
  EXPECT_EQ(::access((SpoolDir() + "/00000000000000000008.spool").c_str(), F_OK), 0);
}

TEST_F(SpoolTest, FileDeletedBehindItsBackIsForgotten) {
  auto spool = Open();
  ASSERT_TRUE(spool->Append({"a"}).ok());
  ASSERT_EQ(::unlink((SpoolDir() + "/00000000000000000001.spool").c_str()), 0);
  EXPECT_FALSE(spool->ReadOldest().ok());
  auto none = spool->ReadOldest();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(spool->events(), 0u);
}

}  // namespace
}  // namespace interlock::audit::sinks
