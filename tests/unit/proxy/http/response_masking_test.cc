#include "userspace/proxy/http/response_masking.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "userspace/mask/masker.h"

namespace interlock::proxy::http {
namespace {

using codec::http::HeaderField;
using Mode = ResponseMaskPlan::Mode;

TEST(MaskableAcceptEncodingTest, KeepsOnlyWhatInterlockdDecodes) {
  EXPECT_EQ(MaskableAcceptEncoding("gzip, deflate, br"), "gzip, deflate");
  EXPECT_EQ(MaskableAcceptEncoding("br, gzip;q=0.5, zstd, *"), "gzip;q=0.5");
  EXPECT_EQ(MaskableAcceptEncoding("GZIP , x-gzip;q=1.0"), "GZIP, x-gzip;q=1.0");
  EXPECT_EQ(MaskableAcceptEncoding("br"), "");
  EXPECT_EQ(MaskableAcceptEncoding("*"), "");
  // Refused codings stay refused; an unreadable q is not an offer.
  EXPECT_EQ(MaskableAcceptEncoding("gzip;q=0, deflate;q=0.000"), "");
  EXPECT_EQ(MaskableAcceptEncoding("gzip;q=2, deflate;q=abc, identity"), "identity");
}

TEST(MaskableRequestFieldsTest, RangeGoesAndAcceptEncodingIsReduced) {
  std::vector<HeaderField> in = {{"Host", "a"},
                                 {"Range", "bytes=0-7"},
                                 {"If-Range", "\"e1\""},
                                 {"Accept-Encoding", "br"},
                                 {"accept-encoding", "gzip"},
                                 {"X-Keep", "1"}};
  std::string storage;
  std::vector<HeaderField> out = MaskableRequestFields(in, &storage);
  EXPECT_THAT(out, ::testing::ElementsAre(HeaderField{"Host", "a"}, HeaderField{"X-Keep", "1"},
                                          HeaderField{"Accept-Encoding", "gzip"}));
  // Nothing decodable offered: identity (the field dropped).
  std::vector<HeaderField> br = {{"Accept-Encoding", "br, zstd"}};
  EXPECT_TRUE(MaskableRequestFields(br, &storage).empty());
  // Not offered at all: not added.
  std::vector<HeaderField> none = {{"Host", "a"}};
  EXPECT_THAT(MaskableRequestFields(none, &storage), ::testing::ElementsAre(HeaderField{"Host", "a"}));
}

TEST(PlanResponseMaskingTest, WhatEachBodyBecomes) {
  auto plan = [](std::vector<HeaderField> f, bool has_body = true, bool refuse = false) {
    return PlanResponseMasking(f, has_body, refuse);
  };
  ResponseMaskPlan json = plan({{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(json.mode, Mode::kMask);
  EXPECT_EQ(json.kind, mask::BodyKind::kJson);
  EXPECT_EQ(json.label, "json");
  ResponseMaskPlan gz = plan({{"Content-Type", "application/problem+json"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(gz.mode, Mode::kMask);
  EXPECT_EQ(gz.coding, mask::ContentCoding::kGzip);
  EXPECT_EQ(gz.label, "json+gzip");
  EXPECT_EQ(plan({{"Content-Type", "text/csv"}, {"Content-Encoding", "deflate"}}).label, "text+deflate");
  // No Content-Type: detectors run (fail closed), it is not passed as binary; it is masked
  // as JSON if it is a JSON document, as text/plain is.
  EXPECT_EQ(plan({}).label, "text");
  EXPECT_EQ(plan({}).kind, mask::BodyKind::kTextOrJson);
  EXPECT_EQ(plan({{"Content-Type", "text/plain; charset=utf-8"}}).kind, mask::BodyKind::kTextOrJson);
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}).mode, Mode::kUnmasked);
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}).label, "unmasked:binary");
  // octet-stream: looked at (text masked, binary passed), unless unmaskable bodies are refused.
  ResponseMaskPlan octets = plan({{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(octets.mode, Mode::kMask);
  EXPECT_EQ(octets.kind, mask::BodyKind::kOctetStream);
  ResponseMaskPlan refused = plan({{"Content-Type", "application/octet-stream"}}, true, /*refuse=*/true);
  EXPECT_EQ(refused.mode, Mode::kRefuse);
  EXPECT_THAT(refused.reason, ::testing::HasSubstr("application/octet-stream"));
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}, /*has_body=*/false).mode, Mode::kNoBody);
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}, /*has_body=*/false).label, "none");
}

