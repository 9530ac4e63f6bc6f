#include "userspace/common/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock {
namespace {

TEST(Log, PlainLinesNameTheProgramAndLevel) {
  EXPECT_EQ(FormatLogLine(LogLevel::kInfo, "ready", false), "interlockd: info: ready\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kError, "audit: disk full", false),
            "interlockd: error: audit: disk full\n");
}

TEST(Log, JournalLinesCarryTheSyslogPriority) {
  EXPECT_EQ(FormatLogLine(LogLevel::kDebug, "x", true), "<7>debug: x\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kInfo, "ready", true), "<6>info: ready\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kWarning, "no policy", true), "<4>warning: no policy\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kError, "audit: disk full", true),
            "<3>error: audit: disk full\n");
}

TEST(Log, JournalStreamMatchesOnlyTheSameFile) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  struct stat st;
  ASSERT_EQ(::fstat(w.get(), &st), 0);
  const std::string mine = absl::StrCat(st.st_dev, ":", st.st_ino);
  EXPECT_TRUE(IsJournalStream(mine.c_str(), w.get()));

  UniqueFd other(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(other.valid());
  EXPECT_FALSE(IsJournalStream(mine.c_str(), other.get()));
  EXPECT_FALSE(IsJournalStream(nullptr, w.get()));
  EXPECT_FALSE(IsJournalStream("", w.get()));
  EXPECT_FALSE(IsJournalStream(absl::StrCat(st.st_dev).c_str(), w.get()));
  EXPECT_FALSE(IsJournalStream("garbage:1", w.get()));
  EXPECT_FALSE(IsJournalStream(mine.c_str(), -1));
}

}  // namespace
}  // namespace interlock
