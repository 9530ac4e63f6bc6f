#include "userspace/codec/http/serialize.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::http {
namespace {

absl::Status SerializeError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("http: serialize: ", what));
}

// Appends the field lines and the empty line, refusing a field that would not parse back.
absl::Status AppendFields(absl::Span<const HeaderField> fields, std::string& out) {
  for (const HeaderField& f : fields) {
    absl::Status st = ValidateField(f);
    if (!st.ok()) return Annotate(st, "http: serialize");
    absl::StrAppend(&out, f.name, ": ", f.value, "\r\n");
  }
  out.append("\r\n");
  return absl::OkStatus();
}

bool IsAlwaysHopByHop(absl::string_view name) {
  static constexpr absl::string_view kNames[] = {"connection", "keep-alive",        "te",
                                                 "trailer",    "transfer-encoding", "upgrade"};
  for (absl::string_view n : kNames) {
    if (absl::EqualsIgnoreCase(name, n)) return true;
  }
  return name.size() >= 6 && absl::EqualsIgnoreCase(name.substr(0, 6), "proxy-");
}

}  // namespace

absl::StatusOr<std::string> SerializeRequestHead(absl::string_view method, absl::string_view target,
                                                 Version version,
                                                 absl::Span<const HeaderField> fields) {
  if (!IsToken(method)) return SerializeError("invalid method");
  if (target.empty()) return SerializeError("empty request-target");
  for (char c : target) {
    if (!IsTargetChar(c)) return SerializeError("invalid byte in request-target");
  }
  std::string out = absl::StrCat(method, " ", target, " ", VersionName(version), "\r\n");
  INTERLOCK_RETURN_IF_ERROR(AppendFields(fields, out));
  return out;
}

absl::StatusOr<std::string> SerializeResponseHead(Version version, int status,
                                                  absl::string_view reason,
                                                  absl::Span<const HeaderField> fields) {
  if (status < 100 || status > 599) return SerializeError("status outside 100..599");
  for (char c : reason) {
    if (!IsFieldValueChar(c)) return SerializeError("control character in reason");
  }
  std::string out = absl::StrCat(VersionName(version), " ", status, " ", reason, "\r\n");
  INTERLOCK_RETURN_IF_ERROR(AppendFields(fields, out));
  return out;
}

std::vector<HeaderField> RemoveHopByHop(absl::Span<const HeaderField> fields) {
  // Options that are not tokens cannot name a field, so a failed parse removes nothing more;
  // PeekRequest/PeekResponse have refused such heads anyway.
  const std::vector<absl::string_view> named =
      ConnectionOptions(fields).value_or(std::vector<absl::string_view>{});
  std::vector<HeaderField> out;
  out.reserve(fields.size());
  for (const HeaderField& f : fields) {
    bool drop = IsAlwaysHopByHop(f.name);
    for (size_t i = 0; !drop && i < named.size(); ++i)
      drop = absl::EqualsIgnoreCase(f.name, named[i]);
    if (!drop) out.push_back(f);
  }
  return out;
}

std::vector<HeaderField> RemoveFields(absl::Span<const HeaderField> fields,
                                      std::initializer_list<absl::string_view> names) {
  std::vector<HeaderField> out;
  out.reserve(fields.size());
  for (const HeaderField& f : fields) {
    bool drop = false;
    for (absl::string_view n : names) drop = drop || absl::EqualsIgnoreCase(f.name, n);
    if (!drop) out.push_back(f);
  }
  return out;
}

std::vector<HeaderField> WithBodyFraming(absl::Span<const HeaderField> fields,
                                         const BodyFraming& body, std::string* storage) {
  std::vector<HeaderField> out = RemoveFields(fields, {"content-length", "transfer-encoding"});
  if (body.kind == BodyKind::kLength) {
    *storage = absl::StrCat(body.length);
    out.push_back({"Content-Length", *storage});
  } else if (body.kind == BodyKind::kChunked) {
    out.push_back({"Transfer-Encoding", "chunked"});
  }
  return out;
}

}  // namespace interlock::codec::http
