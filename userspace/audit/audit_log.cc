#include "userspace/audit/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
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

namespace {

// JSON string body: escapes per RFC 8259; bytes that are not valid UTF-8 become U+FFFD
// (a proto3 string should always be UTF-8, but an exe path or comm from the kernel need
// not be).
void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  out->reserve(out->size() + s.size() + 2);
  size_t i = 0;
  while (i < s.size()) {
    // Plain ASCII needing no escape goes in runs (one append, not one push_back per byte).
    size_t run = i;
    while (run < s.size()) {
      unsigned char r = static_cast<unsigned char>(s[run]);
      if (r < 0x20 || r >= 0x7f || r == '"' || r == '\\') break;
      ++run;
    }
    if (run > i) {
      out->append(s.data() + i, run - i);
      i = run;
      if (i == s.size()) break;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        default:
          if (c < 0x20 || c == 0x7f) {
            absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // Length of a well-formed UTF-8 sequence starting here, or 0.
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
    }
    if (ok && n == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out->append(s.data() + i, n);
      i += n;
    } else {
      out->append("\xEF\xBF\xBD");
      ++i;
    }
  }
  out->push_back('"');
}

void AppendJsonMessage(std::string* out, const google::protobuf::Message& m);

void AppendJsonValue(std::string* out, const google::protobuf::Message& m,
                     const google::protobuf::FieldDescriptor* f, int index) {
  using FD = google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      absl::StrAppend(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FD::CPPTYPE_UINT32:
      absl::StrAppend(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FD::CPPTYPE_INT64:  // proto3 JSON: 64-bit integers are strings
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), "\"");
      break;
    case FD::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f), "\"");
      break;
    case FD::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FD::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e =
          rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
      AppendJsonString(out, e->name());
      break;
    }
    case FD::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& v = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FD::TYPE_BYTES) {
        AppendJsonString(out, absl::Base64Escape(v));
      } else {
        AppendJsonString(out, v);
      }
      break;
    }
    case FD::CPPTYPE_MESSAGE:
      AppendJsonMessage(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      break;
    default:  // float/double: no audit field uses them
      out->append("null");
  }
}

// The proto3 JSON mapping with original field names, written straight from reflection.
// protobuf's util::MessageToJsonString goes through a type resolver and a binary round
// trip; this is several times faster and it runs once per audited statement.
void AppendJsonMessage(std::string* out, const google::protobuf::Message& m) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);  // set fields, in field-number order
  out->push_back('{');
  bool first = true;
  for (const auto* f : fields) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, f->name());
    out->push_back(':');
    if (f->is_map()) {
      // proto3 JSON: a map is an object keyed by the key's text.
      out->push_back('{');
      int n = m.GetReflection()->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        const google::protobuf::Message& entry = m.GetReflection()->GetRepeatedMessage(m, f, i);
        const google::protobuf::FieldDescriptor* key = entry.GetDescriptor()->map_key();
        const google::protobuf::FieldDescriptor* value = entry.GetDescriptor()->map_value();
        std::string k;
        AppendJsonValue(&k, entry, key, 0);
        if (k.empty() || k[0] != '"') k = absl::StrCat("\"", k, "\"");  // numeric and bool keys are quoted
        out->append(k);
        out->push_back(':');
        AppendJsonValue(out, entry, value, 0);
      }
      out->push_back('}');
    } else if (f->is_repeated()) {
      out->push_back('[');
      int n = m.GetReflection()->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonValue(out, m, f, i);
      }
      out->push_back(']');
    } else {
      AppendJsonValue(out, m, f, 0);
    }
  }
  out->push_back('}');
}

}  // namespace

std::string EventToJsonLine(const v1::AuditEvent& event) {
  std::string out;
  out.reserve(1024);
  AppendJsonMessage(&out, event);
  out.push_back('\n');
  return out;
}

absl::Status JsonLinesSink::Write(const v1::AuditEvent& event) {
  buffer_ += EventToJsonLine(event);
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

absl::Status AuditLog::Flush() {
  absl::Status st = sink_->Flush();
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