TEST(MaskedBodyLabelTest, ABodyToldApartByItsBytesIsNamedByWhatItWasMaskedAs) {
  using mask::BodyKind;
  using mask::ContentCoding;
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kJson, BodyKind::kJson, ContentCoding::kIdentity), "json");
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kText, BodyKind::kText, ContentCoding::kGzip), "text+gzip");
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kTextOrJson, BodyKind::kJson, ContentCoding::kIdentity), "json-sniffed");
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kTextOrJson, BodyKind::kText, ContentCoding::kDeflate), "text+deflate");
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kOctetStream, BodyKind::kJson, ContentCoding::kGzip), "json-sniffed+gzip");
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kOctetStream, BodyKind::kBinary, ContentCoding::kGzip), "unmasked:binary");
  EXPECT_EQ(MaskedBodyLabel(BodyKind::kJsonLines, BodyKind::kJsonLines, ContentCoding::kIdentity), "json-lines");
}

// Field rules reach into JSON only: a body declared as another text format (what an agent
// gets with Accept: text/csv or ?format=xml) is refused when they apply; text/plain and
// unlabelled bodies are told apart by their bytes instead.
TEST(PlanResponseMaskingTest, TextFieldRulesCannotReachIsRefusedUnlessPassed) {
  auto plan = [](const char* type, bool refuse_text) {
    return PlanResponseMasking({{"Content-Type", type}}, true, false, refuse_text);
  };
  for (const char* type : {"text/csv", "text/html; charset=utf-8", "application/xml", "application/yaml",
                           "multipart/mixed; boundary=x"}) {
    ResponseMaskPlan p = plan(type, true);
    EXPECT_EQ(p.mode, Mode::kRefuse) << type;
    EXPECT_EQ(p.label, "failed") << type;
    EXPECT_THAT(p.reason, ::testing::HasSubstr("field rules")) << type;
    EXPECT_EQ(plan(type, false).mode, Mode::kMask) << type;
  }
  for (const char* type : {"application/json", "application/x-ndjson", "text/plain", "", "application/octet-stream"}) {
    EXPECT_EQ(plan(type, true).mode, Mode::kMask) << type;
  }
}

// A charset the detectors cannot read (UTF-16: "4\0" is no digit to them) is refused at the
// head, whatever the kind; a binary body with one is still passed as binary.
TEST(PlanResponseMaskingTest, ACharsetTheDetectorsCannotReadIsRefused) {
  for (const char* type : {"text/csv; charset=UTF-16", "application/json;charset=\"utf-16le\"", "text/plain; charset=utf-32",
                           "text/html; charset=IBM037", "application/octet-stream; charset=ucs-2",
                           "text/event-stream; charset=utf-7", "text/plain; charset=iso-2022-jp",
                           "text/plain; charset=x-made-up"}) {
    ResponseMaskPlan p = PlanResponseMasking({{"Content-Type", type}}, true, false);
    EXPECT_EQ(p.mode, Mode::kRefuse) << type;
    EXPECT_EQ(p.label, "failed") << type;
    EXPECT_THAT(p.reason, ::testing::HasSubstr("charset")) << type;
  }
  for (const char* type : {"text/csv; charset=utf-8", "application/json; charset=UTF-8", "text/plain; charset=iso-8859-1",
                           "text/html; charset=windows-1252", "text/plain; charset=Shift_JIS", "text/plain"}) {
    EXPECT_EQ(PlanResponseMasking({{"Content-Type", type}}, true, false).mode, Mode::kMask) << type;
  }
  EXPECT_EQ(PlanResponseMasking({{"Content-Type", "image/png; charset=utf-16"}}, true, false).mode, Mode::kUnmasked);
}

