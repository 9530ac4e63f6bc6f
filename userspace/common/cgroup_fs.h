// cgroup v2 filesystem helpers: where the cgroup2 hierarchy is mounted, what a cgroup's
// id is, which cgroup a process is in, and moving processes. Parsing is pure and
// separately testable; the rest reads /proc and the cgroup filesystem.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::string mount, FindCgroup2Mount());
//   // "/sys/fs/cgroup" on a unified host, "/sys/fs/cgroup/unified" on a hybrid one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock {

// Returns the mount point of the first cgroup2 filesystem in a /proc/self/mountinfo
// text. NOT_FOUND when there is none.
absl::StatusOr<std::string> ParseCgroup2Mount(absl::string_view mountinfo);

// Reads /proc/self/mountinfo.
absl::StatusOr<std::string> FindCgroup2Mount();

// Returns the cgroup v2 path ("/a/b", relative to the cgroup2 mount) from a
// /proc/<pid>/cgroup text (the "0::" line). NOT_FOUND when there is none.
absl::StatusOr<std::string> ParseProcCgroup(absl::string_view proc_cgroup);

// Reads /proc/<pid>/cgroup.
absl::StatusOr<std::string> CgroupPathOfPid(pid_t pid);

// The cgroup id of a cgroup directory: its inode number (what bpf_get_current_cgroup_id
// returns for tasks inside it).
absl::StatusOr<uint64_t> CgroupIdOfDir(const std::string& dir);

// Moves `pid` (0 = the caller) into the cgroup directory `dir`.
absl::Status MoveToCgroup(const std::string& dir, pid_t pid);

// Creates the cgroup directory `dir` and any missing parents (mode 0755), like mkdir -p.
// OK when it exists.
absl::Status MakeCgroupDirs(const std::string& dir);

// Pids listed in dir/cgroup.procs.
absl::StatusOr<std::vector<pid_t>> CgroupProcs(const std::string& dir);
// Pids in `dir` and every cgroup below it. Cgroups that vanish or cannot be read while
// the tree is walked are skipped (a missing `dir` gives none).
std::vector<pid_t> CgroupTreeProcs(const std::string& dir);

// Cgroup directories at or below `dir` (absolute) whose own name is in `names`, at most
// `max_depth` levels down; cgroups that vanish while the tree is walked are skipped.
std::vector<std::string> FindCgroupsNamed(const std::string& dir,
                                          const absl::flat_hash_set<std::string>& names,
                                          int max_depth);
// The same with any test of the name.
std::vector<std::string> FindCgroupsMatching(const std::string& dir,
                                             const std::function<bool(absl::string_view)>& match,
                                             int max_depth);

// Resolves `path` against the cgroup2 mount: absolute paths under the mount are kept,
// other paths are taken as relative to it. "interlock" -> "/sys/fs/cgroup/interlock".
std::string CgroupDir(const std::string& mount, const std::string& path);

}  // namespace interlock
