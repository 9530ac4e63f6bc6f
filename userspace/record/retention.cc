#include "userspace/record/retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"

namespace interlock::record {

absl::StatusOr<std::vector<RecordingFile>> ListRecordingFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, absl::StrCat("recordings: opendir ", dir));
  std::vector<RecordingFile> out;
  const int dfd = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    absl::string_view id(e->d_name);
    if (!absl::ConsumeSuffix(&id, ".rec") || id.empty()) continue;
    struct stat st {};
    if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    RecordingFile f;
    f.name = e->d_name;
    f.session_id = std::string(id);
    f.bytes = static_cast<uint64_t>(st.st_size);
    f.modified = absl::TimeFromTimespec(st.st_mtim);
    out.push_back(std::move(f));
  }
  ::closedir(d);
  return out;
}

std::vector<RecordingFile> PickExpired(std::vector<RecordingFile> files,
                                       const absl::flat_hash_set<std::string>& live,
                                       const RetentionLimits& limits, absl::Time now) {
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const RecordingFile& f) { return live.contains(f.session_id); }),
              files.end());
  // Oldest first; the name breaks ties so that the choice does not depend on readdir order.
  std::sort(files.begin(), files.end(), [](const RecordingFile& a, const RecordingFile& b) {
    return a.modified != b.modified ? a.modified < b.modified : a.name < b.name;
  });
  uint64_t total = 0;
  for (const RecordingFile& f : files) total += f.bytes;
  std::vector<RecordingFile> out;
  for (RecordingFile& f : files) {
    const bool too_old = limits.max_age > absl::ZeroDuration() && now - f.modified > limits.max_age;
    const bool too_much = limits.max_bytes > 0 && total > limits.max_bytes;
    if (!too_old && !too_much) break;  // sorted: everything after is newer
    total -= f.bytes;
    out.push_back(std::move(f));
  }
  return out;
}

absl::StatusOr<uint64_t> FreeBytes(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoStatus(errno, absl::StrCat("statvfs ", dir));
  return uint64_t{vfs.f_bavail} * uint64_t{vfs.f_frsize};
}

absl::StatusOr<uint64_t> FreeSpaceGauge::Get(absl::Duration now) {
  if (!valid_ || now - read_at_ >= ttl_) {
    last_ = FreeBytes(dir_);
    read_at_ = now;
    valid_ = true;
  }
  return last_;
}

}  // namespace interlock::record
