#include "userspace/common/cgroup_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace interlock {

absl::StatusOr<std::string> ParseCgroup2Mount(absl::string_view mountinfo) {
  // mountinfo(5): "id parent major:minor root mount-point options [optional...] - fstype
  // source super-options". The optional fields vary, so find the " - " separator.
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    size_t sep = line.find(" - ");
    if (sep == absl::string_view::npos) continue;
    std::vector<absl::string_view> head = absl::StrSplit(line.substr(0, sep), ' ');
    std::vector<absl::string_view> tail =
        absl::StrSplit(line.substr(sep + 3), ' ', absl::SkipEmpty());
    if (head.size() < 5 || tail.empty()) continue;
    if (tail[0] == "cgroup2") return std::string(head[4]);
  }
  return absl::NotFoundError("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)");
}

absl::StatusOr<std::string> FindCgroup2Mount() {
  INTERLOCK_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  return ParseCgroup2Mount(text);
}

absl::StatusOr<std::string> ParseProcCgroup(absl::string_view proc_cgroup) {
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return absl::NotFoundError("no cgroup v2 entry (0::) in /proc/<pid>/cgroup");
}

absl::StatusOr<std::string> CgroupPathOfPid(pid_t pid) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string text,
                             ReadFile(absl::StrCat("/proc/", pid, "/cgroup")));
  return ParseProcCgroup(text);
}

absl::StatusOr<uint64_t> CgroupIdOfDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", dir));
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(dir, ": not a directory"));
  return static_cast<uint64_t>(st.st_ino);
}

absl::Status MoveToCgroup(const std::string& dir, pid_t pid) {
  std::string procs = absl::StrCat(dir, "/cgroup.procs");
  UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", procs));
  std::string text = absl::StrCat(pid);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, absl::StrCat("move pid ", pid, " to ", dir));
  }
  return absl::OkStatus();
}

absl::Status MakeCgroupDirs(const std::string& dir) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string prefix = slash == std::string::npos ? dir : dir.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("cgroup: mkdir ", prefix));
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<pid_t>> CgroupProcs(const std::string& dir) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string text, ReadFile(absl::StrCat(dir, "/cgroup.procs")));
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    int pid;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

std::vector<pid_t> CgroupTreeProcs(const std::string& dir) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() != "cgroup.procs") continue;
    auto procs = CgroupProcs(it->path().parent_path().string());
    if (procs.ok()) pids.insert(pids.end(), procs->begin(), procs->end());
  }
  return pids;
}

namespace {

void FindBelow(const std::string& dir, const std::function<bool(absl::string_view)>& match,
               int depth_left, std::vector<std::string>& found) {
  if (depth_left <= 0) return;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;  // vanished, or not readable: nothing below it to find
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR) continue;
    absl::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    std::string child = absl::StrCat(dir, "/", name);
    if (match(name)) found.push_back(child);
    children.push_back(std::move(child));
  }
  ::closedir(d);
  for (const std::string& child : children) FindBelow(child, match, depth_left - 1, found);
}

}  // namespace

std::vector<std::string> FindCgroupsMatching(const std::string& dir,
                                             const std::function<bool(absl::string_view)>& match,
                                             int max_depth) {
  std::vector<std::string> found;
  if (match(absl::string_view(dir).substr(dir.rfind('/') + 1))) found.push_back(dir);
  FindBelow(dir, match, max_depth, found);
  return found;
}

std::vector<std::string> FindCgroupsNamed(const std::string& dir,
                                          const absl::flat_hash_set<std::string>& names,
                                          int max_depth) {
  if (names.empty()) return {};
  return FindCgroupsMatching(
      dir, [&names](absl::string_view name) { return names.contains(name); }, max_depth);
}

std::string CgroupDir(const std::string& mount, const std::string& path) {
  if (!path.empty() && path[0] == '/') {
    if (path == mount || absl::StartsWith(path, absl::StrCat(mount, "/"))) return path;
    return absl::StrCat(mount, path);
  }
  return absl::StrCat(mount, "/", path);
}

}  // namespace interlock
