#include "userspace/common/log.h"

#include <atomic>

namespace interlock {

namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};
}

void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }

void LogLine(LogLevel level, const std::string& message) {
  static constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
  std::fprintf(stderr, "interlockd: %s: %s\n", kNames[static_cast<int>(level)], message.c_str());
}

}  // namespace interlock
