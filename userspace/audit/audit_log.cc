#include "userspace/audit/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::audit {

absl::StatusOr<std::unique_ptr<JsonLinesSink>> JsonLinesSink::Create(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    INTERLOCK_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0700));
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("audit: open ", path));
  return std::unique_ptr<JsonLinesSink>(new JsonLinesSink(path, std::move(fd)));
}

absl::Status JsonLinesSink::Write(const v1::AuditEvent& event) {
  AppendEventJsonLine(&buffer_, event);
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
      st = n < 0 ? ErrnoStatus(errno, absl::StrCat("audit: write ", path_))
                 : absl::DataLossError(absl::StrCat("audit: short write to ", path_));
      break;
    }
    off += static_cast<size_t>(n);
  }
  // On failure the unwritten lines are dropped rather than grown without bound; the error
  // is counted and logged by the caller.
  buffer_.clear();
  return st;
}

JsonLinesSink::~JsonLinesSink() { (void)Flush(); }

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
  absl::Status st = sink_->Write(*event);
  if (!st.ok()) ++errors_;
  for (auto& extra : extra_sinks_) {
    if (!extra->Write(*event).ok()) ++errors_;
  }
  return st;
}

absl::Status AuditLog::Flush() {
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
