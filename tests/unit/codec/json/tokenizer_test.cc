#include "userspace/codec/json/tokenizer.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/unit/codec/json/json_check.h"

namespace interlock::codec::json {
namespace {

using testing::Bytes;
using testing::RandomSplit;
using testing::Transcript;
using testing::Validate;

constexpr absl::string_view kDoc =
    R"({"a": [1, -2.5e+3, "x\"y", true, false, null, {"b~c/d": {}}], )"
    R"("": [], "u": "\u00e9\ud83d\ude00é"} )";

TEST(JsonTokenizer, ReportsEveryByteInOrder) {
  std::string joined;
  JsonTokenizer tok;
  const auto sink = [&](const JsonToken& t) {
    joined.append(t.raw.data(), t.raw.size());
    return absl::OkStatus();
  };
  ASSERT_TRUE(tok.Feed(kDoc, sink).ok());
  ASSERT_TRUE(tok.Finish(sink).ok());
  EXPECT_EQ(joined, kDoc);
}

TEST(JsonTokenizer, PointersAndKeys) {
  const std::string t = Transcript({kDoc});
  EXPECT_NE(t.find("|1|/a/0||"), std::string::npos) << t;
  EXPECT_NE(t.find("|-2.5e+3|/a/1||"), std::string::npos) << t;
  EXPECT_NE(t.find("|\"x\\\"y\"|/a/2||"), std::string::npos) << t;
  EXPECT_NE(t.find("|\"b~c/d\"|/a/6/b~0c~1d|b~c/d|"), std::string::npos) << t;
  EXPECT_NE(t.find("|[|/||"), std::string::npos) << t;  // key "" -> pointer "/"
  EXPECT_EQ(t.find("error"), std::string::npos) << t;
}

TEST(JsonTokenizer, OneByteAtATimeAndRandomSplitsAgree) {
  const std::string whole = Transcript({kDoc});
  EXPECT_EQ(Transcript(Bytes(kDoc)), whole);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    EXPECT_EQ(Transcript(RandomSplit(kDoc, seed)), whole) << seed;
  }
}

TEST(JsonTokenizer, TopLevelScalars) {
  for (absl::string_view ok : {"0", "-0", "1.5", "1e5", "1E-5", "\"s\"", "true", "false", "null",
                               " 12 ", "[]", "{}", "[[[]]]"}) {
    EXPECT_TRUE(Validate(ok).ok()) << ok << ": " << Validate(ok);
    EXPECT_EQ(Transcript(Bytes(ok)), Transcript({ok})) << ok;
  }
}

TEST(JsonTokenizer, Refusals) {
  struct Case {
    absl::string_view in;
    absl::string_view error;
  };
  const Case cases[] = {
      {"", "empty input"},
      {"   ", "empty input"},
      {"[1,]", "trailing comma"},
      {"{\"a\":1,}", "trailing comma"},
      {"01", "invalid number 01"},
      {"-", "invalid number"},
      {"1.", "invalid number"},
      {".5", "unexpected character"},
      {"+1", "unexpected character"},
      {"1e", "invalid number"},
      {"NaN", "unexpected character"},
      {"Infinity", "unexpected character"},
      {"-Infinity", "invalid number"},
      {"nul", "invalid literal"},
      {"True", "unexpected character"},
      {"truex", "invalid literal"},
      {"// c\n1", "comments"},
      {"[1] /* c */", "data after the top-level value"},
      {"1 2", "data after the top-level value"},
      {"{} x", "data after the top-level value"},
      {"\"a\nb\"", "control character 0x0a"},
      {"\"\t\"", "control character 0x09"},
      {"\"\\x\"", "invalid escape"},
      {"\"\\u12\"", "invalid \\u escape"},
      {"\"\\ud800\"", "lone high surrogate"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\\ud800\\u0041\"", "lone high surrogate"},
      {"\"\xff\"", "invalid utf-8"},
      {"\"\xc0\xaf\"", "invalid utf-8"},
      {"\"\xed\xa0\x80\"", "invalid utf-8"},
      {"\"\xe2\x82\"", "invalid utf-8"},
      {"\"abc", "end of input inside a string"},
      {"{\"ab", "end of input inside a member name"},
      {"[1", "unexpected end of input"},
      {"{\"a\"}", "expected ':'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{1:2}", "expected a member name"},
      {"[1 2]", "expected ','"},
      {"[1}", "unbalanced '}'"},
      {"{\"a\":1]", "unbalanced ']'"},
      {"]", "where a value belongs"},
      {"'a'", "unexpected character 0x27"},
  };
  for (const Case& c : cases) {
    const std::string t = Transcript({c.in});
    EXPECT_NE(t.find(absl::StrCat("error: json: offset ")), std::string::npos) << c.in;
    EXPECT_NE(t.find(std::string(c.error)), std::string::npos) << c.in << " -> " << t;
    EXPECT_EQ(Transcript(Bytes(c.in)), t) << c.in;
  }
}

