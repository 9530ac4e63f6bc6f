#include "userspace/mask/detectors.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::mask {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using FindFn = void (*)(absl::string_view, SpanList*);

// The matched substrings, in order.
std::vector<std::string> Found(FindFn find, absl::string_view text) {
  SpanList spans;
  find(text, &spans);
  std::vector<std::string> out;
  size_t last_end = 0;
  for (const Span& s : spans) {
    EXPECT_LE(last_end, s.begin) << "overlapping or unordered spans in: " << text;
    EXPECT_LT(s.begin, s.end);
    EXPECT_LE(s.end, text.size());
    last_end = s.end;
    out.emplace_back(text.substr(s.begin, s.end - s.begin));
  }
  return out;
}

// The whole text is exactly one match.
void ExpectWhole(FindFn find, absl::string_view text) {
  EXPECT_THAT(Found(find, text), ElementsAre(std::string(text))) << text;
}
void ExpectNone(FindFn find, absl::string_view text) {
  EXPECT_THAT(Found(find, text), IsEmpty()) << text;
}

// ---- SSN ----

TEST(SsnDetector, FindsValidForms) {
  ExpectWhole(FindSsns, "078-05-1120");
  ExpectWhole(FindSsns, "078 05 1120");
  ExpectWhole(FindSsns, "078051120");
  ExpectWhole(FindSsns, "219-09-9999");
  ExpectWhole(FindSsns, "899-99-9999");
}

TEST(SsnDetector, RejectsReservedRanges) {
  ExpectNone(FindSsns, "000-12-3456");
  ExpectNone(FindSsns, "666-12-3456");
  ExpectNone(FindSsns, "900-12-3456");
  ExpectNone(FindSsns, "999-12-3456");
  ExpectNone(FindSsns, "123-00-4567");
  ExpectNone(FindSsns, "123-45-0000");
  ExpectNone(FindSsns, "000123456");
  ExpectNone(FindSsns, "666123456");
}

TEST(SsnDetector, RejectsWrongShapes) {
  ExpectNone(FindSsns, "078-05 1120");  // mixed separators
  ExpectNone(FindSsns, "078--05-1120");
  ExpectNone(FindSsns, "07-805-1120");
  ExpectNone(FindSsns, "078.05.1120");
  ExpectNone(FindSsns, "07805112");    // 8 digits
  ExpectNone(FindSsns, "0780511200");  // 10 digits
}

TEST(SsnDetector, IgnoresDigitsInsideLongerNumbers) {
  ExpectNone(FindSsns, "1078-05-1120");
  ExpectNone(FindSsns, "078-05-11201");
  ExpectNone(FindSsns, "x078051120");
  ExpectNone(FindSsns, "078051120z");
  ExpectNone(FindSsns, "1-078-05-1120");
  ExpectNone(FindSsns, "078-05-1120-7");
  ExpectNone(FindSsns, "078051120.50");
  ExpectNone(FindSsns, "12078051120");
  EXPECT_THAT(Found(FindSsns, "id: 078051120."), ElementsAre("078051120"));
  EXPECT_THAT(Found(FindSsns, "(078-05-1120)"), ElementsAre("078-05-1120"));
}

TEST(SsnDetector, FindsSeveralInOneValue) {
  EXPECT_THAT(Found(FindSsns, "078-05-1120,219-09-9999;000-12-3456 123 45 6789"),
              ElementsAre("078-05-1120", "219-09-9999", "123 45 6789"));
}

TEST(SsnDetector, SpaceJoinedValuesAreSeparate) {
  EXPECT_THAT(Found(FindSsns, "078 05 1120 219 09 9999"),
              ElementsAre("078 05 1120", "219 09 9999"));
  EXPECT_THAT(Found(FindSsns, "078051120 219099999"), ElementsAre("078051120", "219099999"));
}

TEST(SsnDetector, FindsInsideJson) {
  EXPECT_THAT(Found(FindSsns, R"({"ssn":"078-05-1120","card":"4111111111111111"})"),
              ElementsAre("078-05-1120"));
}

TEST(SsnDetector, Validator) {
  EXPECT_TRUE(SsnValid("078", "05", "1120"));
  EXPECT_FALSE(SsnValid("000", "05", "1120"));
  EXPECT_FALSE(SsnValid("666", "05", "1120"));
  EXPECT_FALSE(SsnValid("950", "05", "1120"));
  EXPECT_FALSE(SsnValid("078", "00", "1120"));
  EXPECT_FALSE(SsnValid("078", "05", "0000"));
  EXPECT_FALSE(SsnValid("07", "05", "1120"));
}

