#include "userspace/record/spare_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"
#include "userspace/record/recorder.h"
#include "userspace/record/verifier.h"

namespace interlock::record {
namespace {

using test::SampleOpen;
using test::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Polls for up to 10 s (the pool's thread runs on its own).
bool Eventually(const std::function<bool()>& cond) {
  for (int i = 0; i < 1000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

size_t OpenDescriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST(SpareFilesTest, ReadyFilesAreUnnamedUntilLinkedThenAre0600RecordingFiles) {
  TempDir dir;
  auto spares = SpareFiles::Start(dir.path(), 4);
  ASSERT_TRUE(Eventually([&] { return spares->stats().ready == 4; }));
  EXPECT_THAT(Names(dir.path()), IsEmpty()) << "spares have no name in the directory";

  UniqueFd fd = spares->Take();
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(SpareFiles::Link(fd.get(), dir.File("a.rec")).ok());
  ASSERT_EQ(::write(fd.get(), "abc", 3), 3);
  ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(::write(fd.get(), "de", 2), 2);  // O_APPEND: after "abc", whatever the offset
  EXPECT_EQ(ReadFile(dir.File("a.rec")).value_or(""), "abcde");
  struct stat st;
  ASSERT_EQ(::stat(dir.File("a.rec").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_THAT(Names(dir.path()), ElementsAre("a.rec"));
  EXPECT_EQ(spares->stats().taken, 1u);
  EXPECT_TRUE(Eventually([&] { return spares->stats().ready == 4; })) << "the thread makes another";
}

TEST(SpareFilesTest, LinkRefusesAnExistingPathAsOExclWould) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("b.rec"), "someone else's", 0600).ok());
  auto spares = SpareFiles::Start(dir.path(), 1);
  ASSERT_TRUE(Eventually([&] { return spares->stats().ready == 1; }));
  UniqueFd fd = spares->Take();
  ASSERT_TRUE(fd.valid());
  absl::Status st = SpareFiles::Link(fd.get(), dir.File("b.rec"));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_THAT(st.message(), HasSubstr("b.rec"));
  EXPECT_EQ(ReadFile(dir.File("b.rec")).value_or(""), "someone else's");
}

TEST(SpareFilesTest, AnEmptyPoolSaysWhyAndHandsOutNothing) {
  TempDir dir;
  const std::string missing = dir.File("no-such-dir");
  auto spares = SpareFiles::Start(missing, 4);
  ASSERT_TRUE(Eventually([&] { return !spares->stats().last_error.empty(); }));
  EXPECT_THAT(spares->stats().last_error, HasSubstr(missing));
  EXPECT_FALSE(spares->Take().valid());
  EXPECT_FALSE(spares->Take().valid());
  EXPECT_EQ(spares->stats().missed, 2u);
  EXPECT_EQ(spares->stats().taken, 0u);
  // Destroyed while its thread waits out kRetryPause: the stop wakes it.
}

TEST(SpareFilesTest, UnusedSparesAreClosedWithThePool) {
  TempDir dir;
  const size_t before = OpenDescriptors();
  {
    auto spares = SpareFiles::Start(dir.path(), 8);
    ASSERT_TRUE(Eventually([&] { return spares->stats().ready == 8; }));
    EXPECT_EQ(OpenDescriptors(), before + 8);
  }
  EXPECT_EQ(OpenDescriptors(), before);
  EXPECT_THAT(Names(dir.path()), IsEmpty());
}

TEST(SpareFilesTest, ARecorderMadeFromASpareVerifiesAndRefusesAnExistingPath) {
  TempDir dir;
  RecordingKey key = RecordingKey::Generate();
  interlock::testing::FakeClock clock{absl::FromUnixSeconds(1767225600)};
  auto spares = SpareFiles::Start(dir.path(), 2);
  ASSERT_TRUE(Eventually([&] { return spares->stats().ready == 2; }));
  RecorderOptions opts;
  opts.spares = spares.get();
  auto rec = Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock, opts);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(spares->stats().taken, 1u);
  ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM, "SELECT 1").ok());
  v1::SessionClose close;
  close.set_outcome("closed");
  ASSERT_TRUE((*rec)->Close(close).ok());
  const VerifyReport report = VerifyRecording(ReadFile(dir.File("s.rec")).value_or(""), key.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kValid) << report.detail;

  auto again = Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock, opts);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(Names(dir.path()), ElementsAre("s.rec"));
}

}  // namespace
}  // namespace interlock::record
