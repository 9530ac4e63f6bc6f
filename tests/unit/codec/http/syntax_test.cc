// syntax.h: the lexical rules every other part relies on.
#include "userspace/codec/http/syntax.h"

#include "gtest/gtest.h"

namespace interlock::codec::http {
namespace {

TEST(HttpSyntax, Tokens) {
  EXPECT_TRUE(IsToken("GET"));
  EXPECT_TRUE(IsToken("X-Custom_1.!#$%&'*+^`|~"));
  EXPECT_FALSE(IsToken(""));
  for (char c : absl::string_view("()<>@,;:\\\"/[]?={} \t\x7f\x01", 20)) {
    EXPECT_FALSE(IsTchar(c)) << static_cast<int>(c);
  }
  EXPECT_FALSE(IsTchar('\0'));
  EXPECT_FALSE(IsTchar('\x80'));
}

TEST(HttpSyntax, FieldValueChars) {
  EXPECT_TRUE(IsFieldValueChar('\t'));
  EXPECT_TRUE(IsFieldValueChar(' '));
  EXPECT_TRUE(IsFieldValueChar('\x80'));
  EXPECT_TRUE(IsFieldValueChar('\xff'));
  EXPECT_FALSE(IsFieldValueChar('\0'));
  EXPECT_FALSE(IsFieldValueChar('\r'));
  EXPECT_FALSE(IsFieldValueChar('\n'));
  EXPECT_FALSE(IsFieldValueChar('\x7f'));
}

TEST(HttpSyntax, FindLine) {
  absl::StatusOr<std::optional<Line>> l = FindLine("abc\r\ndef", 10);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->content, "abc");
  EXPECT_EQ((*l)->total_bytes, 5u);
  EXPECT_FALSE(FindLine("abc\r", 10)->has_value());
  EXPECT_FALSE(FindLine("", 10)->has_value());
  EXPECT_EQ(FindLine("abc\n", 10).status().message(), "bare LF in line");
  EXPECT_EQ(FindLine("\n", 10).status().message(), "bare LF in line");
  EXPECT_EQ(FindLine("a\rb\r\n", 10).status().message(), "bare CR in line");
  // The limit counts the content; CRLF comes on top.
  EXPECT_TRUE(FindLine("abc\r\n", 3)->has_value());
  EXPECT_FALSE(FindLine("abcd", 3)->has_value());
  EXPECT_EQ(FindLine("abcde", 3).status().code(), absl::StatusCode::kResourceExhausted);
  // A bare LF beyond the window is not judged; the limit is.
  EXPECT_EQ(FindLine("abcde\n", 3).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(HttpSyntax, FieldLines) {
  absl::StatusOr<HeaderField> f = ParseFieldLine("Name: \t value with  spaces \t");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->name, "Name");
  EXPECT_EQ(f->value, "value with  spaces");
  EXPECT_EQ(ParseFieldLine("A:b:c")->value, "b:c");
  EXPECT_FALSE(ParseFieldLine("A\t: b").ok());
  EXPECT_FALSE(ParseFieldLine(" A: b").ok());
  EXPECT_FALSE(ParseFieldLine("").ok());
}

TEST(HttpSyntax, Authorities) {
  EXPECT_TRUE(ValidateAuthority("example.com", false).ok());
  EXPECT_TRUE(ValidateAuthority("example.com:443", false).ok());
  EXPECT_TRUE(ValidateAuthority("[2001:db8::1]:443", false).ok());
  EXPECT_TRUE(ValidateAuthority("a%20b", false).ok());
  EXPECT_TRUE(ValidateAuthority("", true).ok());
  EXPECT_TRUE(ValidateAuthority("h:", false).ok());  // RFC 3986: port = *DIGIT
  EXPECT_EQ(ValidateAuthority("", false).message(), "empty authority");
  EXPECT_EQ(ValidateAuthority("u@h", false).message(), "userinfo in authority");
  EXPECT_EQ(ValidateAuthority(":80", false).message(), "empty host");
  EXPECT_EQ(ValidateAuthority("h:8x", false).message(), "invalid port");
  EXPECT_EQ(ValidateAuthority("h:123456", false).message(), "port too long");
  EXPECT_EQ(ValidateAuthority("[::1", false).message(), "unclosed IP literal");
  EXPECT_EQ(ValidateAuthority("[]", false).message(), "empty IP literal");
  EXPECT_EQ(ValidateAuthority("[::g]", false).message(), "invalid character in IP literal");
  EXPECT_EQ(ValidateAuthority("[::1]x", false).message(), "junk after host");
  EXPECT_EQ(ValidateAuthority("a/b", false).message(), "invalid character in host");
  EXPECT_EQ(ValidateAuthority("a%2", false).message(), "invalid percent escape in host");
}

}  // namespace
}  // namespace interlock::codec::http
