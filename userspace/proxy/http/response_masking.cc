#include "userspace/proxy/http/response_masking.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/codec/http/serialize.h"

namespace interlock::proxy::http {
namespace chttp = codec::http;

namespace {

// The q of one Accept-Encoding element ("gzip;q=0.5" -> 0.5); 1 without one; 0 when the q
// is not a valid qvalue (RFC 9110 §12.4.2: an element we cannot read is not offered).
double QValue(absl::string_view params) {
  for (absl::string_view p : absl::StrSplit(params, ';', absl::SkipEmpty())) {
    p = absl::StripAsciiWhitespace(p);
    if (p.size() < 2 || absl::AsciiStrToLower(p.substr(0, 2)) != "q=") continue;
    absl::string_view v = absl::StripAsciiWhitespace(p.substr(2));
    if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) return 0;
    if (v.size() > 1 && v[1] != '.') return 0;
    double q = v[0] - '0';
    double scale = 0.1;
    for (size_t i = 2; i < v.size(); ++i, scale /= 10) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(v[i]))) return 0;
      q += (v[i] - '0') * scale;
    }
    return q > 1 ? 0 : q;
  }
  return 1;
}

}  // namespace

std::string MaskableAcceptEncoding(absl::string_view value) {
  std::string out;
  for (absl::string_view element : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    element = absl::StripAsciiWhitespace(element);
    const size_t semi = element.find(';');
    absl::string_view coding = absl::StripAsciiWhitespace(element.substr(0, semi));
    absl::string_view params = semi == absl::string_view::npos ? "" : element.substr(semi + 1);
    const bool decodable = absl::EqualsIgnoreCase(coding, "gzip") || absl::EqualsIgnoreCase(coding, "x-gzip") ||
                           absl::EqualsIgnoreCase(coding, "deflate") || absl::EqualsIgnoreCase(coding, "identity");
    if (!decodable || QValue(params) <= 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", element);
  }
  return out;
}

std::vector<chttp::HeaderField> MaskableRequestFields(absl::Span<const chttp::HeaderField> fields,
                                                      std::string* storage) {
  std::string offered;
  bool any = false;
  for (const chttp::HeaderField& f : fields) {
    if (!absl::EqualsIgnoreCase(f.name, "accept-encoding")) continue;
    absl::StrAppend(&offered, any ? ", " : "", f.value);
    any = true;
  }
  std::vector<chttp::HeaderField> out =
      chttp::RemoveFields(fields, {"range", "if-range", "accept-encoding"});
  if (any) {
    *storage = MaskableAcceptEncoding(offered);
    if (!storage->empty()) out.push_back({"Accept-Encoding", *storage});
  }
  return out;
}

ResponseMaskPlan PlanResponseMasking(absl::Span<const chttp::HeaderField> fields, bool has_body,
                                     bool refuse_unmaskable, bool refuse_text) {
  ResponseMaskPlan plan;
  if (!has_body) {
    plan.mode = ResponseMaskPlan::Mode::kNoBody;
    plan.label = "none";
    return plan;
  }
  absl::string_view type;
  int types = 0;
  std::string codings;
  for (const chttp::HeaderField& f : fields) {
    if (absl::EqualsIgnoreCase(f.name, "content-type")) {
      type = f.value;
      ++types;
    } else if (absl::EqualsIgnoreCase(f.name, "content-encoding")) {
      absl::StrAppend(&codings, codings.empty() ? "" : ", ", f.value);
    }
  }
  if (types > 1) {
    plan.mode = ResponseMaskPlan::Mode::kRefuse;
    plan.label = "failed";
    plan.reason = "the response has several Content-Type fields; which one the agent would read is unknown";
    return plan;
  }
  plan.kind = mask::ClassifyContentType(type);
  plan.coding = mask::ParseContentEncoding(codings);
  if (plan.kind == mask::BodyKind::kBinary ||
      (plan.kind == mask::BodyKind::kOctetStream && refuse_unmaskable)) {
    plan.mode = refuse_unmaskable ? ResponseMaskPlan::Mode::kRefuse : ResponseMaskPlan::Mode::kUnmasked;
    plan.label = refuse_unmaskable ? "failed" : "unmasked:binary";
    plan.reason = absl::StrCat("a binary body (Content-Type \"", type.substr(0, 128),
                               "\") cannot be masked and the resource refuses unmaskable bodies");
    return plan;
  }
  if (const std::string charset = mask::ContentTypeCharset(type); !mask::MaskableCharset(charset)) {
    plan.mode = ResponseMaskPlan::Mode::kRefuse;
    plan.label = "failed";
    plan.reason = absl::StrCat("the body's charset \"", absl::string_view(charset).substr(0, 64),
                               "\" is not one interlockd can mask: its detectors read ASCII-compatible text");
    return plan;
  }
  if (plan.kind == mask::BodyKind::kText && refuse_text) {
    plan.mode = ResponseMaskPlan::Mode::kRefuse;
    plan.label = "failed";
    plan.reason = absl::StrCat("the mask profile's field rules name JSON members and cannot reach into a \"",
                               type.substr(0, 128), "\" body (HttpResource.pass_text_past_field_rules)");
    return plan;
  }
  if (plan.coding == mask::ContentCoding::kUnsupported) {
    plan.mode = ResponseMaskPlan::Mode::kRefuse;
    plan.label = "failed";
    plan.reason = absl::StrCat("the body is content-coded \"", absl::string_view(codings).substr(0, 128),
                               "\", which interlockd cannot decode to mask");
    return plan;
  }
  plan.mode = ResponseMaskPlan::Mode::kMask;
  // What a body told apart by its bytes becomes is known at its end (MaskedBodyLabel).
  plan.label = MaskedBodyLabel(
      plan.kind,
      plan.kind == mask::BodyKind::kJson || plan.kind == mask::BodyKind::kJsonLines ||
              plan.kind == mask::BodyKind::kEventStream
          ? plan.kind
          : mask::BodyKind::kText,
      plan.coding);
  return plan;
}

std::string MaskedBodyLabel(mask::BodyKind kind, mask::BodyKind masked_as, mask::ContentCoding coding) {
  if (masked_as == mask::BodyKind::kBinary) return "unmasked:binary";
  std::string label = masked_as == mask::BodyKind::kJsonLines     ? "json-lines"
                      : masked_as == mask::BodyKind::kEventStream ? "event-stream"
                      : masked_as != mask::BodyKind::kJson    ? "text"
                      : kind == mask::BodyKind::kJson         ? "json"
                                                              : "json-sniffed";
  if (coding != mask::ContentCoding::kIdentity) absl::StrAppend(&label, "+", mask::ContentCodingName(coding));
  return label;
}

std::vector<chttp::HeaderField> MaskedResponseFields(absl::Span<const chttp::HeaderField> fields) {
  return chttp::RemoveFields(fields, {"content-md5", "digest", "content-digest", "repr-digest", "accept-ranges"});
}

namespace {

// `value` with every valid %XX replaced by its byte; other '%' stay as they are.
std::string PercentDecoded(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() && chttp::IsHexDigit(value[i + 1]) && chttp::IsHexDigit(value[i + 2])) {
      out.push_back(static_cast<char>(chttp::HexValue(value[i + 1]) * 16 + chttp::HexValue(value[i + 2])));
      i += 2;
    } else {
      out.push_back(value[i]);
    }
  }
  return out;
}

