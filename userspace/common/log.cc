#include "userspace/common/log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace interlock {

namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};

constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
// sd-daemon(3) / syslog(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR.
constexpr int kPriorities[] = {7, 6, 4, 3};
}  // namespace

void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }

std::string FormatLogLine(LogLevel level, absl::string_view message, bool journal) {
  const int i = static_cast<int>(level);
  if (journal) return absl::StrCat("<", kPriorities[i], ">", kNames[i], ": ", message, "\n");
  return absl::StrCat("interlockd: ", kNames[i], ": ", message, "\n");
}

bool IsJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(journal_stream, ':');
  uint64_t dev = 0;
  uint64_t ino = 0;
  if (!absl::SimpleAtoi(parts.first, &dev) || !absl::SimpleAtoi(parts.second, &ino)) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

void LogLine(LogLevel level, const std::string& message) {
  // Decided once: stderr is not replaced while the daemon runs. (A child that inherited
  // JOURNAL_STREAM but whose stderr was redirected does not match and logs plain lines.)
  static const bool journal = IsJournalStream(::getenv("JOURNAL_STREAM"), STDERR_FILENO);
  const std::string line = FormatLogLine(level, message, journal);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace interlock
