// Datapath: the kernel half of Interlock, seen from userspace. Loads (or re-adopts) the
// BPF programs in bpf/, attaches them at interlock's cgroup root, pins links and maps
// under a bpffs directory, and gives typed access to the maps and the event ring buffer.
// This is the only code that links libbpf.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto dp, Datapath::Open({.pin_path = "/sys/fs/bpf/interlock",
//       .cgroup_dir = "/sys/fs/cgroup/interlock", .settings = settings}));
//   dp->SetResources(entries);
//   dp->Enroll(cgroup_id, {.workload_id = 3, .flags = IL_ENROLL_DEFAULT_DENY});
//   dp->MarkEngineListener(listen_fd);            // each listener, once it listens
//   auto info = dp->LookupConn(accepted_fd);       // on accept
//
// Fail closed: links and maps stay pinned when the process exits (also on crash), so
// enrolled connects to protected resources keep being redirected to the (dead) engine
// listener and are refused. Open() on a restart re-adopts the pins: maps are reused with
// their contents, links are updated in place to the newly loaded programs, so there is
// no window without enforcement. Teardown() removes the pins, detaching everything.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/include/interlock/datapath.h"

namespace interlock::bpf {

struct DatapathOptions {
  // bpffs directory for pins; created (and bpffs mounted at /sys/fs/bpf) if missing.
  std::string pin_path;
  // Absolute cgroup v2 directory where the programs are attached (must exist).
  std::string cgroup_dir;
  // Written to the settings map on every Open().
  il_settings settings{};
};

// A resource entry for the LPM trie. `addr` is 16 bytes network order, IPv4 mapped;
// `prefix_bits` counts over the 128-bit form (IPv4 /32 is 128).
struct ResourceEntry {
  std::array<uint8_t, 16> addr{};
  uint32_t prefix_bits = 128;
  uint16_t port = 0;  // host order; 0 = any port
  il_resource value{};
};

// A protected unix socket path: an enrolled connect() to `path` (as spelled) is rewritten
// to `engine_path`, interlockd's listener for resource `resource_id`.
struct UnixResourceEntry {
  std::string path;
  std::string engine_path;
  uint32_t resource_id = 0;
};

struct DatapathStats {
  uint64_t redirected = 0;
  uint64_t denied = 0;
  uint64_t spliced_msgs = 0;
  uint64_t events_dropped = 0;
  uint64_t enrolled_by_path = 0;
  uint64_t enrolled_by_name = 0;
  uint64_t splice_fallbacks = 0;
};

// A cgroup enrolled by its path from the cgroup2 hierarchy's root ("/interlock/a/b"):
// whenever a cgroup is created at that path the kernel enrolls it, before it is visible.
struct PathEnrollment {
  std::string path;
  il_enrollment enrollment{};
};

// A cgroup enrolled by its own name (a systemd unit or slice, "billing-agent.service"),
// wherever in the hierarchy it is: whenever a cgroup of that name is created the kernel
// enrolls it, before it is visible.
struct NameEnrollment {
  std::string name;
  il_enrollment enrollment{};
};

// Cgroups whose own name is `prefix`, anything, then `suffix` ("docker-" "*" ".scope"):
// enrolled at creation, wherever they are, when no exact name matched.
struct NamePatternEnrollment {
  std::string prefix;
  std::string suffix;
  il_enrollment enrollment{};
};

// A user or group whose processes are enrolled wherever they run (when no cgroup
// enrollment governs them): the task's real uid, or its primary gid.
struct IdEnrollment {
  enum Kind { kUid, kGid };
  Kind kind = kUid;
  uint32_t id = 0;
  il_enrollment enrollment{};
};

class Datapath {
 public:
  // Loads or re-adopts, attaches, pins. Errors: PERMISSION_DENIED without CAP_BPF/
  // CAP_SYS_ADMIN, NOT_FOUND for a missing cgroup dir, INTERNAL for libbpf failures
  // (message carries libbpf's errno text).
  static absl::StatusOr<std::unique_ptr<Datapath>> Open(const DatapathOptions& options);
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // True when Open() found existing pins and re-adopted them.
  bool readopted() const;

  absl::Status WriteSettings(const il_settings& settings);

  // Replaces the protected-resource table with `entries` (adds new, deletes stale).
  absl::Status SetResources(const std::vector<ResourceEntry>& entries);

  absl::Status Enroll(uint64_t cgroup_id, const il_enrollment& enrollment);
  absl::Status Unenroll(uint64_t cgroup_id);
  // All current enrollments (for re-adoption after a restart).
  absl::StatusOr<std::vector<std::pair<uint64_t, il_enrollment>>> ListEnrollments();

  // Replaces the enroll-by-path table. INVALID_ARGUMENT for a path that is not absolute
  // or longer than IL_CGROUP_PATH_MAX - 1.
  absl::Status SetEnrolledPaths(const std::vector<PathEnrollment>& paths);
  // Replaces the enroll-by-name table. INVALID_ARGUMENT for a name with a '/', or empty,
  // or longer than IL_CGROUP_PATH_MAX - 1.
  absl::Status SetEnrolledNames(const std::vector<NameEnrollment>& names);
  // Replaces the table of name patterns. INVALID_ARGUMENT for more than
  // IL_MAX_NAME_PATTERNS, or a part of IL_NAME_PATTERN_PART bytes or more, or with a '/'.
  absl::Status SetEnrolledNamePatterns(const std::vector<NamePatternEnrollment>& patterns);
  // Replaces the table of enrolled users and groups.
  absl::Status SetEnrolledIds(const std::vector<IdEnrollment>& ids);
  // Replaces the set of cgroups that are never governed (interlockd's own).
  absl::Status SetExemptCgroups(const std::vector<uint64_t>& cgroup_ids);

  // Replaces the table of destinations a default-deny enrollment may still reach.
  absl::Status SetAllowedDestinations(const std::vector<ResourceEntry>& entries);

  // True when the kernel has the unix-domain hooks (cgroup/connect_unix,
  // getpeername_unix, sendmsg_unix; Linux >= 6.7) and they are attached.
  bool unix_hooks() const;
  // Whether the sk_msg program that bounds interlockd's spliced direction is loaded.
  bool splice_bounded() const;
  // Replaces the table of protected unix socket paths. INVALID_ARGUMENT for an empty or
  // abstract path, or one (or a listener path) longer than IL_UNIX_PATH_MAX bytes;
  // INTERNAL for libbpf failures.
  absl::Status SetUnixResources(const std::vector<UnixResourceEntry>& entries);

  // Marks `listen_fd` (a listening TCP socket of this process) as the engine's: the
  // connect hook redirects only to a marked listener.
  absl::Status MarkEngineListener(int listen_fd);

  // What the connect hook recorded for the connection accepted as `accepted_fd`. The
  // record lives in that socket's own storage (claimed by it, once, at establishment),
  // so it can neither be read through another socket nor outlive this one.
  // NOT_FOUND when the connection did not come through the redirect.
  absl::StatusOr<il_conn_info> LookupConn(int accepted_fd);

  // Ring buffer of il_event: an fd to put in epoll (readable when events are pending),
  // and a non-blocking drain that calls `fn` per event.
  int events_fd() const;
  absl::Status DrainEvents(const std::function<void(const il_event&)>& fn);

  absl::StatusOr<DatapathStats> ReadStats();

  // Removes every pin under `pin_path` (links detach when their last reference goes)
  // and the directory itself. OK when nothing is pinned.
  static absl::Status Teardown(const std::string& pin_path);

 private:
  struct Impl;
  explicit Datapath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace interlock::bpf