// Bytes a field value may hold as they are (RFC 9110 §5.5, without obs-text), less '%'.
bool KeepsAsIs(unsigned char c) { return c == '\t' || (c >= 0x20 && c < 0x7f && c != '%'); }

std::string Reescaped(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (KeepsAsIs(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace

bool MaskResponseHeadValue(absl::string_view value, const mask::Masker& masker, std::string* out,
                           mask::MaskCounts* counts) {
  if (value.find('%') != absl::string_view::npos) {
    const std::string decoded = PercentDecoded(value);
    std::string masked;
    if (decoded != value && masker.MaskText(decoded, &masked, counts)) {
      *out = Reescaped(masked);
      return true;
    }
  }
  return masker.MaskText(value, out, counts);
}

std::vector<chttp::HeaderField> MaskResponseHeadFields(absl::Span<const chttp::HeaderField> fields,
                                                       const mask::Masker& masker, std::deque<std::string>* storage,
                                                       std::vector<std::string>* masked_names,
                                                       mask::MaskCounts* counts) {
  std::vector<chttp::HeaderField> out(fields.begin(), fields.end());
  for (chttp::HeaderField& f : out) {
    if (absl::EqualsIgnoreCase(f.name, "content-length") || absl::EqualsIgnoreCase(f.name, "transfer-encoding")) {
      continue;
    }
    std::string masked;
    if (!MaskResponseHeadValue(f.value, masker, &masked, counts)) continue;
    f.value = storage->emplace_back(std::move(masked));
    masked_names->emplace_back(f.name);
  }
  return out;
}

}  // namespace interlock::proxy::http