// ---- Card ----

TEST(CardDetector, FindsValidNumbers) {
  ExpectWhole(FindCards, "4111111111111111");
  ExpectWhole(FindCards, "4111 1111 1111 1111");
  ExpectWhole(FindCards, "4111-1111-1111-1111");
  ExpectWhole(FindCards, "5555555555554444");
  ExpectWhole(FindCards, "6011111111111117");
  ExpectWhole(FindCards, "4222222222222");      // 13 digits
  ExpectWhole(FindCards, "378282246310005");    // Amex, one run
  ExpectWhole(FindCards, "3782 822463 10005");  // Amex 4-6-5
  ExpectWhole(FindCards, "3056 930902 5904");   // Diners 4-6-4
  ExpectWhole(FindCards, "4222 2222 2222 2");   // 4-4-4-1
}

TEST(CardDetector, RejectsLuhnFailuresAndBadGroups) {
  ExpectNone(FindCards, "4111111111111112");
  ExpectNone(FindCards, "4111 1111 1111 1112");
  ExpectNone(FindCards, "4111 1111-1111 1111");   // mixed separators
  ExpectNone(FindCards, "4111  1111 1111 1111");  // double space
  ExpectNone(FindCards, "41111 111 1111 1111");   // not a card layout
  ExpectNone(FindCards, "411111111111");          // 12 digits
  ExpectNone(FindCards, "1700000000004");         // Luhn-valid epoch millis, MII 1
  ExpectNone(FindCards, "9111111111111111111");
  ExpectNone(FindCards, "04111111111111111");  // Luhn-valid, MII 0
}

TEST(CardDetector, IgnoresDigitsInsideLongerNumbers) {
  ExpectNone(FindCards, "0004111111111111111100");
  ExpectNone(FindCards, "41111111111111111111");
  ExpectNone(FindCards, "x4111111111111111");
  ExpectNone(FindCards, "4111111111111111.25");
  ExpectNone(FindCards, "a4111 1111 1111 1111");
  ExpectNone(FindCards, "4111 1111 1111 1111b");
}

TEST(CardDetector, GroupedCardFollowedByAnotherGroupIsStillACard) {
  EXPECT_THAT(Found(FindCards, "4111 1111 1111 1111 2024"), ElementsAre("4111 1111 1111 1111"));
  EXPECT_THAT(Found(FindCards, "ref 2024 4111 1111 1111 1111"), ElementsAre("4111 1111 1111 1111"));
}

TEST(CardDetector, FindsSeveralAndInJson) {
  EXPECT_THAT(Found(FindCards, "4111111111111111|5555 5555 5555 4444|4111111111111112"),
              ElementsAre("4111111111111111", "5555 5555 5555 4444"));
  EXPECT_THAT(Found(FindCards, R"({"ssn":"078-05-1120","card":"4111111111111111"})"),
              ElementsAre("4111111111111111"));
}

TEST(CardDetector, Luhn) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_TRUE(LuhnValid("79927398713"));
  EXPECT_FALSE(LuhnValid("79927398710"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("4111x11111111111"));
}

// ---- IBAN ----

TEST(IbanDetector, FindsValidIbans) {
  ExpectWhole(FindIbans, "GB82 WEST 1234 5698 7654 32");
  ExpectWhole(FindIbans, "GB82WEST12345698765432");
  ExpectWhole(FindIbans, "gb82west12345698765432");
  ExpectWhole(FindIbans, "DE89370400440532013000");
  ExpectWhole(FindIbans, "DE89 3704 0044 0532 0130 00");
  ExpectWhole(FindIbans, "NL91ABNA0417164300");
  ExpectWhole(FindIbans, "FR1420041010050500013M02606");
  ExpectWhole(FindIbans, "NO9386011117947");
  ExpectWhole(FindIbans, "BE68539007547034");
}

