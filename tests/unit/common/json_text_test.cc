#include "userspace/common/json_text.h"

#include <string>

#include "gtest/gtest.h"

namespace interlock {
namespace {

std::string Quoted(absl::string_view s) {
  std::string out = "x";  // appends: what was there stays
  AppendJsonQuoted(s, &out);
  return out.substr(1);
}

TEST(AppendJsonQuoted, EscapesWhatJsonRequires) {
  EXPECT_EQ(Quoted(""), R"("")");
  EXPECT_EQ(Quoted("plain text"), R"("plain text")");
  EXPECT_EQ(Quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Quoted("l1\nl2\r\tend"), R"("l1\nl2\r\tend")");
  EXPECT_EQ(Quoted(std::string("\0\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
}

TEST(AppendJsonQuoted, WellFormedUtf8PassesAndEverythingElseBecomesTheReplacementCharacter) {
  EXPECT_EQ(Quoted("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Quoted("a\xFF" "b"), "\"a" + fffd + "b\"");                   // never valid
  EXPECT_EQ(Quoted("\xC0\xAF"), "\"" + fffd + fffd + "\"");               // overlong '/'
  EXPECT_EQ(Quoted("\xE0\x80\xAF"), "\"" + fffd + fffd + fffd + "\"");    // overlong, 3 bytes
  EXPECT_EQ(Quoted("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");    // a UTF-16 surrogate
  EXPECT_EQ(Quoted("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
  EXPECT_EQ(Quoted("\xC3"), "\"" + fffd + "\"");                          // cut short
}

}  // namespace
}  // namespace interlock
