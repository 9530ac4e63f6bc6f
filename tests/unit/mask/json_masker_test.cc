#include "userspace/mask/json_masker.h"

#include <cstdio>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/unit/codec/json/json_check.h"

namespace interlock::mask {
namespace {

using codec::json::testing::Bytes;
using codec::json::testing::RandomSplit;
using codec::json::testing::Validate;

constexpr char kKey[] = "0123456789abcdef0123456789abcdef";

constexpr char kProfile[] = R"pb(
  name: "pii"
  columns {
    column: "*_ssn"
    mask { style: MASK_STYLE_REDACT }
  }
  columns {
    column: "secret"
    mask { style: MASK_STYLE_NULL }
  }
  columns {
    column: "token"
    mask { style: MASK_STYLE_PARTIAL keep_last: 2 }
  }
  detectors { detector: DETECTOR_SSN }
  detectors { detector: DETECTOR_CARD }
  detectors { detector: DETECTOR_EMAIL }
)pb";

std::unique_ptr<Masker> Make() {
  v1::MaskProfile p;
  if (!google::protobuf::TextFormat::ParseFromString(kProfile, &p)) abort();
  auto m = Masker::Create(p, kKey);
  if (!m.ok()) abort();
  return std::move(m).value();
}

std::string MaskChunks(const Masker& m, const std::vector<absl::string_view>& chunks,
                       MaskCounts* counts = nullptr) {
  JsonMasker jm(m);
  std::string out;
  for (absl::string_view c : chunks) {
    absl::Status st = jm.Feed(c, &out);
    if (!st.ok()) return absl::StrCat("error: ", st.message());
  }
  absl::Status st = jm.Finish(&out);
  if (!st.ok()) return absl::StrCat("error: ", st.message());
  if (counts != nullptr) *counts = jm.counts();
  return out;
}

std::string Mask(const Masker& m, absl::string_view in, MaskCounts* counts = nullptr) {
  return MaskChunks(m, {in}, counts);
}

constexpr absl::string_view kDoc = R"({
  "user_ssn": "123-45-6789",
  "note": "card 4111 1111 1111 1111 ok",
  "cards": [4111111111111111, "4111111111111111", 42, 1.50],
  "escaped": "\u0034111111111111111",
  "4111111111111111": "key is not masked",
  "secret": {"a": [1, "x"], "b": null},
  "token": "abcdef",
  "keep":   [true, false, null, 0.10e3 ]
})";

TEST(JsonMasker, MasksValuesKeepsTheRestByteForByte) {
  auto m = Make();
  MaskCounts counts;
  const std::string out = Mask(*m, kDoc, &counts);
  EXPECT_NE(out.find(R"("user_ssn": "[REDACTED]")"), std::string::npos) << out;
  EXPECT_EQ(out.find("4111 1111 1111 1111"), std::string::npos) << out;
  EXPECT_EQ(out.find("[4111111111111111"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("4111111111111111": "key is not masked")"), std::string::npos) << out;
  EXPECT_EQ(out.find(R"(\u0034111)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("secret": {"a": [null, null], "b": null})"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("token": "****ef")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("keep":   [true, false, null, 0.10e3 ])"), std::string::npos) << out;
  EXPECT_NE(out.find(", 42, 1.50]"), std::string::npos) << out;
  EXPECT_TRUE(Validate(out).ok()) << out;
  EXPECT_EQ(counts.detectors["card"], 4u);
  EXPECT_EQ(counts.columns["*_ssn"], 1u);
  EXPECT_EQ(counts.columns["secret"], 2u);
  EXPECT_EQ(counts.columns["token"], 1u);
}

TEST(JsonMasker, NothingToMaskIsIdentity) {
  auto m = Make();
  const std::string in = "\n[ {\"a\" : 1e5, \"b\":\"\\u00e9\\n\"} ,[ ]]\t";
  EXPECT_EQ(Mask(*m, in), in);
}

TEST(JsonMasker, SplitsGiveTheSameOutput) {
  auto m = Make();
  const std::string whole = Mask(*m, kDoc);
  EXPECT_EQ(MaskChunks(*m, Bytes(kDoc)), whole);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    EXPECT_EQ(MaskChunks(*m, RandomSplit(kDoc, seed)), whole) << seed;
  }
}

TEST(JsonMasker, TopLevelNumber) {
  auto m = Make();
  const std::string out = Mask(*m, "4111111111111111");
  EXPECT_EQ(out.front(), '"') << out;
  EXPECT_TRUE(Validate(out).ok());
}

TEST(JsonMasker, InvalidInputIsAnError) {
  auto m = Make();
  EXPECT_EQ(Mask(*m, "[1,]").rfind("error: json: offset 3", 0), 0u) << Mask(*m, "[1,]");
  EXPECT_EQ(Mask(*m, "[\"4111111111111111\"").rfind("error: json:", 0), 0u);
}

TEST(JsonMasker, OutputParsesWithPython) {
  auto m = Make();
  const std::string out = Mask(*m, kDoc);
  FILE* p = popen("/usr/bin/python3 -c 'import json,sys; json.load(sys.stdin)'", "w");
  ASSERT_NE(p, nullptr);
  fwrite(out.data(), 1, out.size(), p);
  EXPECT_EQ(pclose(p), 0) << out;
}

TEST(JsonMasker, TenMegabyteArrayInBoundedBuffers) {
  auto m = Make();
  JsonMasker jm(*m);
  std::string out;
  size_t in_bytes = 0, peak = 0;
  ASSERT_TRUE(jm.Feed("[", &out).ok());
  const std::string element =
      R"({"id": 12345, "email": "someone@example.com", "card": 4111111111111111, "n": "x"},)";
  std::string chunk;
  while (in_bytes < 10 * 1000 * 1000) {
    chunk.clear();
    for (int i = 0; i < 100; ++i) chunk += element;
    // Cut at an odd place so tokens straddle reads.
    ASSERT_TRUE(jm.Feed(absl::string_view(chunk).substr(0, 1001), &out).ok());
    ASSERT_TRUE(jm.Feed(absl::string_view(chunk).substr(1001), &out).ok());
    in_bytes += chunk.size();
    peak = std::max(peak, jm.buffer_capacity());
    out.clear();
  }
  ASSERT_TRUE(jm.Feed("0]", &out).ok());
  ASSERT_TRUE(jm.Finish(&out).ok());
  EXPECT_LT(peak, 4096u);
  EXPECT_GT(jm.counts().detectors.at("card"), 100000u);
}

}  // namespace
}  // namespace interlock::mask
