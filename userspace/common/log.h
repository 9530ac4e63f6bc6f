// Minimal leveled logging to stderr (the journal, under systemd). Never logs secrets or
// session payloads; those go to the recorder only.
//   INTERLOCK_LOG(kInfo, "listening on %s", addr.ToString());
//
// On a terminal or a file a line reads "interlockd: info: listening on ...". When stderr is
// the stream journald gave the service (JOURNAL_STREAM names its device and inode,
// systemd.exec(5)), each line starts with its syslog priority instead, "<6>info: ...", the
// sd-daemon(3) prefix journald turns into the entry's PRIORITY (so `journalctl -p warning`
// works); the program name is dropped there, since the journal records it already.
#pragma once

#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace interlock {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogLine(LogLevel level, const std::string& message);

// The line LogLine writes (with its '\n'), for stderr that is (`journal`) or is not the
// journal's stream.
std::string FormatLogLine(LogLevel level, absl::string_view message, bool journal);
// True when `journal_stream` (the value of $JOURNAL_STREAM, "<dev>:<inode>"; null when
// unset) names the file `fd` is open on.
bool IsJournalStream(const char* journal_stream, int fd);

}  // namespace interlock

#define INTERLOCK_LOG(level, ...)                                            \
  do {                                                                       \
    if (::interlock::LogLevel::level >= ::interlock::GetLogLevel()) {        \
      ::interlock::LogLine(::interlock::LogLevel::level, absl::StrFormat(__VA_ARGS__)); \
    }                                                                        \
  } while (0)
