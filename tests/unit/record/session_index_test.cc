#include "userspace/record/session_index.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"

namespace interlock::record {
namespace {

using test::TempDir;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

v1::RecordingIndexEntry Entry(const std::string& id, const std::string& outcome = "closed") {
  v1::RecordingIndexEntry e;
  e.mutable_summary()->set_session_id(id);
  e.mutable_summary()->set_workload("billing");
  e.mutable_summary()->set_outcome(outcome);
  e.mutable_summary()->set_state("sealed");
  e.set_file_bytes(1234);
  return e;
}

std::vector<std::string> Ids(const IndexContents& c) {
  std::vector<std::string> out;
  for (const auto& [id, e] : c.entries) out.push_back(id);
  return out;
}

TEST(RecordingIndex, TwoEntriesInOneRead) {
  const std::string bytes = EncodeIndexEntry(Entry("a")) + EncodeIndexEntry(Entry("b"));
  IndexContents c = ParseRecordingIndex(bytes);
  EXPECT_THAT(Ids(c), UnorderedElementsAre("a", "b"));
  EXPECT_EQ(c.ignored_bytes, 0u);
  EXPECT_EQ(c.entries["a"].summary().workload(), "billing");
  EXPECT_EQ(c.entries["b"].file_bytes(), 1234u);
}

TEST(RecordingIndex, EveryPrefixParsesToTheWholeEntriesInIt) {
  const std::string first = EncodeIndexEntry(Entry("a"));
  const std::string bytes = first + EncodeIndexEntry(Entry("b"));
  for (size_t n = 0; n <= bytes.size(); ++n) {
    IndexContents c = ParseRecordingIndex(absl::string_view(bytes).substr(0, n));
    const size_t whole = n == bytes.size() ? 2 : n >= first.size() ? 1 : 0;
    EXPECT_EQ(c.entries.size(), whole) << n;
    EXPECT_EQ(c.ignored_bytes, n - (whole == 2 ? bytes.size() : whole == 1 ? first.size() : 0)) << n;
  }
}

TEST(RecordingIndex, LaterEntryForTheSameSessionWins) {
  IndexContents c = ParseRecordingIndex(EncodeIndexEntry(Entry("a", "first")) + EncodeIndexEntry(Entry("a", "second")));
  ASSERT_EQ(c.entries.size(), 1u);
  EXPECT_EQ(c.entries["a"].summary().outcome(), "second");
}

TEST(RecordingIndex, OversizedLengthStopsTheEntries) {
  std::string bytes = EncodeIndexEntry(Entry("a"));
  bytes += "\xff\xff\xff\x7f";  // a 268 MB length
  bytes += std::string(100, 'x');
  IndexContents c = ParseRecordingIndex(bytes);
  EXPECT_THAT(Ids(c), UnorderedElementsAre("a"));
  EXPECT_EQ(c.ignored_bytes, 104u);
}

TEST(RecordingIndex, GarbageAndEntriesWithoutIdStop) {
  EXPECT_TRUE(ParseRecordingIndex(std::string("\x05\xff\xff\xff\xff\xff", 6)).entries.empty());
  v1::RecordingIndexEntry no_id;
  no_id.set_file_bytes(1);
  IndexContents c = ParseRecordingIndex(EncodeIndexEntry(no_id) + EncodeIndexEntry(Entry("a")));
  EXPECT_TRUE(c.entries.empty());
  EXPECT_GT(c.ignored_bytes, 0u);
}

TEST(RecordingIndex, AppendReadAndCompact) {
  TempDir dir;
  const std::string path = dir.File("index.v1");
  auto missing = ReadRecordingIndex(path);
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->entries.empty());

  auto index = RecordingIndex::Open(path);
  ASSERT_TRUE(index.ok()) << index.status();
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE((*index)->Append(Entry(id)).ok());
  auto read = ReadRecordingIndex(path);
  ASSERT_TRUE(read.ok());
  EXPECT_THAT(Ids(*read), UnorderedElementsAre("a", "b", "c"));

  ASSERT_TRUE((*index)->Compact({"a", "c", "not-in-index"}).ok());
  ASSERT_TRUE((*index)->Append(Entry("d")).ok()) << "appends go to the new file";
  read = ReadRecordingIndex(path);
  ASSERT_TRUE(read.ok());
  EXPECT_THAT(Ids(*read), UnorderedElementsAre("a", "c", "d"));
  EXPECT_EQ(read->ignored_bytes, 0u);
}

TEST(RecordingIndex, ATornTailIsIgnoredAndLaterAppendsAreLost) {
  // What a crash inside a write leaves: entries before it still read.
  TempDir dir;
  const std::string path = dir.File("index.v1");
  const std::string whole = EncodeIndexEntry(Entry("a"));
  const std::string torn = EncodeIndexEntry(Entry("b")).substr(0, 5);
  ASSERT_TRUE(WriteFileAtomic(path, whole + torn, 0600).ok());
  auto read = ReadRecordingIndex(path);
  ASSERT_TRUE(read.ok());
  EXPECT_THAT(Ids(*read), UnorderedElementsAre("a"));
  EXPECT_EQ(read->ignored_bytes, 5u);
  // interlockd compacts at start, which drops the torn bytes.
  auto index = RecordingIndex::Open(path);
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE((*index)->Compact({"a"}).ok());
  ASSERT_TRUE((*index)->Append(Entry("c")).ok());
  read = ReadRecordingIndex(path);
  EXPECT_THAT(Ids(*read), UnorderedElementsAre("a", "c"));
}

TEST(RecordingIndex, OversizedEntryIsRefused) {
  TempDir dir;
  auto index = RecordingIndex::Open(dir.File("index.v1"));
  ASSERT_TRUE(index.ok());
  v1::RecordingIndexEntry big = Entry("a");
  big.mutable_summary()->set_exe(std::string(RecordingIndex::kMaxEntryBytes, 'x'));
  absl::Status st = (*index)->Append(big);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("> max"));
}

}  // namespace
}  // namespace interlock::record
