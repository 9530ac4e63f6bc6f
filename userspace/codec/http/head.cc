#include "userspace/codec/http/head.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::http {
namespace {

// A complete head: its parsed start line and field lines (views into the buffer).
template <typename StartLine>
struct RawHead {
  StartLine start;
  std::vector<HeaderField> fields;
  size_t head_bytes = 0;
};

// Splits `buf` into lines while they are complete, checking each as soon as its CRLF is in:
// the start line with `parse_start`, then field lines, until the empty line. nullopt: the
// head is not complete within the bytes given.
template <typename StartLine>
absl::StatusOr<std::optional<RawHead<StartLine>>> SplitHead(
    absl::string_view buf, size_t max_head_bytes,
    absl::StatusOr<StartLine> (*parse_start)(absl::string_view)) {
  RawHead<StartLine> head;
  size_t offset = 0;
  bool first = true;
  while (true) {
    const size_t budget = max_head_bytes - offset;
    if (budget < 2) {
      if (buf.size() > offset) {
        return absl::ResourceExhaustedError(
            absl::StrCat("head exceeds ", max_head_bytes, " bytes"));
      }
      return std::nullopt;
    }
    absl::StatusOr<std::optional<Line>> line = FindLine(buf.substr(offset), budget - 2);
    if (!line.ok()) {
      if (line.status().code() == absl::StatusCode::kResourceExhausted) {
        return absl::ResourceExhaustedError(
            absl::StrCat("head exceeds ", max_head_bytes, " bytes"));
      }
      return line.status();
    }
    if (!line->has_value()) return std::nullopt;
    const absl::string_view content = (*line)->content;
    offset += (*line)->total_bytes;
    if (first) {
      if (content.empty()) return absl::InvalidArgumentError("empty line before start line");
      INTERLOCK_ASSIGN_OR_RETURN(head.start, parse_start(content));
      first = false;
      continue;
    }
    if (content.empty()) break;
    if (head.fields.size() == kMaxHeaderFields) {
      return absl::ResourceExhaustedError(absl::StrCat("more than ", kMaxHeaderFields, " fields"));
    }
    INTERLOCK_ASSIGN_OR_RETURN(HeaderField field, ParseFieldLine(content));
    head.fields.push_back(field);
  }
  head.head_bytes = offset;
  return head;
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); only 1.0 and 1.1 are spoken.
absl::StatusOr<Version> ParseVersion(absl::string_view s) {
  if (s == "HTTP/1.1") return Version::kHttp11;
  if (s == "HTTP/1.0") return Version::kHttp10;
  if (s.size() == 8 && s.substr(0, 5) == "HTTP/" && IsDigit(s[5]) && s[6] == '.' && IsDigit(s[7])) {
    return absl::UnimplementedError(absl::StrCat("unsupported version ", s));
  }
  return absl::InvalidArgumentError("invalid version");
}

struct RequestLine {
  absl::string_view method;
  absl::string_view target;
  Version version;
};

// request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
absl::StatusOr<RequestLine> ParseRequestLine(absl::string_view line) {
  const size_t sp1 = line.find(' ');
  if (sp1 == absl::string_view::npos) return absl::InvalidArgumentError("request-line without SP");
  RequestLine out;
  out.method = line.substr(0, sp1);
  if (!IsToken(out.method)) return absl::InvalidArgumentError("invalid method");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == absl::string_view::npos) {
    return absl::InvalidArgumentError("request-line without version");
  }
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (out.target.empty()) return absl::InvalidArgumentError("more than one SP in request-line");
  for (char c : out.target) {
    if (!IsTargetChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid byte 0x", absl::Hex(static_cast<unsigned char>(c)), " in request-target"));
    }
  }
  const absl::string_view version = line.substr(sp2 + 1);
  if (version.find(' ') != absl::string_view::npos || version.empty()) {
    return absl::InvalidArgumentError("more than one SP in request-line");
  }
  INTERLOCK_ASSIGN_OR_RETURN(out.version, ParseVersion(version));
  return out;
}

struct StatusLine {
  Version version;
  int status;
  absl::string_view reason;
};

// status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4).
absl::StatusOr<StatusLine> ParseStatusLine(absl::string_view line) {
  StatusLine out;
  const size_t sp1 = line.find(' ');
  INTERLOCK_ASSIGN_OR_RETURN(out.version, ParseVersion(line.substr(0, sp1)));
  if (sp1 == absl::string_view::npos) return absl::InvalidArgumentError("status-line without code");
  const absl::string_view rest = line.substr(sp1 + 1);
  if (rest.size() < 4 || !IsDigit(rest[0]) || !IsDigit(rest[1]) || !IsDigit(rest[2]) ||
      rest[3] != ' ') {
    return absl::InvalidArgumentError("status-line is not HTTP-version SP 3DIGIT SP reason");
  }
  out.status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  if (out.status < 100 || out.status > 599) {
    return absl::InvalidArgumentError(absl::StrCat("status ", out.status, " outside 100..599"));
  }
  out.reason = rest.substr(4);
  for (char c : out.reason) {
    if (!IsFieldValueChar(c)) return absl::InvalidArgumentError("control character in reason");
  }
  return out;
}

absl::StatusOr<std::optional<Request>> ParseRequest(absl::string_view buf, size_t max_head_bytes) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<RawHead<RequestLine>> head,
                             SplitHead(buf, max_head_bytes, ParseRequestLine));
  if (!head.has_value()) return std::nullopt;
  INTERLOCK_ASSIGN_OR_RETURN(RequestFraming framing,
                             DecideRequestFraming(head->start.version, head->fields));
  return Request{.method = head->start.method,
                 .target = head->start.target,
                 .version = head->start.version,
                 .fields = std::move(head->fields),
                 .head_bytes = head->head_bytes,
                 .framing = framing};
}

absl::StatusOr<std::optional<Response>> ParseResponse(absl::string_view buf,
                                                      absl::string_view request_method,
                                                      size_t max_head_bytes) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<RawHead<StatusLine>> head,
                             SplitHead(buf, max_head_bytes, ParseStatusLine));
  if (!head.has_value()) return std::nullopt;
  INTERLOCK_ASSIGN_OR_RETURN(
      ResponseFraming framing,
      DecideResponseFraming(head->start.version, head->start.status, head->fields, request_method));
  return Response{.version = head->start.version,
                  .status = head->start.status,
                  .reason = head->start.reason,
                  .fields = std::move(head->fields),
                  .head_bytes = head->head_bytes,
                  .framing = framing};
}

// Prepends the direction to an error; a value passes through.
template <typename T>
absl::StatusOr<T> WithContext(absl::StatusOr<T> result, absl::string_view context) {
  if (!result.ok()) return Annotate(result.status(), context);
  return result;
}

}  // namespace

absl::StatusOr<std::optional<Request>> PeekRequest(absl::string_view buf, size_t max_head_bytes) {
  return WithContext(ParseRequest(buf, max_head_bytes), "http: request");
}

absl::StatusOr<std::optional<Response>> PeekResponse(absl::string_view buf,
                                                     absl::string_view request_method,
                                                     size_t max_head_bytes) {
  return WithContext(ParseResponse(buf, request_method, max_head_bytes), "http: response");
}

std::optional<absl::string_view> FindField(absl::Span<const HeaderField> fields,
                                           absl::string_view name) {
  for (const HeaderField& f : fields) {
    if (absl::EqualsIgnoreCase(f.name, name)) return f.value;
  }
  return std::nullopt;
}

}  // namespace interlock::codec::http
