#include "userspace/codec/json/extract.h"

#include "gtest/gtest.h"

namespace interlock::codec::json {
namespace {

TEST(ExtractJsonFields, ValuesByPointer) {
  const auto fields = ExtractJsonFields(
      R"({"model":"gpt\u002d4","n":1.50,"ok":true,"z":null,)"
      R"("tools":[{"name":"sh"}, [1, 2]],"a/b":{"~":"t"}})",
      {"/model", "/n", "/ok", "/z", "/tools/0", "/tools/1", "/tools/0/name", "/a~1b/~0", "/missing",
       "/tools/9"});
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(fields->at("/model"), "gpt-4");
  EXPECT_EQ(fields->at("/n"), "1.50");
  EXPECT_EQ(fields->at("/ok"), "true");
  EXPECT_EQ(fields->at("/z"), "null");
  EXPECT_EQ(fields->at("/tools/0"), R"({"name":"sh"})");
  EXPECT_EQ(fields->at("/tools/1"), "[1, 2]");
  EXPECT_EQ(fields->at("/tools/0/name"), "sh");
  EXPECT_EQ(fields->at("/a~1b/~0"), "t");
  EXPECT_FALSE(fields->contains("/missing"));
  EXPECT_FALSE(fields->contains("/tools/9"));
}

TEST(ExtractJsonFields, RootPointer) {
  const auto fields = ExtractJsonFields(" [1] ", {""});
  ASSERT_TRUE(fields.ok());
  EXPECT_EQ(fields->at(""), "[1]");
}

// Member names are matched as a case-insensitive upstream reads them (Go's encoding/json:
// ASCII case, and "\u017f" (long s) as "s", "\u212a" (Kelvin sign) as "k"); the value is
// reported under the pointer asked for.
TEST(ExtractJsonFields, MemberNamesMatchWhateverTheirCase) {
  for (const char* body : {R"({"Amount": 7})", R"({"AMOUNT": 7})", R"({"\u0061mount": 7})", "{\"amount\": 7}"}) {
    const auto fields = ExtractJsonFields(body, {"/amount"});
    ASSERT_TRUE(fields.ok()) << body << fields.status();
    EXPECT_EQ(fields->at("/amount"), "7") << body;
  }
  const auto nested = ExtractJsonFields(R"({"Payee": {"IBAN": "x"}})", {"/payee/iban", "/Payee"});
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->at("/payee/iban"), "x");
  EXPECT_EQ(nested->at("/Payee"), R"({"IBAN": "x"})");
  // Long s and the Kelvin sign, as Go folds them.
  const auto folded = ExtractJsonFields("{\"\u017fsn\": \"1\", \"\u212aey\": \"2\"}", {"/ssn", "/key"});
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(folded->at("/ssn"), "1");
  EXPECT_EQ(folded->at("/key"), "2");
}

TEST(ExtractJsonFields, UnjudgeableBodies) {
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a","model":"b"})", {"/model"}).ok());
  // Duplicates as a case-insensitive upstream reads them.
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a","MODEL":"b"})", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields(R"({"x": {"ssn":"a","\u017fsn":"b"}})", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a",})", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields("", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a"} {})", {"/model"}).ok());
}

}  // namespace
}  // namespace interlock::codec::json
