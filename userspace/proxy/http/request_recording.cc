#include "userspace/proxy/http/request_recording.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/codec/http/target.h"
#include "userspace/common/file_util.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

namespace {

constexpr absl::string_view kBuiltInCredentialFields[] = {"authorization", "proxy-authorization", "cookie"};

absl::string_view VersionText(chttp::Version v) { return v == chttp::Version::kHttp10 ? "HTTP/1.0" : "HTTP/1.1"; }

bool FramingField(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "content-length") || absl::EqualsIgnoreCase(name, "transfer-encoding");
}

}  // namespace

RequestRecording::RequestRecording(Options options) : options_(std::move(options)) {
  elided_.assign(std::begin(chttp::kDefaultElidedParams), std::end(chttp::kDefaultElidedParams));
  for (const std::string& n : options_.elided_params) elided_.push_back(n);  // views into options_
}

RequestRecording::Event RequestRecording::Describe() const {
  std::string detail =
      "credential field values and elided query parameters withheld (kept nowhere); request bodies ";
  if (options_.bodies_in_clear) {
    absl::StrAppend(&detail, "recorded in clear (record_request_bodies)");
  } else if (options_.keep_originals) {
    absl::StrAppend(&detail, "withheld, their length and SHA-256 recorded, the bytes sealed to the auditor key");
  } else {
    absl::StrAppend(&detail, "withheld, their length and SHA-256 recorded, the bytes not kept (no auditor key)");
  }
  return {"request_recording", std::move(detail)};
}

bool RequestRecording::Withheld(absl::string_view name) const {
  for (absl::string_view n : kBuiltInCredentialFields) {
    if (absl::EqualsIgnoreCase(name, n)) return true;
  }
  for (const std::string& n : options_.credential_fields) {
    if (absl::EqualsIgnoreCase(name, n)) return true;
  }
  return false;
}

void RequestRecording::Head(const chttp::Request& req, std::string* clear) {
  // Written by hand rather than SerializeRequestHead: every part was parsed from the wire
  // (valid), and the replacements are valid field values and target characters.
  absl::StrAppend(clear, req.method, " ", chttp::ElideQueryParams(req.target, elided_, chttp::kElidedTargetValue), " ",
                  VersionText(req.version), "\r\n");
  const chttp::BodyFraming& body = req.framing.body;
  const bool has_body = body.kind == chttp::BodyKind::kChunked || (body.kind == chttp::BodyKind::kLength && body.length > 0);
  const bool withhold_body = has_body && !options_.bodies_in_clear;
  for (const chttp::HeaderField& f : req.fields) {
    if (withhold_body && FramingField(f.name)) continue;
    absl::StrAppend(clear, f.name, ": ", Withheld(f.name) ? kWithheldValue : f.value, "\r\n");
  }
  if (withhold_body) {
    absl::StrAppend(clear, "content-length: 0\r\ninterlock-withheld-body: ",
                    body.kind == chttp::BodyKind::kChunked ? std::string("chunked")
                                                           : absl::StrCat("content-length ", body.length),
                    "\r\n");
  }
  clear->append("\r\n");
  in_body_ = has_body;
  body_bytes_ = 0;
}

void RequestRecording::Body(absl::string_view raw, absl::string_view data, std::string* clear, std::string* sealed) {
  if (!in_body_) return;
  if (options_.bodies_in_clear) {
    clear->append(raw.data(), raw.size());
    return;
  }
  body_bytes_ += data.size();
  body_hash_.Update(data);
  if (options_.keep_originals) sealed->append(data.data(), data.size());
}

std::optional<RequestRecording::Event> RequestRecording::EndBody(bool complete) {
  if (!in_body_) return std::nullopt;
  in_body_ = false;
  if (options_.bodies_in_clear) {
    if (complete) return std::nullopt;
    return Event{"request_body_cut", "the session stopped reading the request body here"};
  }
  Sha256Digest d = body_hash_.Final();
  return Event{"request_body_withheld",
               absl::StrCat(body_bytes_, " bytes", complete ? "" : " (cut: the session stopped reading it)",
                            ", sha256 ", HexEncode(absl::string_view(reinterpret_cast<const char*>(d.data()), d.size())), options_.keep_originals ? ", sealed" : ", not kept")};
}

RequestRecording::Event RequestRecording::Unparsed(absl::string_view bytes, std::string* sealed) const {
  absl::string_view kept = bytes.substr(0, kMaxSealedUnparsedBytes);
  if (options_.keep_originals) sealed->append(kept.data(), kept.size());
  return {"agent_unparsed",
          absl::StrCat(bytes.size(), " bytes the agent sent that did not parse as a request, sha256 ", Sha256Hex(bytes),
                       options_.keep_originals
                           ? (kept.size() < bytes.size() ? absl::StrCat(", first ", kept.size(), " sealed") : ", sealed")
                           : ", not kept")};
}

}  // namespace interlock::proxy::http