TEST(PlanResponseMaskingTest, WhatCannotBeMaskedIsRefused) {
  auto plan = [](std::vector<HeaderField> f) { return PlanResponseMasking(f, true, false); };
  for (const char* coding : {"br", "zstd", "compress", "gzip, gzip", "gzip, br"}) {
    ResponseMaskPlan p = plan({{"Content-Type", "application/json"}, {"Content-Encoding", coding}});
    EXPECT_EQ(p.mode, Mode::kRefuse) << coding;
    EXPECT_EQ(p.label, "failed") << coding;
  }
  // Two Content-Encoding fields are one list of two codings.
  EXPECT_EQ(plan({{"Content-Type", "text/plain"}, {"Content-Encoding", "gzip"}, {"Content-Encoding", "gzip"}}).mode,
            Mode::kRefuse);
  // Two Content-Types: which would the agent's client believe?
  EXPECT_EQ(plan({{"Content-Type", "application/json"}, {"Content-Type", "text/plain"}}).mode, Mode::kRefuse);
}

TEST(MaskedResponseFieldsTest, DigestsOfTheOriginalBytesGo) {
  std::vector<HeaderField> in = {{"Content-Type", "application/json"}, {"Content-MD5", "x"},   {"Digest", "x"},
                                 {"Content-Digest", "x"},              {"Repr-Digest", "x"},   {"Accept-Ranges", "bytes"},
                                 {"ETag", "\"1\""}};
  EXPECT_THAT(MaskedResponseFields(in), ::testing::ElementsAre(HeaderField{"Content-Type", "application/json"},
                                                               HeaderField{"ETag", "\"1\""}));
}


std::unique_ptr<mask::Masker> HeadMasker() {
  v1::MaskProfile p;
  if (!google::protobuf::TextFormat::ParseFromString(R"pb(
        name: "pii"
        columns { column: "email" }
        detectors { detector: DETECTOR_SSN }
        detectors { detector: DETECTOR_CARD }
        detectors { detector: DETECTOR_IBAN }
        detectors { detector: DETECTOR_EMAIL }
        detectors { detector: DETECTOR_PHONE }
      )pb",
                                                     &p)) {
    abort();
  }
  auto m = mask::Masker::Create(p, "");
  if (!m.ok()) abort();
  return std::move(m).value();
}

struct HeadResult {
  std::vector<HeaderField> fields;
  std::vector<std::string> masked;
  mask::MaskCounts counts;
  std::deque<std::string> storage;
};

std::unique_ptr<HeadResult> MaskHead(const std::vector<HeaderField>& in) {
  static const std::unique_ptr<mask::Masker> masker = HeadMasker();
  auto r = std::make_unique<HeadResult>();
  r->fields = MaskResponseHeadFields(in, *masker, &r->storage, &r->masked, &r->counts);
  return r;
}

