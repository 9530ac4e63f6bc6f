// RecordingIndex: the append-only index of finished sessions beside the recordings
// (schemas/interlock/v1/recording_index.proto), so that listing sessions reads one small
// file instead of every recording.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto index, RecordingIndex::Open(dir + "/index.v1"));
//   INTERLOCK_RETURN_IF_ERROR(index->Append(entry));       // when a session ends
//   INTERLOCK_RETURN_IF_ERROR(index->Compact(existing));   // at start, after retention
//
//   // a reader (interlock sessions), interlockd running or not:
//   INTERLOCK_ASSIGN_OR_RETURN(IndexContents c, ReadRecordingIndex(path));
//
// Why a file of our own and not the SQLite database of the approval store: that store may
// be PostgreSQL shared by several hosts, and the CLI must list sessions with interlockd
// stopped from the state directory alone (an auditor's copy); a file appended once per
// session costs the event loop one small write(2) and no lock.
//
// Not thread-safe: the writer belongs to interlockd's event loop.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/recording_index.pb.h"
#include "userspace/common/unique_fd.h"

namespace interlock::record {

inline constexpr absl::string_view kRecordingIndexName = "index.v1";

struct IndexContents {
  // By session id; a later entry for the same id replaces an earlier one.
  absl::flat_hash_map<std::string, v1::RecordingIndexEntry> entries;
  // Bytes at the end that were not a whole entry (a torn write), or garbage from there on.
  size_t ignored_bytes = 0;
};

// Parses an index file's bytes. Pure; never fails: whatever does not parse ends the
// entries (counted in ignored_bytes).
IndexContents ParseRecordingIndex(absl::string_view bytes);

// Reads and parses `path`; a missing file is an empty index. Errors: read errors.
absl::StatusOr<IndexContents> ReadRecordingIndex(const std::string& path);

// One entry's bytes in the file: varint length + the serialized entry.
std::string EncodeIndexEntry(const v1::RecordingIndexEntry& entry);

class RecordingIndex {
 public:
  // The largest entry written or read (a summary is a few hundred bytes).
  static constexpr size_t kMaxEntryBytes = 64 * 1024;

  // Opens (creates, 0600) `path` for appending. Errors: errno statuses naming the path.
  static absl::StatusOr<std::unique_ptr<RecordingIndex>> Open(std::string path);

  // Appends one entry with a single write(2). INVALID_ARGUMENT when it exceeds
  // kMaxEntryBytes; errno statuses (ENOSPC...) when the write fails; a short write is
  // undone (ftruncate) so that the next entry starts at an entry boundary.
  absl::Status Append(const v1::RecordingIndexEntry& entry);

  // Rewrites the file with only the entries whose session id is in `keep` (temp file +
  // rename) and appends to the new file from then on. Errors leave the old file in use.
  absl::Status Compact(const absl::flat_hash_set<std::string>& keep);

  const std::string& path() const { return path_; }

 private:
  RecordingIndex(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  const std::string path_;
  UniqueFd fd_;
};

}  // namespace interlock::record
