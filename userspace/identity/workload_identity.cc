#include "userspace/identity/workload_identity.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/file_util.h"

namespace interlock::identity {

namespace {

// Depth-first search for a directory whose inode is `id`. Bounded depth: cgroup trees
// under interlock's root are shallow (workloads/<name>.<n>/...).
std::string FindDirByInode(const std::string& dir, uint64_t id, int depth) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_ino) == id) return dir;
  if (depth == 0) return "";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "";
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR) continue;
    absl::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    children.push_back(absl::StrCat(dir, "/", name));
  }
  ::closedir(d);
  for (const std::string& child : children) {
    std::string found = FindDirByInode(child, id, depth - 1);
    if (!found.empty()) return found;
  }
  return "";
}

std::optional<std::string> GetPwUid(uint32_t uid) {
  passwd pw{};
  passwd* result = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result != nullptr) return std::string(result->pw_name);
  return std::nullopt;
}

}  // namespace

IdentityResolver::IdentityResolver(std::string cgroup_mount, std::string search_dir,
                                   std::string proc_root, const Clock* clock, UserLookup lookup)
    : cgroup_mount_(std::move(cgroup_mount)),
      search_dir_(std::move(search_dir)),
      proc_root_(std::move(proc_root)),
      clock_(clock),
      lookup_(lookup ? std::move(lookup) : UserLookup(GetPwUid)) {}

std::optional<std::string> IdentityResolver::UserNameOf(uint32_t uid) {
  if (clock_ == nullptr) return lookup_(uid);
  const absl::Duration now = clock_->Monotonic();
  auto it = users_.find(uid);
  if (it != users_.end() && now - it->second.looked_up < kUserNameTtl) return it->second.name;
  // Bounded: an agent cannot grow it past the uids in use (setuid needs privilege); a host
  // with many users' agents sheds the stale entries, or all of them when none is stale.
  if (users_.size() >= kMaxUserNames) {
    absl::erase_if(users_, [&](const auto& kv) { return now - kv.second.looked_up >= kUserNameTtl; });
    if (users_.size() >= kMaxUserNames) users_.clear();
  }
  UserName& entry = users_[uid];
  entry.name = lookup_(uid);
  entry.looked_up = now;
  return entry.name;
}

void IdentityResolver::RememberCgroup(uint64_t id, std::string path) {
  paths_[id] = std::move(path);
}

void IdentityResolver::ForgetCgroup(uint64_t id) { paths_.erase(id); }

std::string IdentityResolver::CgroupPath(uint64_t id, uint32_t pid) {
  auto it = paths_.find(id);
  if (it != paths_.end()) return it->second;
  // The process's own record first (one small read), believed only when the directory
  // it names is still cgroup `id`: the process may have moved, or be gone.
  if (pid != 0) {
    auto text = ReadFile(absl::StrCat(proc_root_, "/", pid, "/cgroup"));
    if (auto line = text.ok() ? ParseProcCgroup(*text) : text.status(); line.ok()) {
      struct stat st;
      const std::string dir = absl::StrCat(cgroup_mount_, *line == "/" ? "" : *line);
      if (::stat(dir.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_ino) == id) {
        paths_[id] = *line;
        return *std::move(line);
      }
    }
  }
  std::string abs = FindDirByInode(search_dir_, id, 8);
  if (abs.empty()) return "";
  std::string rel = abs.substr(cgroup_mount_.size());
  if (rel.empty()) rel = "/";
  paths_[id] = rel;
  return rel;
}

v1::WorkloadIdentity IdentityResolver::Resolve(const KernelAttestation& a,
                                               absl::string_view workload) {
  v1::WorkloadIdentity out;
  out.set_workload(std::string(workload));
  out.set_cgroup_id(a.cgroup_id);
  out.set_cgroup_path(CgroupPath(a.cgroup_id, a.pid));
  out.set_pid(a.pid);
  out.set_tid(a.tid);
  out.set_uid(a.uid);
  out.set_gid(a.gid);
  out.set_login_uid(a.login_uid);
  out.set_comm(a.comm);

  char exe[4096];
  std::string link = absl::StrCat(proc_root_, "/", a.pid, "/exe");
  ssize_t n = ::readlink(link.c_str(), exe, sizeof exe - 1);
  if (n > 0) out.set_exe(std::string(exe, static_cast<size_t>(n)));

  if (std::optional<std::string> user = UserNameOf(a.uid)) out.set_user(*std::move(user));
  return out;
}

}  // namespace interlock::identity
