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
                                     bool refuse_unmaskable) {
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
  if (plan.kind == mask::BodyKind::kBinary) {
    plan.mode = refuse_unmaskable ? ResponseMaskPlan::Mode::kRefuse : ResponseMaskPlan::Mode::kUnmasked;
    plan.label = refuse_unmaskable ? "failed" : "unmasked:binary";
    plan.reason = absl::StrCat("a binary body (Content-Type \"", type.substr(0, 128),
                               "\") cannot be masked and the resource refuses unmaskable bodies");
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
  plan.label = plan.kind == mask::BodyKind::kJson ? "json" : "text";
  if (plan.coding != mask::ContentCoding::kIdentity) {
    absl::StrAppend(&plan.label, "+", mask::ContentCodingName(plan.coding));
  }
  return plan;
}

std::vector<chttp::HeaderField> MaskedResponseFields(absl::Span<const chttp::HeaderField> fields) {
  return chttp::RemoveFields(fields, {"content-md5", "digest", "content-digest", "repr-digest", "accept-ranges"});
}

}  // namespace interlock::proxy::http
