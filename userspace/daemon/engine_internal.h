// What the engine's translation units (engine.cc and engine_*.cc: one class, split by what
// each part does) share privately. Not part of the daemon's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bpf/include/interlock/datapath.h"
#include "interlock/v1/identity.pb.h"
#include "userspace/daemon/engine.h"
#include "userspace/net/socket.h"

namespace interlock::daemon::engine_internal {

// Below this much free memory budget, new sessions are refused (memory_budget).
inline constexpr size_t kSessionMemoryFloor = 1 << 20;
// Descriptors interlockd keeps for itself besides the sessions' sockets and recordings:
// listeners (per namespace), BPF maps and links, audit files and sinks, control clients.
inline constexpr uint64_t kDaemonFds = 256;
// Recording descriptors kept open however tight the open-files limit is: with the default
// max_sessions (10,000) at a 20,000 limit the sockets alone would take it all, and a
// smaller cache would make a few dozen busy sessions reopen their files every write batch.
inline constexpr uint64_t kMinRecordingFiles = 128;

// Recording retention runs once a minute from the tick, and at most every 10 s when new
// sessions find the disk below the floor (it lists and stats the directory); the free
// space is read at most once a second.
inline constexpr absl::Duration kRetentionInterval = absl::Seconds(60);
inline constexpr absl::Duration kRetentionMinInterval = absl::Seconds(10);
inline constexpr absl::Duration kFreeSpaceTtl = absl::Seconds(1);
// The per-tick namespace sync reuses the last walk of the cgroup hierarchy for enrolled
// units' cgroups for this long (a refused connect asks for a fresh walk at once).
inline constexpr absl::Duration kUnitDirsRescan = absl::Seconds(10);

inline v1::Endpoint ToEndpoint(const net::SockAddr& a) {
  v1::Endpoint e;
  e.set_address(a.ip());
  e.set_port(a.port());
  return e;
}

inline bool ValidWorkloadName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return name != "." && name != "..";
}

inline const char* ReasonName(uint32_t reason) {
  switch (reason) {
    case IL_REASON_DEFAULT_DENY: return "default_deny";
    case IL_REASON_ENGINE_DOWN: return "engine_down";
    case IL_REASON_NOT_STREAM: return "not_stream";
    case IL_REASON_MAP_FULL: return "map_full";
    case IL_REASON_ENGINE_PORT: return "engine_port_bind";
    case IL_REASON_ENGINE_UNVERIFIED: return "engine_unverified";
    default: return "unknown";
  }
}

// True when `path` is `dir` or below it (both absolute, or both relative to one root).
inline bool IsSameOrBelow(absl::string_view path, absl::string_view dir) {
  return path == dir || (absl::StartsWith(path, dir) && path.size() > dir.size() &&
                         (dir.empty() || dir.back() == '/' || path[dir.size()] == '/'));
}

inline std::string CgroupPathRelative(const std::string& mount, const std::string& dir) {
  std::string rel = dir.substr(mount.size());
  return rel.empty() ? "/" : rel;
}

}  // namespace interlock::daemon::engine_internal

namespace interlock::daemon {

// Routes epoll readiness for an engine-owned fd to a member function.
class Engine::FdWatcher final : public net::IoHandler {
 public:
  explicit FdWatcher(std::function<void()> fn) : fn_(std::move(fn)) {}
  void OnIo(uint32_t) override { fn_(); }

 private:
  std::function<void()> fn_;
};

}  // namespace interlock::daemon
