// Workload identity: turns what the kernel attested at connect time (cgroup id, pid,
// uid/gid, login uid, comm — captured by the BPF connect hook) into a WorkloadIdentity:
// enrollment name, cgroup path, exe path and user name, resolved in userspace.
//
//   IdentityResolver resolver("/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified/interlock");
//   resolver.RememberCgroup(id, "/interlock/workloads/billing.1");
//   v1::WorkloadIdentity who = resolver.Resolve(attested, "billing");
//
// The process may be gone by the time we resolve: fields that need /proc are then left
// empty (never guessed), and the kernel-attested fields stand on their own.
//
// User names come from NSS (getpwuid_r: /etc/passwd read and parsed, or a directory
// service) on every session start unless a clock is given: then a name (or its absence) is
// kept per uid for kUserNameTtl, as nscd does (it keeps them ten minutes). The uid is the
// attested fact; the name is its reading at most that old.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/identity.pb.h"
#include "userspace/common/clock.h"

namespace interlock::identity {

struct KernelAttestation {
  uint64_t cgroup_id = 0;
  uint32_t pid = 0;  // thread-group id
  uint32_t tid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t login_uid = 0xffffffffu;
  std::string comm;
};

class IdentityResolver {
 public:
  static constexpr absl::Duration kUserNameTtl = absl::Seconds(60);
  static constexpr size_t kMaxUserNames = 4096;
  // The name of a uid, nullopt when it has none (default: getpwuid_r).
  using UserLookup = std::function<std::optional<std::string>(uint32_t uid)>;

  // `cgroup_mount`: the cgroup2 mount point. `search_dir`: the absolute directory under
  // which unknown cgroup ids are looked up by walking (interlock's cgroup root).
  // `proc_root`: "/proc", or a fake tree in tests. `clock` (borrowed; null: no cache of user
  // names) and `lookup` (empty: getpwuid_r) as above.
  IdentityResolver(std::string cgroup_mount, std::string search_dir,
                   std::string proc_root = "/proc", const Clock* clock = nullptr, UserLookup lookup = {});

  // Records `path` (relative to the mount, "/interlock/workloads/x.1") for cgroup `id`.
  void RememberCgroup(uint64_t id, std::string path);
  void ForgetCgroup(uint64_t id);

  // Path of cgroup `id` relative to the mount: from the cache, else from /proc/<pid>/cgroup
  // when `pid` is given and that directory is cgroup `id`, else by walking search_dir.
  // "" when not found.
  std::string CgroupPath(uint64_t id, uint32_t pid = 0);

  v1::WorkloadIdentity Resolve(const KernelAttestation& attested, absl::string_view workload);

 private:
  std::string cgroup_mount_;
  std::string search_dir_;
  std::string proc_root_;
  absl::flat_hash_map<uint64_t, std::string> paths_;
  struct UserName {
    std::optional<std::string> name;
    absl::Duration looked_up;  // clock_->Monotonic()
  };
  std::optional<std::string> UserNameOf(uint32_t uid);
  const Clock* clock_;
  UserLookup lookup_;
  absl::flat_hash_map<uint32_t, UserName> users_;
};

}  // namespace interlock::identity