TEST(IbanDetector, RejectsNearMisses) {
  ExpectNone(FindIbans, "GB82 WEST 1234 5698 7654 33");  // one digit changed
  ExpectNone(FindIbans, "GB82WEST12345698765423");       // two digits swapped
  ExpectNone(FindIbans, "GB82WEST1234569876543");        // too short for GB
  ExpectNone(FindIbans, "GB82WEST123456987654321");      // too long for GB
  ExpectNone(FindIbans, "XX82WEST12345698765432");       // unknown country
  ExpectNone(FindIbans, "GB82 WEST 12345698 7654 32");   // bad grouping
  ExpectNone(FindIbans, "GB82  WEST 1234 5698 7654 32");
  ExpectNone(FindIbans, "AGB82WEST12345698765432");  // inside a longer word
}

TEST(IbanDetector, FindsInText) {
  EXPECT_THAT(Found(FindIbans, "pay to GB82 WEST 1234 5698 7654 32, or NL91ABNA0417164300."),
              ElementsAre("GB82 WEST 1234 5698 7654 32", "NL91ABNA0417164300"));
  EXPECT_THAT(Found(FindIbans, R"({"iban":"DE89370400440532013000"})"),
              ElementsAre("DE89370400440532013000"));
}

TEST(IbanDetector, Validator) {
  EXPECT_TRUE(IbanValid("GB82WEST12345698765432"));
  EXPECT_TRUE(IbanValid("gb82west12345698765432"));
  EXPECT_FALSE(IbanValid("GB82WEST12345698765433"));
  EXPECT_FALSE(IbanValid("GB82WEST1234569876543"));
  EXPECT_FALSE(IbanValid("GB"));
  EXPECT_FALSE(IbanValid(""));
  EXPECT_EQ(IbanLengthForCountry("GB"), 22);
  EXPECT_EQ(IbanLengthForCountry("de"), 22);
  EXPECT_EQ(IbanLengthForCountry("NO"), 15);
  EXPECT_EQ(IbanLengthForCountry("MT"), 31);
  EXPECT_EQ(IbanLengthForCountry("US"), 0);
  EXPECT_EQ(IbanLengthForCountry("G1"), 0);
}

// ---- ABA ----

TEST(AbaDetector, FindsValidRoutingNumbers) {
  ExpectWhole(FindAbaNumbers, "011000015");
  ExpectWhole(FindAbaNumbers, "021000021");
  ExpectWhole(FindAbaNumbers, "123456780");
  EXPECT_THAT(Found(FindAbaNumbers, "routing 011000015, account 12345"), ElementsAre("011000015"));
}

TEST(AbaDetector, RejectsNearMisses) {
  ExpectNone(FindAbaNumbers, "011000016");   // checksum
  ExpectNone(FindAbaNumbers, "000000000");   // all zeros
  ExpectNone(FindAbaNumbers, "131000013");   // 13: not a Federal Reserve prefix
  ExpectNone(FindAbaNumbers, "01100001");    // 8 digits
  ExpectNone(FindAbaNumbers, "0110000150");  // inside a longer number
  ExpectNone(FindAbaNumbers, "5011000015");
  ExpectNone(FindAbaNumbers, "011-000-015");
  ExpectNone(FindAbaNumbers, "A011000015");
}

TEST(AbaDetector, Validator) {
  EXPECT_TRUE(AbaValid("011000015"));
  EXPECT_FALSE(AbaValid("011000016"));
  EXPECT_TRUE(AbaValid("800000006"));
  EXPECT_FALSE(AbaValid("800000000"));
  EXPECT_FALSE(AbaValid("01100001x"));
  EXPECT_FALSE(AbaValid("0110000"));
}

// ---- Email ----

TEST(EmailDetector, FindsAddresses) {
  ExpectWhole(FindEmails, "alice@example.com");
  ExpectWhole(FindEmails, "bob.smith+tag@mail.example.co.uk");
  ExpectWhole(FindEmails, "Upper.Case@Example.COM");
  EXPECT_THAT(Found(FindEmails, "mail <carol_99@sub-domain.example.org>."),
              ElementsAre("carol_99@sub-domain.example.org"));
  EXPECT_THAT(Found(FindEmails, R"(["a@example.com","b@example.net"])"),
              ElementsAre("a@example.com", "b@example.net"));
  EXPECT_THAT(Found(FindEmails, "josé.garcía@example.es"), ElementsAre("josé.garcía@example.es"));
}

