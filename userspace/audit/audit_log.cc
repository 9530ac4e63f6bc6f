#include "userspace/audit/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/audit/chain.h"
#include "userspace/common/sha256.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/quiet_thread.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::audit {

namespace {

// The last whole line of the open file `fd` (its bytes, '\n' included; "" when there is
// none), and whether bytes follow it without a '\n' (a write cut short).
struct Tail {
  std::string last_line;
  bool partial = false;
};

absl::StatusOr<Tail> ReadTail(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("audit: stat ", path));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  Tail tail;
  if (size == 0) return tail;
  // Read backwards in growing windows until the window holds the whole last line.
  for (uint64_t window = 64 * 1024;; window *= 4) {
    const uint64_t from = size > window ? size - window : 0;
    std::string buf(size - from, '\0');
    size_t got = 0;
    while (got < buf.size()) {
      ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(from + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, absl::StrCat("audit: read ", path));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    buf.resize(got);
    size_t end = buf.rfind('\n');
    tail.partial = end == std::string::npos || end + 1 != buf.size();
    if (end == std::string::npos) {
      if (from == 0) return tail;  // no whole line at all
      continue;
    }
    size_t begin = end == 0 ? std::string::npos : buf.rfind('\n', end - 1);
    if (begin == std::string::npos && from != 0) continue;  // the line starts before the window
    begin = begin == std::string::npos ? 0 : begin + 1;
    tail.last_line = buf.substr(begin, end + 1 - begin);
    return tail;
  }
}

// The seq of a chained line; 0 when it is not one (does not parse, or has no seq).
uint64_t SeqOf(absl::string_view line) {
  if (line.empty()) return 0;
  v1::AuditEvent ev;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(line.substr(0, line.size() - 1)), &ev, opts).ok()) {
    return 0;
  }
  return ev.seq();
}

}  // namespace

JsonLinesSink::JsonLinesSink(JsonLinesSinkOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  size_t slash = options_.path.rfind('/');
  if (slash == std::string::npos) {
    name_ = options_.path;
  } else {
    dir_ = options_.path.substr(0, slash == 0 ? 1 : slash);
    name_ = options_.path.substr(slash + 1);
  }
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) host_ = host;
  next_.seq = 1;
  next_.prev_sha256 = GenesisHash();
  last_checkpoint_mono_ = clock_.Monotonic();
}

absl::StatusOr<std::unique_ptr<JsonLinesSink>> JsonLinesSink::Create(const std::string& path) {
  JsonLinesSinkOptions o;
  o.path = path;
  return Create(std::move(o), RealClock::Get());
}

absl::StatusOr<std::unique_ptr<JsonLinesSink>> JsonLinesSink::Create(JsonLinesSinkOptions options,
                                                                     const Clock& clock) {
  if (options.path.empty()) return absl::InvalidArgumentError("audit: empty file path");
  std::unique_ptr<JsonLinesSink> sink(new JsonLinesSink(std::move(options), clock));
  if (!sink->dir_.empty() && sink->dir_ != "/") {
    INTERLOCK_RETURN_IF_ERROR(MakeDirs(sink->dir_, sink->options_.group ? 0750 : 0700));
    if (sink->options_.group) {
      if (::chown(sink->dir_.c_str(), static_cast<uid_t>(-1), *sink->options_.group) != 0 ||
          ::chmod(sink->dir_.c_str(), 0750) != 0) {
        return ErrnoStatus(errno, absl::StrCat("audit: group-readable ", sink->dir_));
      }
    }
  }
  INTERLOCK_RETURN_IF_ERROR(sink->Open());
  INTERLOCK_RETURN_IF_ERROR(sink->Recover());
  return sink;
}