TEST(JsonTokenizer, DepthLimit) {
  const std::string ok = std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']');
  EXPECT_TRUE(Validate(ok).ok());
  const std::string deep = std::string(kMaxDepth + 1, '[') + std::string(kMaxDepth + 1, ']');
  EXPECT_NE(Validate(deep).message().find("nesting deeper than 128"), std::string::npos);
}

TEST(JsonTokenizer, TokenLimitHoldsHoweverChunked) {
  const std::string ok = "\"" + std::string(kMaxTokenBytes - 2, 'a') + "\"";
  EXPECT_TRUE(Validate(ok).ok());
  const std::string big = "\"" + std::string(kMaxTokenBytes - 1, 'a') + "\"";
  EXPECT_NE(Validate(big).message().find("token longer than"), std::string::npos);
  EXPECT_EQ(Transcript(RandomSplit(big, 1)).substr(0, 40), Transcript({big}).substr(0, 40));
  // A number cut by chunk boundaries is buffered; nothing else stays.
  JsonTokenizer tok;
  const auto sink = [](const JsonToken&) { return absl::OkStatus(); };
  ASSERT_TRUE(tok.Feed("[123", sink).ok());
  EXPECT_EQ(tok.buffered_bytes(), 3u);
  ASSERT_TRUE(tok.Feed("45]", sink).ok());
  EXPECT_EQ(tok.buffered_bytes(), 0u);
  EXPECT_TRUE(tok.Finish(sink).ok());
}

TEST(JsonTokenizer, DuplicateKeysOnlyWhenAsked) {
  EXPECT_TRUE(Validate(R"({"a":1,"a":2})").ok());
  JsonTokenizer strict(JsonTokenizer::Options{.refuse_duplicate_keys = true});
  const auto sink = [](const JsonToken&) { return absl::OkStatus(); };
  // "\u0061" decodes to "a": duplicates are compared decoded.
  const absl::Status st = strict.Feed(R"({"a":1,"b":{"a":3},"\u0061":2})", sink);
  EXPECT_NE(st.message().find("duplicate key \"\\u0061\""), std::string::npos) << st;
  EXPECT_EQ(strict.Finish(sink), st);  // errors stick
}

TEST(JsonTokenizer, SinkErrorStops) {
  JsonTokenizer tok;
  const auto sink = [](const JsonToken& t) {
    return t.type == JsonTokenType::kNumber ? absl::CancelledError("stop") : absl::OkStatus();
  };
  EXPECT_EQ(tok.Feed("[1]", sink).code(), absl::StatusCode::kCancelled);
}

TEST(DecodeJsonString, Escapes) {
  std::string out;
  ASSERT_TRUE(DecodeJsonString(R"("a\"\\\/\b\f\n\r\t\u0034\u00e9\ud83d\ude00")", &out).ok());
  EXPECT_EQ(out, "a\"\\/\b\f\n\r\t4\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_FALSE(DecodeJsonString("abc", &out).ok());
}

TEST(IsJsonNumber, Grammar) {
  for (absl::string_view ok : {"0", "-0", "10", "0.0", "1e1", "1E+1", "-1.25e-10"}) {
    EXPECT_TRUE(IsJsonNumber(ok)) << ok;
  }
  for (absl::string_view bad : {"", "-", "00", "01", "1.", ".1", "1e", "1e+", "--1", "1-"}) {
    EXPECT_FALSE(IsJsonNumber(bad)) << bad;
  }
}

}  // namespace
}  // namespace interlock::codec::json
