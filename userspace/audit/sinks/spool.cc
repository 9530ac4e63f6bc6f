#include "userspace/audit/sinks/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::audit::sinks {
namespace {

constexpr absl::string_view kSuffix = ".spool";

uint32_t Crc(absl::string_view data) {
  return static_cast<uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

void PutU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(absl::string_view s) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

// "00000000000000000042.spool" -> 42.
std::optional<uint64_t> SeqOf(absl::string_view name) {
  if (name.size() != 20 + kSuffix.size() || name.substr(20) != kSuffix) return std::nullopt;
  uint64_t seq = 0;
  for (char c : name.substr(0, 20)) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (!absl::SimpleAtoi(name.substr(0, 20), &seq) || seq == 0) return std::nullopt;
  return seq;
}

}  // namespace

std::string EncodeSpoolRecord(absl::string_view payload) {
  std::string out;
  out.reserve(kRecordHeaderBytes + payload.size());
  PutU32(static_cast<uint32_t>(payload.size()), &out);
  PutU32(Crc(payload), &out);
  out.append(payload.data(), payload.size());
  return out;
}

std::vector<std::string> DecodeSpoolRecords(absl::string_view data, uint64_t* bad_bytes) {
  std::vector<std::string> out;
  *bad_bytes = 0;
  while (!data.empty()) {
    if (data.size() < kRecordHeaderBytes) break;
    const uint32_t len = GetU32(data.substr(0, 4));
    const uint32_t crc = GetU32(data.substr(4, 4));
    if (len > kMaxRecordBytes || data.size() - kRecordHeaderBytes < len) break;
    absl::string_view payload = data.substr(kRecordHeaderBytes, len);
    if (Crc(payload) != crc) break;
    out.emplace_back(payload);
    data.remove_prefix(kRecordHeaderBytes + len);
  }
  *bad_bytes = data.size();
  return out;
}

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(SpoolOptions options) {
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(options.dir, 0700));
  ::chmod(options.dir.c_str(), 0700);
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));
  DIR* d = ::opendir(spool->options_.dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, absl::StrCat("spool: open ", spool->options_.dir));
  std::vector<uint64_t> found;
  while (dirent* e = ::readdir(d)) {
    if (auto seq = SeqOf(e->d_name)) found.push_back(*seq);
  }
  ::closedir(d);
  for (uint64_t seq : found) {
    struct stat st;
    if (::stat(spool->PathOf(seq).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    SegmentInfo info;
    info.bytes = static_cast<uint64_t>(st.st_size);
    // Counted once here so that status shows a backlog from an earlier run.
    if (absl::StatusOr<Segment> seg = spool->ReadSegment(seq); seg.ok())
      info.events = seg->records.size();
    spool->segments_[seq] = info;
    spool->total_bytes_ += info.bytes;
    spool->total_events_ += info.events;
    spool->next_seq_ = std::max(spool->next_seq_, seq + 1);
  }
  return spool;
}

std::string Spool::PathOf(uint64_t seq) const {
  return absl::StrFormat("%s/%020u%s", options_.dir, seq, kSuffix);
}

absl::Status Spool::Append(const std::vector<std::string>& records) {
  if (records.empty()) return absl::OkStatus();
  std::string buf;
  for (const std::string& r : records) {
    if (r.size() > kMaxRecordBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("spool: record of ", r.size(), " bytes > max ", kMaxRecordBytes));
    }
    buf += EncodeSpoolRecord(r);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (total_bytes_ + buf.size() > options_.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "spool ", options_.dir, " is full (", total_bytes_, " of ", options_.max_bytes, " bytes)"));
  }
  if (active_seq_ != 0 && segments_[active_seq_].bytes >= options_.segment_bytes) {
    active_fd_ = UniqueFd();
    active_seq_ = 0;
  }
  if (active_seq_ == 0) {
    const uint64_t seq = next_seq_++;
    UniqueFd fd(::open(PathOf(seq).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) return ErrnoStatus(errno, absl::StrCat("spool: create ", PathOf(seq)));
    active_fd_ = std::move(fd);
    active_seq_ = seq;
    segments_[seq] = SegmentInfo{};
  }
  size_t off = 0;
  while (off < buf.size()) {
    ssize_t n = ::write(active_fd_.get(), buf.data() + off, buf.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status st =
          n < 0 ? ErrnoStatus(errno, absl::StrCat("spool: write ", PathOf(active_seq_)))
                : absl::DataLossError(absl::StrCat("spool: short write ", PathOf(active_seq_)));
      // What did reach the file is accounted for; the next read skips a torn record.
      segments_[active_seq_].bytes += off;
      total_bytes_ += off;
      active_fd_ = UniqueFd();
      active_seq_ = 0;
      return st;
    }
    off += static_cast<size_t>(n);
  }
  SegmentInfo& info = segments_[active_seq_];
  info.bytes += buf.size();
  info.events += records.size();
  total_bytes_ += buf.size();
  total_events_ += records.size();
  return absl::OkStatus();
}

absl::StatusOr<Spool::Segment> Spool::ReadSegment(uint64_t seq) const {
  INTERLOCK_ASSIGN_OR_RETURN(std::string data, ReadFile(PathOf(seq)));
  Segment seg;
  seg.seq = seq;
  seg.records = DecodeSpoolRecords(data, &seg.corrupt_bytes);
  return seg;
}

absl::StatusOr<std::optional<Spool::Segment>> Spool::ReadOldest() {
  std::lock_guard<std::mutex> lock(mu_);
  if (segments_.empty()) return std::optional<Segment>();
  const uint64_t seq = segments_.begin()->first;
  if (seq == active_seq_) {
    active_fd_ = UniqueFd();
    active_seq_ = 0;
  }
  absl::StatusOr<Segment> seg = ReadSegment(seq);
  if (!seg.ok()) {
    if (absl::IsNotFound(seg.status())) {
      // Removed behind our back: forget it rather than retry forever.
      total_bytes_ -= segments_.begin()->second.bytes;
      total_events_ -= segments_.begin()->second.events;
      segments_.erase(segments_.begin());
    }
    return seg.status();
  }
  // The count from Open or Append may be off for a corrupt file; trust what was read.
  SegmentInfo& info = segments_.begin()->second;
  total_events_ = total_events_ - info.events + seg->records.size();
  info.events = seg->records.size();
  return std::optional<Segment>(*std::move(seg));
}

absl::Status Spool::Remove(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = segments_.find(seq);
  if (it == segments_.end()) return absl::OkStatus();
  if (seq == active_seq_) {
    active_fd_ = UniqueFd();
    active_seq_ = 0;
  }
  if (::unlink(PathOf(seq).c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("spool: remove ", PathOf(seq)));
  }
  total_bytes_ -= it->second.bytes;
  total_events_ -= it->second.events;
  segments_.erase(it);
  return absl::OkStatus();
}

uint64_t Spool::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_bytes_;
}

uint64_t Spool::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_events_;
}

}  // namespace interlock::audit::sinks
