// Minimal leveled logging to stderr (the journal, under systemd). Never logs secrets or
// session payloads; those go to the recorder only.
//   INTERLOCK_LOG(kInfo, "listening on %s", addr.ToString());
#pragma once

#include <cstdio>

#include "absl/strings/str_format.h"

namespace interlock {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogLine(LogLevel level, const std::string& message);

}  // namespace interlock

#define INTERLOCK_LOG(level, ...)                                            \
  do {                                                                       \
    if (::interlock::LogLevel::level >= ::interlock::GetLogLevel()) {        \
      ::interlock::LogLine(::interlock::LogLevel::level, absl::StrFormat(__VA_ARGS__)); \
    }                                                                        \
  } while (0)
