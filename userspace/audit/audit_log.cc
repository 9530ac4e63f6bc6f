#include "userspace/audit/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
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

std::string EventToJsonLine(const v1::AuditEvent& event) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string out;
  // Serialization of a well-formed message cannot fail; an empty object is the
  // fallback for a broken invariant rather than a crash on the data path.
  if (!google::protobuf::util::MessageToJsonString(event, &out, opts).ok()) out = "{}";
  out.push_back('\n');
  return out;
}

absl::Status JsonLinesSink::Write(const v1::AuditEvent& event) {
  std::string line = EventToJsonLine(event);
  ssize_t n;
  do {
    n = ::write(fd_.get(), line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, absl::StrCat("audit: write ", path_));
  if (static_cast<size_t>(n) != line.size()) {
    return absl::DataLossError(absl::StrCat("audit: short write to ", path_));
  }
  return absl::OkStatus();
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
}

AuditLog::AuditLog(std::unique_ptr<AuditSink> sink, const Clock& clock)
    : sink_(std::move(sink)), clock_(clock) {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) host_ = host;
  id_prefix_ = RandomId().substr(0, 16);
}

absl::Status AuditLog::Emit(v1::AuditEvent event) {
  // Event ids: a random per-process prefix and a counter — unique without a getrandom(2)
  // per event on the statement path.
  if (event.id().empty()) event.set_id(absl::StrCat(id_prefix_, absl::Hex(++id_counter_, absl::kZeroPad16)));
  if (event.time().empty()) event.set_time(FormatRfc3339(clock_.Now()));
  if (event.host().empty()) event.set_host(host_);
  absl::Status st = sink_->Write(event);
  if (!st.ok()) ++errors_;
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
