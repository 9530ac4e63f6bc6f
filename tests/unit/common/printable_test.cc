// common::Printable / Visible: agent-controlled text reaches a terminal only as characters
// that cannot drive it.
#include "userspace/common/printable.h"

#include "gtest/gtest.h"

namespace interlock::common {
namespace {

TEST(Printable, EscapesWhatATerminalWouldActOn) {
  EXPECT_EQ(Visible("plain SELECT 1;"), "plain SELECT 1;");
  // An OSC title change, a CSI clear-screen, a bell and a backspace.
  EXPECT_EQ(Visible("a\x1b]0;owned\x07" "b\x1b[2Jc\bd"), "a\\x1b]0;owned\\x07b\\x1b[2Jc\\x08d");
  EXPECT_EQ(Visible("line\nnext\r\t"), "line\\nnext\\r\\t");
  EXPECT_EQ(Visible(std::string("nul\0byte", 8)), "nul\\x00byte");
  EXPECT_EQ(Visible("\x7f"), "\\x7f");
  // C1 controls (CSI as one byte, U+009B) and bidirectional overrides (Trojan Source).
  EXPECT_EQ(Visible("\xc2\x9b" "2J"), "\\u{009b}2J");
  EXPECT_EQ(Visible("ok\xe2\x80\xae" "evil"), "ok\\u{202e}evil");
  // Invalid UTF-8 is shown byte by byte; valid text passes.
  EXPECT_EQ(Visible("\xff\xc3"), "\\xff\\xc3");
  EXPECT_EQ(Visible("Zoë 日本"), "Zoë 日本");
}

TEST(Printable, CapsWithoutCuttingAnEscape) {
  Printed p = Printable("ab\x1b" "cd", 4);
  EXPECT_EQ(p.text, "ab");
  EXPECT_TRUE(p.cut);
  p = Printable("abc", 0);
  EXPECT_EQ(p.text, "abc");
  EXPECT_FALSE(p.cut);
  EXPECT_EQ(Printable("a\tb", 0, /*keep_tabs=*/true).text, "a\tb");
}

}  // namespace
}  // namespace interlock::common
