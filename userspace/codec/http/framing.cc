#include "userspace/codec/http/framing.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::http {
namespace {

// The fields every message's framing depends on, each checked for duplicates.
struct FramingFields {
  std::optional<absl::string_view> transfer_encoding;
  std::optional<absl::string_view> content_length;
  std::optional<absl::string_view> host;
  std::optional<absl::string_view> expect;
  bool upgrade = false;
};

absl::Status SetOnce(std::optional<absl::string_view>& slot, const HeaderField& field) {
  if (slot.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate ", field.name));
  }
  slot = field.value;
  return absl::OkStatus();
}

absl::StatusOr<FramingFields> CollectFields(absl::Span<const HeaderField> fields) {
  FramingFields out;
  for (const HeaderField& f : fields) {
    if (absl::EqualsIgnoreCase(f.name, "transfer-encoding")) {
      INTERLOCK_RETURN_IF_ERROR(SetOnce(out.transfer_encoding, f));
    } else if (absl::EqualsIgnoreCase(f.name, "content-length")) {
      INTERLOCK_RETURN_IF_ERROR(SetOnce(out.content_length, f));
    } else if (absl::EqualsIgnoreCase(f.name, "host")) {
      INTERLOCK_RETURN_IF_ERROR(SetOnce(out.host, f));
    } else if (absl::EqualsIgnoreCase(f.name, "expect")) {
      INTERLOCK_RETURN_IF_ERROR(SetOnce(out.expect, f));
    } else if (absl::EqualsIgnoreCase(f.name, "upgrade")) {
      out.upgrade = true;
    }
  }
  return out;
}

// Transfer-Encoding and Content-Length, common to both directions (RFC 9112 §6.1-6.3).
// Returns nullopt when neither is present.
absl::StatusOr<std::optional<BodyFraming>> DecideBody(Version version, const FramingFields& ff) {
  if (ff.transfer_encoding.has_value()) {
    if (version == Version::kHttp10) {
      return absl::InvalidArgumentError("Transfer-Encoding in HTTP/1.0");
    }
    if (ff.content_length.has_value()) {
      return absl::InvalidArgumentError("both Transfer-Encoding and Content-Length");
    }
    const absl::string_view te = *ff.transfer_encoding;
    if (!absl::EqualsIgnoreCase(te, "chunked")) {
      if (te.empty() || te.find(',') != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("Transfer-Encoding \"", te, "\" is not exactly chunked"));
      }
      return absl::UnimplementedError(absl::StrCat("unsupported Transfer-Encoding \"", te, "\""));
    }
    return BodyFraming{BodyKind::kChunked, 0};
  }
  if (ff.content_length.has_value()) {
    INTERLOCK_ASSIGN_OR_RETURN(uint64_t n, ParseContentLength(*ff.content_length));
    return BodyFraming{BodyKind::kLength, n};
  }
  return std::nullopt;
}

// RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
absl::StatusOr<bool> Persistent(Version version, absl::Span<const HeaderField> fields) {
  INTERLOCK_ASSIGN_OR_RETURN(std::vector<absl::string_view> options, ConnectionOptions(fields));
  bool close = false;
  bool keep_alive = false;
  for (absl::string_view o : options) {
    close = close || absl::EqualsIgnoreCase(o, "close");
    keep_alive = keep_alive || absl::EqualsIgnoreCase(o, "keep-alive");
  }
  if (close) return false;
  return version == Version::kHttp11 || keep_alive;
}

}  // namespace

absl::StatusOr<uint64_t> ParseContentLength(absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError("empty Content-Length");
  uint64_t n = 0;
  for (char c : value) {
    if (!IsDigit(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Content-Length \"", value, "\" is not 1*DIGIT"));
    }
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (kMaxContentLength - d) / 10) {
      return absl::InvalidArgumentError(
          absl::StrCat("Content-Length ", value, " > max ", kMaxContentLength));
    }
    n = n * 10 + d;
  }
  return n;
}

absl::StatusOr<std::vector<absl::string_view>> ConnectionOptions(
    absl::Span<const HeaderField> fields) {
  std::vector<absl::string_view> out;
  for (const HeaderField& f : fields) {
    if (!absl::EqualsIgnoreCase(f.name, "connection")) continue;
    for (absl::string_view element : absl::StrSplit(f.value, ',')) {
      element = TrimOws(element);
      if (element.empty()) continue;
      if (!IsToken(element)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid Connection option \"", element, "\""));
      }
      out.push_back(element);
    }
  }
  return out;
}

absl::StatusOr<RequestFraming> DecideRequestFraming(Version version,
                                                    absl::Span<const HeaderField> fields) {
  INTERLOCK_ASSIGN_OR_RETURN(FramingFields ff, CollectFields(fields));
  RequestFraming out;
  if (ff.host.has_value()) {
    absl::Status st = ValidateAuthority(*ff.host, /*allow_empty=*/true);
    if (!st.ok()) return Annotate(st, "Host");
    out.host = *ff.host;
  } else if (version == Version::kHttp11) {
    return absl::InvalidArgumentError("missing Host");
  }
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<BodyFraming> body, DecideBody(version, ff));
  if (body.has_value()) out.body = *body;
  if (ff.expect.has_value()) {
    if (!absl::EqualsIgnoreCase(*ff.expect, "100-continue")) {
      return absl::UnimplementedError(absl::StrCat("unsupported Expect \"", *ff.expect, "\""));
    }
    // RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
    out.expect_continue = version == Version::kHttp11;
  }
  INTERLOCK_ASSIGN_OR_RETURN(out.persistent, Persistent(version, fields));
  out.upgrade = ff.upgrade;
  return out;
}

absl::StatusOr<ResponseFraming> DecideResponseFraming(Version version, int status,
                                                      absl::Span<const HeaderField> fields,
                                                      absl::string_view request_method) {
  INTERLOCK_ASSIGN_OR_RETURN(FramingFields ff, CollectFields(fields));
  ResponseFraming out;
  // Checked whatever the status: an ambiguous head is refused even where it does not matter.
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<BodyFraming> body, DecideBody(version, ff));
  INTERLOCK_ASSIGN_OR_RETURN(out.persistent, Persistent(version, fields));
  if (status == 101 || (request_method == "CONNECT" && status >= 200 && status < 300)) {
    out.body.kind = BodyKind::kTunnel;
    out.persistent = false;
  } else if (request_method == "HEAD" || status < 200 || status == 204 || status == 304) {
    out.body.kind = BodyKind::kNone;
    out.interim = status < 200;
  } else if (body.has_value()) {
    out.body = *body;
  } else {
    out.body.kind = BodyKind::kUntilClose;
    out.persistent = false;
  }
  return out;
}

}  // namespace interlock::codec::http
