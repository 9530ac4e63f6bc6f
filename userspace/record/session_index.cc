#include "userspace/record/session_index.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::record {

IndexContents ParseRecordingIndex(absl::string_view bytes) {
  IndexContents out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data() + pos),
                                              static_cast<int>(std::min<size_t>(bytes.size() - pos, 16)));
    uint32_t len = 0;
    if (!in.ReadVarint32(&len)) break;  // torn inside the length, or garbage
    const size_t header = static_cast<size_t>(in.CurrentPosition());
    if (len > RecordingIndex::kMaxEntryBytes || pos + header + len > bytes.size()) break;
    v1::RecordingIndexEntry entry;
    if (!entry.ParseFromArray(bytes.data() + pos + header, static_cast<int>(len)) ||
        entry.summary().session_id().empty()) {
      break;
    }
    std::string id = entry.summary().session_id();
    out.entries.insert_or_assign(std::move(id), std::move(entry));
    pos += header + len;
  }
  out.ignored_bytes = bytes.size() - pos;
  return out;
}

absl::StatusOr<IndexContents> ReadRecordingIndex(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (absl::IsNotFound(bytes.status())) return IndexContents{};
  if (!bytes.ok()) return bytes.status();
  return ParseRecordingIndex(*bytes);
}

std::string EncodeIndexEntry(const v1::RecordingIndexEntry& entry) {
  std::string body = entry.SerializeAsString();
  std::string out;
  uint8_t len[10];
  uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(body.size()), len);
  out.append(reinterpret_cast<const char*>(len), static_cast<size_t>(end - len));
  out.append(body);
  return out;
}

namespace {

absl::StatusOr<UniqueFd> OpenForAppend(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("index: open ", path));
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RecordingIndex>> RecordingIndex::Open(std::string path) {
  INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, OpenForAppend(path));
  return std::unique_ptr<RecordingIndex>(new RecordingIndex(std::move(path), std::move(fd)));
}

absl::Status RecordingIndex::Append(const v1::RecordingIndexEntry& entry) {
  const std::string bytes = EncodeIndexEntry(entry);
  if (bytes.size() > kMaxEntryBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("index: ", path_, ": entry of ", bytes.size(), " bytes > max ", kMaxEntryBytes));
  }
  struct stat st {};
  const bool sized = ::fstat(fd_.get(), &st) == 0;
  ssize_t n;
  do {
    n = ::write(fd_.get(), bytes.data(), bytes.size());
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
  const int err = n < 0 ? errno : ENOSPC;  // a short write to a regular file: out of room
  // Take a partial entry back off, so that later entries stay readable.
  if (n > 0 && sized) (void)!::ftruncate(fd_.get(), st.st_size);
  return ErrnoStatus(err, absl::StrCat("index: write ", path_));
}

absl::Status RecordingIndex::Compact(const absl::flat_hash_set<std::string>& keep) {
  INTERLOCK_ASSIGN_OR_RETURN(IndexContents now, ReadRecordingIndex(path_));
  std::string out;
  for (const auto& [id, entry] : now.entries) {
    if (keep.contains(id)) out.append(EncodeIndexEntry(entry));
  }
  INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(path_, out, 0600));
  INTERLOCK_ASSIGN_OR_RETURN(fd_, OpenForAppend(path_));
  return absl::OkStatus();
}

}  // namespace interlock::record
