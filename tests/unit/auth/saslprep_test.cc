#include "userspace/auth/saslprep.h"

#include <string>

#include "gtest/gtest.h"

namespace interlock::auth {
namespace {

// \u escapes below are encoded as UTF-8 (GCC's and Clang's execution character set).
static_assert(sizeof("\u00E9") == 3, "narrow string literals must be UTF-8");

struct PrepCase {
  const char* name;
  std::string input;
  std::string want;
  SaslPrepOutcome outcome;
};

// Expected values follow PostgreSQL's pg_saslprep. The non-ASCII mapping, the fallback to
// raw bytes on prohibited input and the check-before-normalize quirk are also checked
// against a real server in pg_auth_test.cc.
TEST(PgSaslPrep, Table) {
  const PrepCase cases[] = {
      // ASCII: identity, even for control characters (RFC 4013 would prohibit them).
      {"ascii", "pencil", "pencil", SaslPrepOutcome::kAscii},
      {"ascii_space_and_control", "a b\x07\t", "a b\x07\t", SaslPrepOutcome::kAscii},
      {"empty", "", "", SaslPrepOutcome::kAscii},
      // Mapping (B.1 to nothing, C.1.2 to space) and NFKC.
      {"soft_hyphen_removed", "I\u00ADX", "IX", SaslPrepOutcome::kPrepared},
      {"roman_numeral_nine_nfkc", "\u2168", "IX", SaslPrepOutcome::kPrepared},
      {"nbsp_to_space", "a\u00A0b", "a b", SaslPrepOutcome::kPrepared},
      {"ideographic_space", "\u3000x", " x", SaslPrepOutcome::kPrepared},
      // U+200B is in both C.1.2 and B.1; PostgreSQL maps it to a space.
      {"zero_width_space", "a\u200Bb", "a b", SaslPrepOutcome::kPrepared},
      {"decomposed_composes", "cafe\u0301", "caf\u00E9", SaslPrepOutcome::kPrepared},
      {"precomposed_unchanged", "p\u00E4ss", "p\u00E4ss", SaslPrepOutcome::kPrepared},
      {"fullwidth_to_ascii", "\uFF50\uFF41ss", "pass", SaslPrepOutcome::kPrepared},
      {"rtl_only", "\u05D01\u05D0", "\u05D01\u05D0", SaslPrepOutcome::kPrepared},
      // Prohibited: raw bytes.
      {"only_mapped_to_nothing", "\u00AD", "\u00AD", SaslPrepOutcome::kProhibited},
      {"left_to_right_mark", "a\u200Eb", "a\u200Eb", SaslPrepOutcome::kProhibited},
      {"private_use", "x\uE000", "x\uE000", SaslPrepOutcome::kProhibited},
      {"unassigned_in_3_2", "x\u0221", "x\u0221", SaslPrepOutcome::kProhibited},
      {"tagging_character", "x\U000E0001", "x\U000E0001", SaslPrepOutcome::kProhibited},
      {"ascii_control_among_non_ascii", "\u00E9\x01", "\u00E9\x01", SaslPrepOutcome::kProhibited},
      {"bidi_mixed_l_and_r", "\u05D0a\u05D0", "\u05D0a\u05D0", SaslPrepOutcome::kProhibited},
      {"bidi_r_not_last", "\u05D01", "\u05D01", SaslPrepOutcome::kProhibited},
      // PostgreSQL checks before NFKC: U+0340 is prohibited (C.8) although NFKC maps it
      // to the allowed U+0300, so the raw bytes are hashed...
      {"pg_quirk_prohibited_before_nfkc", "\u00E9\u0340", "\u00E9\u0340",
       SaslPrepOutcome::kProhibited},
      // ...U+2122 (bidi ON) passes the bidi check although its NFKC "TM" is L...
      {"pg_quirk_bidi_before_nfkc", "\u05D0\u2122\u05D0", "\u05D0TM\u05D0",
       SaslPrepOutcome::kPrepared},
      // ...and U+FB1D (R) ends the string although its NFKC ends in U+05B4 (NSM).
      {"pg_quirk_bidi_last_before_nfkc", "\u05D0\uFB1D", "\u05D0\u05D9\u05B4",
       SaslPrepOutcome::kPrepared},
      // Not UTF-8: raw bytes.
      {"invalid_byte", "pass\xFF", "pass\xFF", SaslPrepOutcome::kInvalidUtf8},
      {"overlong_slash", "\xC0\xAF", "\xC0\xAF", SaslPrepOutcome::kInvalidUtf8},
      {"surrogate", "\xED\xA0\x80", "\xED\xA0\x80", SaslPrepOutcome::kInvalidUtf8},
      {"above_10ffff", "\xF4\x90\x80\x80", "\xF4\x90\x80\x80", SaslPrepOutcome::kInvalidUtf8},
      {"truncated", "a\xC3", "a\xC3", SaslPrepOutcome::kInvalidUtf8},
      {"lone_continuation", "a\x80", "a\x80", SaslPrepOutcome::kInvalidUtf8},
  };
  for (const PrepCase& c : cases) {
    SaslPrepResult r = PgSaslPrep(c.input);
    EXPECT_EQ(std::string(r.password.reveal()), c.want) << c.name;
    EXPECT_EQ(r.outcome, c.outcome) << c.name;
  }
}

TEST(PgSaslPrep, LongExpansionIsNotTruncated) {
  // U+FDFA (one character) has an 18-character NFKC form.
  SaslPrepResult r = PgSaslPrep("\xEF\xB7\xBA");
  EXPECT_EQ(r.outcome, SaslPrepOutcome::kPrepared);
  EXPECT_EQ(std::string(r.password.reveal()),
            "\xD8\xB5\xD9\x84\xD9\x89 \xD8\xA7\xD9\x84\xD9\x84\xD9\x87 "
            "\xD8\xB9\xD9\x84\xD9\x8A\xD9\x87 \xD9\x88\xD8\xB3\xD9\x84\xD9\x85");
}

TEST(IsValidUtf8, AcceptsAllPlanesRejectsIllFormed) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));   // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));   // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));       // private use is still UTF-8
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong 3-byte
  EXPECT_FALSE(IsValidUtf8("\xF0\x80\x80\xAF"));  // overlong 4-byte
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));
}

}  // namespace
}  // namespace interlock::auth