// What an upstream might put in a response head about a customer, in every spelling the
// agent's client would decode: none of it reaches the agent.
TEST(MaskResponseHeadFieldsTest, ValuesInTheHeadAreMaskedInEverySpelling) {
  std::vector<HeaderField> in = {
      {"Location", "/customers/by-email/jane.doe@example.com"},
      {"Content-Location", "/customers/by-email/jane.doe%40example.com"},
      {"Link", "</cards/4111%2D1111%2D1111%2D1111>; rel=\"card\""},
      {"Content-Disposition", "attachment; filename=\"statement-4111111111111111.csv\""},
      {"X-Customer-SSN", "123-45-6789"},
      {"x-iban", "GB82 WEST 1234 5698 7654 32"},
      {"Set-Cookie", "last=jane.doe%40example.com; Path=/; HttpOnly"},
      {"Refresh", "0; url=/u/%6a%61ne%40example.com"},
  };
  auto r = MaskHead(in);
  ASSERT_EQ(r->fields.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(r->fields[i].name, in[i].name);
    const std::string v(r->fields[i].value);
    EXPECT_NE(v, in[i].value) << in[i].name;
    for (const char* secret : {"jane", "example.com", "4111", "6789", "GB82", "5698"}) {
      EXPECT_EQ(v.find(secret), std::string::npos) << in[i].name << ": " << v;
    }
    // Still a field value a client can read: no control bytes, no bare '%' from decoding.
    for (unsigned char c : v) EXPECT_TRUE(c == '\t' || (c >= 0x20 && c < 0x7f)) << in[i].name << ": " << v;
  }
  EXPECT_THAT(r->masked, ::testing::ElementsAre("Location", "Content-Location", "Link", "Content-Disposition",
                                                "X-Customer-SSN", "x-iban", "Set-Cookie", "Refresh"));
  EXPECT_EQ(r->counts.detectors.at("email"), 4u);
  EXPECT_EQ(r->counts.detectors.at("card"), 2u);
  EXPECT_EQ(r->counts.detectors.at("ssn"), 1u);
  EXPECT_EQ(r->counts.detectors.at("iban"), 1u);
}

// A decoded value that is masked is re-escaped where a field value could not hold it, so
// masking cannot be used to put a CR/LF (or a NUL) into the agent's response head.
TEST(MaskResponseHeadFieldsTest, ADecodedValueIsReescapedNeverSplitsTheHead) {
  auto r = MaskHead({{"Location", "/x%0d%0aSet-Cookie:%20a=1%00/jane@example.com%25"}});
  ASSERT_EQ(r->fields.size(), 1u);
  EXPECT_EQ(r->fields[0].value, "/x%0D%0ASet-Cookie: a=1%00/[REDACTED]%25");
}

// An ordinary head (nginx's, a JSON API's) is left exactly as it was: dates, lengths,
// validators and versions are not taken for phone numbers or cards.
TEST(MaskResponseHeadFieldsTest, AnOrdinaryHeadPassesUnchanged) {
  std::vector<HeaderField> in = {
      {"Server", "nginx/1.22.1"},
      {"Date", "Mon, 07 Dec 2026 22:48:32 GMT"},
      {"Content-Type", "application/json; charset=utf-8"},
      {"Content-Length", "4111111111111111"},  // framing is never touched, whatever it says
      {"Transfer-Encoding", "chunked"},
      {"Last-Modified", "Sun, 06 Dec 2026 10:00:00 GMT"},
      {"ETag", "\"6571f3a0-3e6\""},
      {"Cache-Control", "max-age=3600, must-revalidate"},
      {"X-Request-Id", "0b6f6a2e-4a5c-4f2d-9c1e-2b7d8e9f0a1b"},
      {"Location", "/customers/12345"},
  };
  auto r = MaskHead(in);
  EXPECT_EQ(r->fields, in);
  EXPECT_THAT(r->masked, ::testing::IsEmpty());
  EXPECT_TRUE(r->counts.empty());
}

TEST(MaskResponseHeadValueTest, TheReasonPhraseIsMaskedToo) {
  static const std::unique_ptr<mask::Masker> masker = HeadMasker();
  std::string out;
  mask::MaskCounts counts;
  EXPECT_TRUE(MaskResponseHeadValue("Card 4111111111111111 declined", *masker, &out, &counts));
  EXPECT_EQ(out.find("4111"), std::string::npos) << out;
  EXPECT_FALSE(MaskResponseHeadValue("OK", *masker, &out, &counts));
}

}  // namespace
}  // namespace interlock::proxy::http