absl::Status JsonLinesSink::Open() {
  const int mode = options_.group ? 0640 : 0600;
  UniqueFd fd(::open(options_.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, mode));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("audit: open ", options_.path));
  if (options_.group && ::fchown(fd.get(), static_cast<uid_t>(-1), *options_.group) != 0) {
    return ErrnoStatus(errno, absl::StrCat("audit: chown ", options_.path));
  }
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus(errno, absl::StrCat("audit: chmod ", options_.path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("audit: stat ", options_.path));
  fd_ = std::move(fd);
  file_bytes_ = static_cast<uint64_t>(st.st_size);
  rotate_at_bytes_ = options_.rotate_bytes;
  first_line_at_ = clock_.Now();  // for a file that has lines already: as good as it gets
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Recover() {
  INTERLOCK_ASSIGN_OR_RETURN(Tail tail, ReadTail(fd_.get(), options_.path));
  if (file_bytes_ > 0) {
    const uint64_t seq = SeqOf(tail.last_line);
    if (!tail.partial && seq != 0) {
      next_.seq = seq + 1;
      next_.prev_sha256 = Sha256Hex(tail.last_line);
      head_is_checkpoint_ = absl::StrContains(tail.last_line, "\"AUDIT_KIND_AUDIT_CHECKPOINT\"");
      return absl::OkStatus();
    }
    // A line cut short by a crash, or a file from before chaining: set it aside and chain
    // on from the last whole chained line (the newest rotated file, which this now is).
    const std::string aside =
        absl::StrCat(dir_.empty() ? "" : dir_ + "/", RotatedName(name_, clock_.Now(), seq));
    if (::rename(options_.path.c_str(), aside.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("audit: rename ", options_.path, " to ", aside));
    }
    INTERLOCK_RETURN_IF_ERROR(Open());
  }
  // The live file is empty: continue from the newest rotated file, if any.
  std::optional<RotatedSuffix> newest;
  std::string newest_name;
  if (DIR* d = ::opendir(dir_.empty() ? "." : dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      auto r = ParseRotatedName(name_, e->d_name);
      if (r && (!newest || r->last_seq > newest->last_seq)) {
        newest = r;
        newest_name = e->d_name;
      }
    }
    ::closedir(d);
  }
  if (!newest) return absl::OkStatus();  // a new chain: seq 1, genesis
  const std::string path = absl::StrCat(dir_.empty() ? "" : dir_ + "/", newest_name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("audit: open ", path));
  INTERLOCK_ASSIGN_OR_RETURN(Tail prev, ReadTail(fd.get(), path));
  if (uint64_t seq = SeqOf(prev.last_line); seq != 0) {
    next_.seq = seq + 1;
    next_.prev_sha256 = Sha256Hex(prev.last_line);
    head_is_checkpoint_ = absl::StrContains(prev.last_line, "\"AUDIT_KIND_AUDIT_CHECKPOINT\"");
  }
  return absl::OkStatus();
}

void JsonLinesSink::Chain(const v1::AuditEvent& event) {
  const size_t start = buffer_.size();
  if (start == 0 && file_bytes_ == 0) first_line_at_ = clock_.Now();
  AppendEventJsonLine(&buffer_, event, next_);
  // The hash is over the line exactly as it will be written: these buffered bytes.
  next_.prev_sha256 = Sha256Hex(absl::string_view(buffer_).substr(start));
  ++next_.seq;
  head_is_checkpoint_ = event.kind() == v1::AUDIT_KIND_AUDIT_CHECKPOINT;
}

absl::Status JsonLinesSink::Write(const v1::AuditEvent& event) {
  Chain(event);
  if (options_.rotate_bytes > 0 && !rotating_ && file_bytes_ + buffer_.size() >= rotate_at_bytes_) {
    absl::Status st = Rotate();
    // A rotation that failed (say, the rename) is tried again after another rotate_bytes,
    // not at every line: each try writes a checkpoint and syncs the file.
    if (!st.ok()) rotate_at_bytes_ = file_bytes_ + buffer_.size() + options_.rotate_bytes;
    return st;
  }
  if (buffer_.size() >= kFlushBytes) return Flush();
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Flush() {
  size_t off = 0;
  absl::Status st;
  while (off < buffer_.size()) {
    ssize_t n = ::write(fd_.get(), buffer_.data() + off, buffer_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = n < 0 ? ErrnoStatus(errno, absl::StrCat("audit: write ", options_.path))
                 : absl::DataLossError(absl::StrCat("audit: short write to ", options_.path));
      break;
    }
    off += static_cast<size_t>(n);
  }
  file_bytes_ += off;
  // On failure the unwritten lines are dropped rather than grown without bound; the error
  // is counted and logged by the caller. The chain goes on from them, so the verifier
  // shows the gap at the next line written.
  buffer_.clear();
  return st;
}

absl::Status JsonLinesSink::Checkpoint(absl::string_view reason) {
  if (options_.key == nullptr || next_.seq == 1 || head_is_checkpoint_) return absl::OkStatus();
  v1::AuditEvent ev;
  ev.set_id(RandomId());
  ev.set_kind(v1::AUDIT_KIND_AUDIT_CHECKPOINT);
  ev.set_time(FormatRfc3339(clock_.Now()));
  ev.set_host(host_);
  v1::AuditCheckpoint* c = ev.mutable_checkpoint();
  c->set_reason(std::string(reason));
  c->set_key_fingerprint(options_.key->Fingerprint());
  INTERLOCK_ASSIGN_OR_RETURN(std::string sig,
                             options_.key->Sign(CheckpointMessage(next_.seq, next_.prev_sha256, ev.time(), reason)));
  c->set_signature(std::move(sig));
  Chain(ev);
  last_checkpoint_mono_ = clock_.Monotonic();
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Tick() {
  if (options_.rotate_age > absl::ZeroDuration() && file_bytes_ + buffer_.size() > 0 &&
      clock_.Now() - first_line_at_ >= options_.rotate_age) {
    return Rotate();
  }
  if (options_.checkpoint_interval > absl::ZeroDuration() &&
      clock_.Monotonic() - last_checkpoint_mono_ >= options_.checkpoint_interval) {
    last_checkpoint_mono_ = clock_.Monotonic();
    return Checkpoint("interval");
  }
  return absl::OkStatus();
}

absl::Status JsonLinesSink::Rotate(absl::string_view reason) {
  if (file_bytes_ + buffer_.size() == 0) return absl::OkStatus();
  rotating_ = true;
  absl::Status st = Checkpoint(reason);
  if (absl::Status f = Flush(); st.ok()) st = f;
  rotating_ = false;
  INTERLOCK_RETURN_IF_ERROR(st);
  const std::string rotated =
      absl::StrCat(dir_.empty() ? "" : dir_ + "/", RotatedName(name_, clock_.Now(), last_seq()));
  if (::rename(options_.path.c_str(), rotated.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("audit: rotate ", options_.path, " to ", rotated));
  }
  UniqueFd rotated_fd = std::move(fd_);
  INTERLOCK_RETURN_IF_ERROR(Open());
  // The rotated file goes to disk off the event loop: fdatasync of a file of rotate_bytes
  // written into the page cache stalled every session for tens of milliseconds (the HTTP
  // benchmark's p99 went from 0.8 to 20-50 ms). Its bytes are written already; only their
  // durability against a power loss waits for this thread, joined at the next rotation.
  if (sync_thread_.joinable()) sync_thread_.join();
  sync_thread_ = StartQuietThread([fd = std::move(rotated_fd)] { (void)::fdatasync(fd.get()); });
  ApplyRetention();
  return absl::OkStatus();
}

void JsonLinesSink::ApplyRetention() {
  if (options_.retain_files == 0 && options_.retain_age <= absl::ZeroDuration()) return;
  std::vector<std::pair<RotatedSuffix, std::string>> rotated;
  if (DIR* d = ::opendir(dir_.empty() ? "." : dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (auto r = ParseRotatedName(name_, e->d_name)) rotated.emplace_back(*r, e->d_name);
    }
    ::closedir(d);
  }
  std::sort(rotated.begin(), rotated.end(),
            [](const auto& a, const auto& b) { return a.first.last_seq > b.first.last_seq; });  // newest first
  const absl::Time now = clock_.Now();
  for (size_t i = 0; i < rotated.size(); ++i) {
    const bool too_many = options_.retain_files != 0 && i >= options_.retain_files;
    const bool too_old = options_.retain_age > absl::ZeroDuration() &&
                         now - rotated[i].first.rotated_at > options_.retain_age;
    if (too_many || too_old) {
      (void)::unlink(absl::StrCat(dir_.empty() ? "" : dir_ + "/", rotated[i].second).c_str());
    }
  }
}

JsonLinesSink::~JsonLinesSink() {
  (void)Flush();
  if (sync_thread_.joinable()) sync_thread_.join();
}

std::string FormatRfc3339(absl::Time t) {
  // Every audit event is stamped: the calendar part changes once a second, so it is
  // formatted once per second (per thread) and the nanoseconds are appended by hand.
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
  }
  thread_local int64_t cached_second = std::numeric_limits<int64_t>::min();
  thread_local std::string cached_prefix;  // "YYYY-MM-DDTHH:MM:SS."
  const int64_t second = absl::ToUnixSeconds(t);  // floor
  if (second != cached_second) {
    cached_prefix = absl::FormatTime("%Y-%m-%dT%H:%M:%S.", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(second));  // [0, 1e9)
  char digits[10] = "000000000";
  for (int i = 8; i >= 0; --i, nanos /= 10) digits[i] = static_cast<char>('0' + nanos % 10);
  std::string out;
  out.reserve(cached_prefix.size() + 10);
  out.append(cached_prefix).append(digits, 9).push_back('Z');
  return out;
}

AuditLog::AuditLog(std::unique_ptr<AuditSink> sink, const Clock& clock)
    : sink_(std::move(sink)), clock_(clock) {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) host_ = host;
  id_prefix_ = RandomId().substr(0, 16);
}

absl::Status AuditLog::Emit(v1::AuditEvent event) { return Emit(&event); }

absl::Status AuditLog::Emit(v1::AuditEvent* event) {
  // Event ids: a random per-process prefix and a counter — unique without a getrandom(2)
  // per event on the statement path.
  if (event->id().empty()) event->set_id(absl::StrCat(id_prefix_, absl::Hex(++id_counter_, absl::kZeroPad16)));
  if (event->time().empty()) event->set_time(FormatRfc3339(clock_.Now()));
  if (event->host().empty()) event->set_host(host_);
  ++counts_[CountKey(event->kind(), event->outcome())];
  if (divert_) {
    // Another process writes the chain (a handover): it gets the stamped event.
    absl::Status st = divert_(*event);
    if (!st.ok()) ++errors_;
    return st;
  }
  absl::Status st = sink_->Write(*event);
  if (!st.ok()) ++errors_;
  for (auto& extra : extra_sinks_) {
    if (!extra->Write(*event).ok()) ++errors_;
  }
  return st;
}

absl::Status AuditLog::Flush() {
  if (divert_) return absl::OkStatus();
  absl::Status st = sink_->Flush();
  if (!st.ok()) ++errors_;
  for (auto& extra : extra_sinks_) {
    if (!extra->Flush().ok()) ++errors_;
  }
  return st;
}

std::string RandomId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();  // the kernel's CSPRNG is gone: a broken invariant
    }
    got += static_cast<size_t>(n);
  }
  return HexEncode(absl::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
}

}  // namespace interlock::audit
