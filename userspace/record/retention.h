// Recording retention: which finished recordings to delete so that the recordings directory
// stays within a total size and an age (config.proto RecordingsConfig), and the free-space
// check that refuses new sessions before the disk is full.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::vector<RecordingFile> files, ListRecordingFiles(dir));
//   RetentionLimits limits{.max_bytes = 1 << 30, .max_age = absl::Hours(24 * 90)};
//   for (const RecordingFile& f : PickExpired(files, live_ids, limits, clock.Now())) {
//     ::unlink((dir + "/" + f.name).c_str());  // and audit it
//   }
//
// A recording is "finished" when its session is not live; live ones are never picked, and
// neither count against max_bytes (a live session cannot give its bytes back). The oldest
// go first, by modification time (a finished recording's last write is its session's end).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace interlock::record {

struct RecordingFile {
  std::string name;        // "<session id>.rec"
  std::string session_id;  // name without ".rec"
  uint64_t bytes = 0;
  absl::Time modified;
};

struct RetentionLimits {
  uint64_t max_bytes = 0;                          // finished recordings in total; 0: no limit
  absl::Duration max_age = absl::ZeroDuration();   // since last modified; zero: no limit
};

// Lists the *.rec regular files of `dir` (not following symlinks) with size and mtime.
// Errors: opendir's errno status; files that vanish while listed are skipped.
absl::StatusOr<std::vector<RecordingFile>> ListRecordingFiles(const std::string& dir);

// Pure: the finished files (session id not in `live`) to delete, oldest first: every one
// last modified more than max_age before `now`, then the oldest of the rest until the
// finished ones left total at most max_bytes.
std::vector<RecordingFile> PickExpired(std::vector<RecordingFile> files,
                                       const absl::flat_hash_set<std::string>& live,
                                       const RetentionLimits& limits, absl::Time now);

// Free space of the file system holding `dir` for unprivileged writers (statvfs f_bavail),
// bytes. Errors: statvfs's errno status.
absl::StatusOr<uint64_t> FreeBytes(const std::string& dir);

// Remembers a free-space reading for `ttl` so that checking it on every new session costs a
// statvfs at most once per ttl. `now` is monotonic time from the caller's clock.
class FreeSpaceGauge {
 public:
  FreeSpaceGauge(std::string dir, absl::Duration ttl) : dir_(std::move(dir)), ttl_(ttl) {}
  // The free bytes, read again when the last reading is older than ttl (or Invalidate()d).
  // A failed statvfs reads as the error.
  absl::StatusOr<uint64_t> Get(absl::Duration now);
  // Forgets the reading (after a deletion or a write error).
  void Invalidate() { valid_ = false; }

 private:
  const std::string dir_;
  const absl::Duration ttl_;
  bool valid_ = false;
  absl::Duration read_at_;
  absl::StatusOr<uint64_t> last_ = uint64_t{0};
};

}  // namespace interlock::record
