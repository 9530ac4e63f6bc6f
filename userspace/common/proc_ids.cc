#include "userspace/common/proc_ids.h"

#include <dirent.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/file_util.h"

namespace interlock {

std::optional<ProcIds> ParseProcStatusIds(absl::string_view status) {
  std::optional<uint32_t> uid, gid;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    std::optional<uint32_t>* out = nullptr;
    if (absl::ConsumePrefix(&line, "Uid:")) {
      out = &uid;
    } else if (absl::ConsumePrefix(&line, "Gid:")) {
      out = &gid;
    } else {
      continue;
    }
    // The first of the four ids (real, effective, saved, filesystem).
    std::vector<absl::string_view> ids = absl::StrSplit(line, '\t', absl::SkipWhitespace());
    uint32_t id = 0;
    if (ids.empty() || !absl::SimpleAtoi(ids[0], &id)) return std::nullopt;
    *out = id;
  }
  if (!uid || !gid) return std::nullopt;
  return ProcIds{0, *uid, *gid};
}

std::vector<ProcIds> ListProcIds(const std::string& proc_root) {
  std::vector<ProcIds> out;
  DIR* d = ::opendir(proc_root.c_str());
  if (d == nullptr) return out;
  std::vector<pid_t> pids;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  ::closedir(d);
  for (pid_t pid : pids) {
    auto text = ReadFile(absl::StrCat(proc_root, "/", pid, "/status"));
    if (!text.ok()) continue;  // exited
    if (auto ids = ParseProcStatusIds(*text)) {
      ids->pid = pid;
      out.push_back(*ids);
    }
  }
  return out;
}

}  // namespace interlock
