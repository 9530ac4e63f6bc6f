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

TEST(ExtractJsonFields, UnjudgeableBodies) {
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a","model":"b"})", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a",})", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields("", {"/model"}).ok());
  EXPECT_FALSE(ExtractJsonFields(R"({"model":"a"} {})", {"/model"}).ok());
}

}  // namespace
}  // namespace interlock::codec::json
