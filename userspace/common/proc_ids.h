// The real user and group ids of the host's processes, read from /proc/<pid>/status:
// what the kernel's hooks see (bpf_get_current_uid_gid), for finding the processes of
// an enrolled user or group.
//
//   for (const ProcIds& p : ListProcIds()) if (p.uid == 1001) ...;
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace interlock {

struct ProcIds {
  pid_t pid = 0;
  uint32_t uid = 0;  // real
  uint32_t gid = 0;  // real, primary
};

// The real uid and gid in a /proc/<pid>/status text ("Uid:\t1001\t1001\t1001\t1001").
// nullopt when either line is missing or malformed.
std::optional<ProcIds> ParseProcStatusIds(absl::string_view status);

// Every process under `proc_root` ("/proc", or a fake tree in tests); processes that exit
// while it is read are skipped.
std::vector<ProcIds> ListProcIds(const std::string& proc_root = "/proc");

}  // namespace interlock