TEST(EmailDetector, RejectsNearMisses) {
  ExpectNone(FindEmails, "alice@localhost");
  ExpectNone(FindEmails, "a@b.c");
  ExpectNone(FindEmails, "@example.com");
  ExpectNone(FindEmails, "alice.@example.com");
  ExpectNone(FindEmails, "alice@-example.com");
  ExpectNone(FindEmails, "alice@example-.com");
  ExpectNone(FindEmails, "alice@example.c0m");
  ExpectNone(FindEmails, "alice@@example.com");
  ExpectNone(FindEmails, "alice@.example.com");
  ExpectNone(FindEmails, "user@192.168.0.1");
  ExpectNone(FindEmails, std::string(65, 'a') + "@example.com");
  ExpectNone(FindEmails, "no at sign here");
}

TEST(EmailDetector, NonAsciiSurroundings) {
  EXPECT_THAT(Found(FindEmails, "邮箱alice@example.com。"), ElementsAre("邮箱alice@example.com"));
  EXPECT_THAT(
      Found(FindEmails, "请通过这个电子邮件地址与我们的客户服务团队联系alice@example.com，谢谢"),
      ElementsAre("alice@example.com"));
  EXPECT_THAT(Found(FindEmails, "x@bücher.de"), ElementsAre("x@bücher.de"));
  ExpectNone(FindEmails, "x@example.公司");
}

TEST(EmailDetector, TrailingDotIsNotPartOfTheAddress) {
  EXPECT_THAT(Found(FindEmails, "write to dave@example.com."), ElementsAre("dave@example.com"));
  EXPECT_THAT(Found(FindEmails, ".dave@example.com"), ElementsAre("dave@example.com"));
}

// ---- Phone ----

TEST(PhoneDetector, FindsE164) {
  ExpectWhole(FindPhones, "+14155552671");
  ExpectWhole(FindPhones, "+44 20 7946 0958");
  ExpectWhole(FindPhones, "+49-30-123456");
  ExpectWhole(FindPhones, "+33 1 23 45 67 89");
}

TEST(PhoneDetector, FindsNanp) {
  ExpectWhole(FindPhones, "(415) 555-2671");
  ExpectWhole(FindPhones, "(415)555-2671");
  ExpectWhole(FindPhones, "415-555-2671");
  ExpectWhole(FindPhones, "415.555.2671");
  ExpectWhole(FindPhones, "+1 415-555-2671");
  ExpectWhole(FindPhones, "+1 (415) 555-2671");
  ExpectWhole(FindPhones, "1-800-555-0199");
  ExpectWhole(FindPhones, "1 (800) 555-0199");
}

TEST(PhoneDetector, RejectsNearMisses) {
  ExpectNone(FindPhones, "+1234567");           // 7 digits
  ExpectNone(FindPhones, "+1234567890123456");  // 16 digits
  ExpectNone(FindPhones, "+0123456789");
  ExpectNone(FindPhones, "123-456-7890");  // area code starts with 1
  ExpectNone(FindPhones, "415-155-2671");  // exchange starts with 1
  ExpectNone(FindPhones, "415-555.2671");  // mixed separators
  ExpectNone(FindPhones, "415-555-26711");
  ExpectNone(FindPhones, "9415-555-2671");
  ExpectNone(FindPhones, "415-555-2671-3");
  ExpectNone(FindPhones, "4155552671");  // bare 10 digits: not a NANP form
  ExpectNone(FindPhones, "a+14155552671");
  ExpectNone(FindPhones, "2024-01-15 10:30:00");
}

TEST(PhoneDetector, FindsSeveral) {
  EXPECT_THAT(Found(FindPhones, "call (415) 555-2671 or +44 20 7946 0958, fax 415.555.2672"),
              ElementsAre("(415) 555-2671", "+44 20 7946 0958", "415.555.2672"));
}

// ---- Custom and ContentDetector ----

TEST(ContentDetector, CustomPattern) {
  auto d = ContentDetector::Create(v1::DETECTOR_CUSTOM, "EMP-[0-9]{6}");
  ASSERT_TRUE(d.ok()) << d.status();
  SpanList spans;
  (*d)->FindAll("EMP-123456, EMP-12345, xEMP-654321", &spans);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0], (Span{0, 10}));
  EXPECT_EQ(spans[1], (Span{24, 34}));
}

