// Response masking, the HTTP side: what a request must look like so that its answer can be
// masked, and what to do with the answer's head. Pure functions; HttpSession applies them
// and streams the body through mask::BodyMasker.
//
//   request:  fields = MaskableRequestFields(fields, &storage);   // before it is forwarded
//   response: ResponseMaskPlan plan = PlanResponseMasking(resp.fields, body_present, refuse);
//             kMask -> BodyMasker::Create(masker, plan.kind, plan.coding); head re-framed
//             (chunked), MaskedResponseFields(fields)
//
// What a hostile agent could try, and the answer:
//   - ask for a coding interlockd cannot decode (Accept-Encoding: br, zstd): the request
//     offers the upstream only gzip/deflate/identity, of what the agent accepts; a response
//     coded otherwise anyway is refused (502), never relayed unmasked;
//   - read a document in pieces so no piece matches a detector (Range: bytes=0-7, then
//     8-15 of a card number): Range and If-Range are removed, the whole body is masked;
//   - ask for the same resource again with its validators (If-None-Match): a 304 has no
//     body; the agent's cached copy is the masked one it was sent.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/codec/http/syntax.h"
#include "userspace/mask/body_masker.h"
#include "userspace/mask/masker.h"

namespace interlock::proxy::http {

// The Accept-Encoding value to forward when the answer will be masked: the agent's list
// reduced to the codings interlockd can decode and re-encode (gzip, x-gzip, deflate,
// identity; each kept as written, with its q), "" when none is left (the field is then
// dropped: identity). Codings with q=0 are dropped; "*" is dropped (it would admit br).
std::string MaskableAcceptEncoding(absl::string_view value);

// The request's forwarded fields when its answer will be masked: Range and If-Range
// removed, Accept-Encoding reduced (MaskableAcceptEncoding; every Accept-Encoding field
// merged, ""-valued ones dropped). A rewritten value lives in *storage.
std::vector<codec::http::HeaderField> MaskableRequestFields(absl::Span<const codec::http::HeaderField> fields,
                                                            std::string* storage);

struct ResponseMaskPlan {
  enum class Mode {
    kNoBody,     // nothing to mask (HEAD, 204, 304, a body announced empty)
    kMask,       // stream the body through BodyMasker(kind, coding)
    kUnmasked,   // a binary body, passed and audited as unmasked
    kRefuse,     // cannot be masked and may not pass: 502 with `reason`
  };
  Mode mode = Mode::kNoBody;
  mask::BodyKind kind = mask::BodyKind::kText;
  mask::ContentCoding coding = mask::ContentCoding::kIdentity;
  // HttpExchange.body_masking: "json", "text+gzip", "none", "unmasked:binary", ...
  std::string label;
  std::string reason;  // kRefuse: what could not be masked, for the agent and the audit
};

// HttpExchange.body_masking of a body masked by a BodyMasker of `kind` and `coding` that
// masked it as `masked_as` (BodyMasker::masked_as): "json", "text", "json-lines", "json-sniffed"
// (a text/plain, unlabelled or octet-stream body that was one JSON document), each with
// "+gzip"/"+deflate"; "unmasked:binary" (an octet-stream body found binary, passed).
std::string MaskedBodyLabel(mask::BodyKind kind, mask::BodyKind masked_as, mask::ContentCoding coding);

// `has_body`: the response carries a body (framing other than none, or a length > 0).
// Several Content-Type fields (which one would the agent's client believe?) are refused, as
// is a charset the detectors cannot read (mask::MaskableCharset: UTF-16, EBCDIC, ...);
// several Content-Encoding fields are one list (RFC 9110 §8.4), a list of more than one
// coding is refused (mask::ParseContentEncoding).
// An application/octet-stream body is masked (kind kOctetStream: text masked, binary passed,
// told apart by its first bytes) unless `refuse_unmaskable`, which refuses it as it
// refuses other binary types. `refuse_text`: the profile has field rules, which reach into
// JSON only, so a body declared as another text format (kText: CSV, HTML, XML, ...) is
// refused (HttpResource.pass_text_past_field_rules unset).
ResponseMaskPlan PlanResponseMasking(absl::Span<const codec::http::HeaderField> fields, bool has_body,
                                     bool refuse_unmaskable, bool refuse_text = false);

// The response's fields once its body was re-written by masking: the representation's
// digests (Content-MD5, Digest, Content-Digest, Repr-Digest) and Accept-Ranges removed —
// they describe bytes the agent no longer gets. The framing is the caller's
// (WithBodyFraming).
std::vector<codec::http::HeaderField> MaskedResponseFields(absl::Span<const codec::http::HeaderField> fields);

// The name HttpExchange.response_fields_masked gives the status line's reason phrase.
inline constexpr absl::string_view kReasonPhrase = "(reason phrase)";

// One response-head value (a field value, the reason phrase) as the agent may see it:
// the profile's detectors run over it as sent and, when it holds percent-escapes, over its
// percent-decoded reading too (an agent's client decodes "%40" in a Location). False when
// neither matched (*out untouched). True: *out is the masked value — the masked decoded
// reading when that matched, re-escaped (%XX) wherever a field value cannot hold the byte
// (controls, DEL, non-ASCII, and '%' itself), so masking can never put a CR/LF or NUL into
// the head — and `counts` gains one per match.
bool MaskResponseHeadValue(absl::string_view value, const mask::Masker& masker, std::string* out,
                           mask::MaskCounts* counts);

// The response's fields with every value but the framing (Content-Length,
// Transfer-Encoding: interlockd's to set) passed through MaskResponseHeadValue. Masked
// values live in *storage (a deque: the views into it stay valid as it grows); the names of
// the fields that changed are appended to *masked_names, in order. Field rules, which name
// JSON members, do not apply to field names: the detectors judge values.
std::vector<codec::http::HeaderField> MaskResponseHeadFields(absl::Span<const codec::http::HeaderField> fields,
                                                             const mask::Masker& masker,
                                                             std::deque<std::string>* storage,
                                                             std::vector<std::string>* masked_names,
                                                             mask::MaskCounts* counts);

}  // namespace interlock::proxy::http
