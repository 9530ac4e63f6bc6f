#include "userspace/proxy/http/response_masking.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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
  // No Content-Type: detectors run (fail closed), it is not passed as binary.
  EXPECT_EQ(plan({}).label, "text");
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}).mode, Mode::kUnmasked);
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}).label, "unmasked:binary");
  ResponseMaskPlan refused = plan({{"Content-Type", "application/octet-stream"}}, true, /*refuse=*/true);
  EXPECT_EQ(refused.mode, Mode::kRefuse);
  EXPECT_THAT(refused.reason, ::testing::HasSubstr("application/octet-stream"));
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}, /*has_body=*/false).mode, Mode::kNoBody);
  EXPECT_EQ(plan({{"Content-Type", "image/png"}}, /*has_body=*/false).label, "none");
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

}  // namespace
}  // namespace interlock::proxy::http
