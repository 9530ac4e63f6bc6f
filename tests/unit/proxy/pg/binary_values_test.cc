// Binary-format values through the detectors (binary_values.h): each shape of type, and
// what fails closed.
#include "userspace/proxy/pg/binary_values.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::proxy::pg {
namespace {

std::string Be32(uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }
std::string Be16(uint16_t v) { return std::string{char(v >> 8), char(v)}; }

std::unique_ptr<mask::Masker> Detectors() {
  v1::MaskProfile p;
  p.set_name("d");
  p.add_detectors()->set_detector(v1::DETECTOR_SSN);
  p.add_detectors()->set_detector(v1::DETECTOR_CARD);
  auto m = mask::Masker::Create(p, "");
  EXPECT_TRUE(m.ok());
  return std::move(*m);
}

std::string Numeric(int16_t weight, uint16_t sign, int16_t dscale, std::vector<uint16_t> digits) {
  std::string s = Be16(static_cast<uint16_t>(digits.size())) + Be16(static_cast<uint16_t>(weight)) + Be16(sign) +
                  Be16(static_cast<uint16_t>(dscale));
  for (uint16_t d : digits) s += Be16(d);
  return s;
}

TEST(NumericBinaryToText, PrintsAsPostgresDoes) {
  std::string out;
  ASSERT_TRUE(NumericBinaryToText(Numeric(3, 0, 0, {4111, 1111, 1111, 1111}), &out));
  EXPECT_EQ(out, "4111111111111111");
  ASSERT_TRUE(NumericBinaryToText(Numeric(0, 0x4000, 2, {12, 3400}), &out));
  EXPECT_EQ(out, "-12.34");
  ASSERT_TRUE(NumericBinaryToText(Numeric(-1, 0, 5, {500}), &out));
  EXPECT_EQ(out, "0.05000");
  ASSERT_TRUE(NumericBinaryToText(Numeric(1, 0, 0, {7}), &out));
  EXPECT_EQ(out, "70000");
  ASSERT_TRUE(NumericBinaryToText(Numeric(0, 0xC000, 0, {}), &out));
  EXPECT_EQ(out, "NaN");
  EXPECT_FALSE(NumericBinaryToText("\x00\x01", &out));
  EXPECT_FALSE(NumericBinaryToText(Numeric(0, 0, 0, {10000}), &out));
  EXPECT_FALSE(NumericBinaryToText(Numeric(0, 0x1234, 0, {1}), &out));
}

TEST(MaskBinaryValue, EachShape) {
  auto m = Detectors();
  std::string out;
  // Integers carrying a number the detectors know: the whole value goes.
  std::string int8 = Be32(0) + Be32(219099999);
  EXPECT_EQ(MaskBinaryValue(*m, 20, int8, &out, nullptr), BinaryMask::kNull);  // "219099999": 9 digits alone
  EXPECT_EQ(MaskBinaryValue(*m, 23, Be32(7), &out, nullptr), BinaryMask::kUnchanged);
  EXPECT_EQ(MaskBinaryValue(*m, 1700, Numeric(3, 0, 0, {4111, 1111, 1111, 1111}), &out, nullptr), BinaryMask::kNull);
  // float8 4111111111111111.0
  double d = 4111111111111111.0;
  uint64_t u;
  std::memcpy(&u, &d, 8);
  EXPECT_EQ(MaskBinaryValue(*m, 701, Be32(uint32_t(u >> 32)) + Be32(uint32_t(u)), &out, nullptr), BinaryMask::kNull);
  // Types that cannot carry text stay.
  EXPECT_EQ(MaskBinaryValue(*m, 2950, std::string(16, '\x07'), &out, nullptr), BinaryMask::kUnchanged);
  // jsonb keeps its version byte.
  ASSERT_EQ(MaskBinaryValue(*m, 3802, "\x01{\"s\":\"078-05-1120\"}", &out, nullptr), BinaryMask::kRewritten);
  EXPECT_EQ(out, "\x01{\"s\":\"[REDACTED]\"}");
  // A NULL element inside an array that must go sets the has-nulls flag.
  std::string card_numeric = Numeric(3, 0, 0, {4111, 1111, 1111, 1111});
  std::string arr = Be32(1) + Be32(0) + Be32(1700) + Be32(1) + Be32(1) + Be32(card_numeric.size()) + card_numeric;
  ASSERT_EQ(MaskBinaryValue(*m, 1231, arr, &out, nullptr), BinaryMask::kRewritten);
  EXPECT_EQ(out, Be32(1) + Be32(1) + Be32(1700) + Be32(1) + Be32(1) + Be32(0xFFFFFFFF));
  // A malformed array of a known array type: scanned raw.
  std::string broken = Be32(1) + Be32(0) + Be32(25) + Be32(5) + Be32(1) + " 078-05-1120";
  EXPECT_EQ(MaskBinaryValue(*m, 1009, broken, &out, nullptr), BinaryMask::kNull);
  // Nested deeper than we decode: still scanned raw.
  std::string v = " 078-05-1120";
  for (int i = 0; i < kMaxBinaryDepth + 2; ++i) v = Be32(1) + Be32(2249) + Be32(v.size()) + v;
  EXPECT_NE(MaskBinaryValue(*m, 2249, v, &out, nullptr), BinaryMask::kUnchanged);
}

TEST(MaskByteaText, HexAndEscapeFormatsAreReadAsBytes) {
  auto m = Detectors();
  std::string out;
  // '078-05-1120'::bytea as psql shows it.
  ASSERT_TRUE(MaskByteaText(*m, "\\x3037382d30352d31313230", &out, nullptr));
  EXPECT_EQ(out, "\\x5b52454441435445445d");  // "[REDACTED]"
  ASSERT_TRUE(MaskByteaText(*m, "ssn\\072 078-05-1120\\\\", &out, nullptr));  // escape format
  EXPECT_EQ(out, "\\x73736e3a205b52454441435445445d5c");
  EXPECT_FALSE(MaskByteaText(*m, "\\x00ff", &out, nullptr));
  EXPECT_FALSE(MaskByteaText(*m, "\\x0", &out, nullptr));     // not bytea text
  EXPECT_FALSE(MaskByteaText(*m, "\\x0g", &out, nullptr));
  EXPECT_FALSE(MaskByteaText(*m, "bad \\9 escape", &out, nullptr));
}

}  // namespace
}  // namespace interlock::proxy::pg