TEST(ContentDetector, CustomPatternWithAssertionsOnly) {
  auto d = ContentDetector::Create(v1::DETECTOR_CUSTOM, R"(\bsecret\w*)");
  ASSERT_TRUE(d.ok()) << d.status();
  SpanList spans;
  (*d)->FindAll("a secret_one and secrets", &spans);
  EXPECT_EQ(spans.size(), 2u);
}

TEST(ContentDetector, RejectsBadPatterns) {
  EXPECT_EQ(ContentDetector::Create(v1::DETECTOR_CUSTOM, "(").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentDetector::Create(v1::DETECTOR_CUSTOM, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ContentDetector::Create(v1::DETECTOR_CUSTOM, "a*").status().message(),
              HasSubstr("empty string"));
  EXPECT_EQ(ContentDetector::Create(v1::DETECTOR_SSN, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentDetector::Create(v1::DETECTOR_UNSPECIFIED).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentDetector::Create(static_cast<v1::Detector>(42)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentDetector::Create(v1::DETECTOR_CUSTOM, std::string(5000, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Compiles with RE2's default 8 MiB budget, not within kMaxCustomPatternMemory.
  EXPECT_EQ(ContentDetector::Create(v1::DETECTOR_CUSTOM, "\\pL{300}").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ContentDetector, BuiltinsDispatch) {
  for (v1::Detector kind : {v1::DETECTOR_SSN, v1::DETECTOR_CARD, v1::DETECTOR_IBAN,
                            v1::DETECTOR_ABA, v1::DETECTOR_EMAIL, v1::DETECTOR_PHONE}) {
    auto d = ContentDetector::Create(kind);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ((*d)->needs_at(), kind == v1::DETECTOR_EMAIL);
    EXPECT_EQ((*d)->needs_digit(), kind != v1::DETECTOR_EMAIL);
    SpanList spans;
    (*d)->FindAll(
        "078-05-1120 4111111111111111 GB82WEST12345698765432 011000015 "
        "a@example.com (415) 555-2671",
        &spans);
    EXPECT_GE(spans.size(), 1u) << v1::Detector_Name(kind);
  }
}

// ---- Pre-scan ----

TEST(PreScan, FindAsciiDigit) {
  for (size_t len = 0; len < 40; ++len) {
    for (size_t at = 0; at <= len; ++at) {
      std::string s(len, 'x');
      if (at < len) s[at] = '7';
      EXPECT_EQ(FindAsciiDigit(s.data(), s.data() + s.size()) - s.data(),
                static_cast<ptrdiff_t>(at));
    }
  }
  // Neighbours of the digit range, and high-bit bytes whose low 7 bits are digits.
  std::string s = "/:@\xb0\xb9\xe2\x82\xac \x7f";
  EXPECT_EQ(FindAsciiDigit(s.data(), s.data() + s.size()), s.data() + s.size());
}

TEST(PreScan, FindDigitRunsMatchesANaiveScan) {
  uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245 + 12345;
    return (seed >> 16) & 0x7fff;
  };
  const char kAlphabet[] = "0123456789a -.\xc3\xa9";
  for (int round = 0; round < 2000; ++round) {
    size_t len = next() % 200;
    if (round < 8) len = 62 + round;  // around the 64-byte block edge
    std::string s;
    for (size_t k = 0; k < len; ++k) s.push_back(kAlphabet[next() % (sizeof kAlphabet - 1)]);
    if (round % 3 == 0) s = std::string(len, '7');
    std::vector<Span> want;
    for (size_t i = 0; i < s.size();) {
      if (s[i] < '0' || s[i] > '9') {
        ++i;
        continue;
      }
      size_t e = i;
      while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
      want.push_back({i, e});
      i = e;
    }
    DigitRuns runs;
    FindDigitRuns(s, &runs);
    ASSERT_EQ(std::vector<Span>(runs.begin(), runs.end()), want) << "len " << len << ": " << s;
  }
}

TEST(PreScan, MayContainCandidate) {
  EXPECT_FALSE(MayContainCandidate("plain words only", true, true, false));
  EXPECT_TRUE(MayContainCandidate("room 7", true, false, false));
  EXPECT_FALSE(MayContainCandidate("room 7", false, true, false));
  EXPECT_TRUE(MayContainCandidate("me@x", false, true, false));
  EXPECT_TRUE(MayContainCandidate("anything", false, false, true));
}

}  // namespace
}  // namespace interlock::mask
