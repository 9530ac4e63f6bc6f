#include "userspace/config/yaml_to_proto.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testdata/yaml_test.pb.h"

namespace interlock::config {
namespace {

using ::interlock::test::Outer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Parses `yaml` as t.yaml into an Outer; returns the status.
absl::Status Parse(const std::string& yaml, Outer* out, SourceMap* lines = nullptr) {
  return YamlToProto(yaml, "t.yaml", out, lines);
}

std::string ErrorOf(const std::string& yaml) {
  Outer out;
  absl::Status st = Parse(yaml, &out);
  EXPECT_FALSE(st.ok()) << yaml;
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  return std::string(st.message());
}

TEST(YamlToProto, CoreSchemaScalars) {
  Outer out;
  absl::Status st = Parse(R"(
name: plain text
big: 9007199254740993
ratio: .5
flag: True
color: COLOR_BLUE
numbers: [0x1f, 0o17, +7, -3, 007]
count: "42"
small: 1.
)",
                          &out);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(out.name(), "plain text");
  EXPECT_EQ(out.big(), 9007199254740993);
  EXPECT_DOUBLE_EQ(out.ratio(), 0.5);
  EXPECT_TRUE(out.flag());
  EXPECT_EQ(out.color(), test::COLOR_BLUE);
  EXPECT_THAT(out.numbers(), testing::ElementsAre(31, 15, 7, -3, 7));
  EXPECT_EQ(out.count(), 42u);
  EXPECT_FLOAT_EQ(out.small(), 1.0f);
}

TEST(YamlToProto, InfinityAndNan) {
  Outer out;
  ASSERT_TRUE(Parse("ratio: -.inf\nsmall: .NaN\n", &out).ok());
  EXPECT_TRUE(std::isinf(out.ratio()));
  EXPECT_LT(out.ratio(), 0);
  EXPECT_TRUE(std::isnan(out.small()));
}

TEST(YamlToProto, PlainScalarForAStringFieldKeepsItsText) {
  Outer out;
  absl::Status st = Parse("name: 1.10\nwords: [0x10, true, 007, 1e3]\n", &out);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(out.name(), "1.10");
  EXPECT_THAT(out.words(), testing::ElementsAre("0x10", "true", "007", "1e3"));
  ASSERT_TRUE(Parse("maybe_name: 2024\n", &out).ok());
  EXPECT_EQ(out.maybe_name().value(), "2024");
}

TEST(YamlToProto, QuotedAndBlockScalarsAreStrings) {
  Outer out;
  absl::Status st = Parse("name: |\n  two\n  lines\ntext: 'true'\n", &out);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(out.name(), "two\nlines\n");
  EXPECT_EQ(out.text(), "true");
  // A quoted number is a JSON string; protobuf's JSON mapping accepts it for a number.
  ASSERT_TRUE(Parse("count: '7'\n", &out).ok());
  EXPECT_EQ(out.count(), 7u);
}

TEST(YamlToProto, NullLeavesTheFieldUnset) {
  Outer out;
  ASSERT_TRUE(Parse("name: ~\ncount:\ninner: null\n", &out).ok());
  EXPECT_EQ(out.name(), "");
  EXPECT_FALSE(out.has_inner());
}

TEST(YamlToProto, EmptyDocumentIsAnEmptyMessage) {
  Outer out;
  out.set_name("stale");
  SourceMap lines;
  ASSERT_TRUE(Parse("# nothing here\n", &out, &lines).ok());
  EXPECT_EQ(out.ByteSizeLong(), 0u);
  EXPECT_EQ(lines.file_name(), "t.yaml");
}

TEST(YamlToProto, CamelCaseKeysAreAccepted) {
  Outer out;
  SourceMap lines;
  ASSERT_TRUE(Parse("byName:\n  x: {n: 1}\n", &out, &lines).ok());
  EXPECT_EQ(out.by_name().at("x").n(), 1);
  EXPECT_TRUE(lines.Contains("by_name"));
}

TEST(YamlToProto, NestedMessagesListsMapsAndWellKnownTypes) {
  Outer out;
  absl::Status st = Parse(R"(
inners:
  - n: 1
    s: one
  - {n: 2}
by_name:
  a.b: {n: 3}
labels:
  7: seven
wait: 1.5s
extra:
  anything: [1, {goes: here}]
  nested: {deep: true}
)",
                          &out);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(out.inners_size(), 2);
  EXPECT_EQ(out.inners(0).s(), "one");
  EXPECT_EQ(out.inners(1).n(), 2);
  EXPECT_EQ(out.by_name().at("a.b").n(), 3);
  EXPECT_EQ(out.labels().at(7), "seven");
  EXPECT_EQ(out.wait().seconds(), 1);
  EXPECT_EQ(out.wait().nanos(), 500000000);
  EXPECT_TRUE(out.extra().fields().at("nested").struct_value().fields().at("deep").bool_value());
}

TEST(YamlToProto, SourceMapRecordsEveryPath) {
  Outer out;
  SourceMap lines;
  ASSERT_TRUE(Parse(R"(name: x
inners:
  - n: 1

  - n: 2
    s: two
by_name:
  "k 1":
    n: 5
)",
                    &out, &lines)
                  .ok());
  EXPECT_EQ(lines.file_name(), "t.yaml");
  EXPECT_EQ(lines.Line("name"), 1);
  EXPECT_EQ(lines.Line("inners"), 2);
  EXPECT_EQ(lines.Line("inners[0]"), 3);
  EXPECT_EQ(lines.Line("inners[0].n"), 3);
  EXPECT_EQ(lines.Line("inners[1]"), 5);
  EXPECT_EQ(lines.Line("inners[1].s"), 6);
  EXPECT_EQ(lines.Line(R"(by_name["k 1"])"), 8);
  EXPECT_EQ(lines.Line(R"(by_name["k 1"].n)"), 9);
  // A field that was not written is placed at its nearest written ancestor.
  EXPECT_FALSE(lines.Contains("inners[0].s"));
  EXPECT_EQ(lines.Line("inners[0].s"), 3);
  EXPECT_EQ(lines.Line("inner.n"), 1);  // root
  EXPECT_EQ(lines.Where("inners[1].s"), "t.yaml:6: inners[1].s");
}

TEST(ParentPath, Segments) {
  EXPECT_EQ(ParentPath("a.b[2]"), "a.b");
  EXPECT_EQ(ParentPath("a.b"), "a");
  EXPECT_EQ(ParentPath("a"), "");
  EXPECT_EQ(ParentPath(""), "");
  EXPECT_EQ(ParentPath(R"(m["x.y[1]"].n)"), R"(m["x.y[1]"])");
  EXPECT_EQ(ParentPath(R"(m["x.y[1]"])"), "m");
  EXPECT_EQ(ParentPath(R"(m["q\"]"])"), "m");
}

TEST(YamlToProto, SyntaxErrorNamesTheLine) {
  std::string msg = ErrorOf("name: x\nnumbers: [1, 2\ncount: 3\n");
  EXPECT_THAT(msg, HasSubstr("t.yaml:3: invalid YAML"));
  msg = ErrorOf("name: x\ninner:\n  n: 1\n s: bad indent\n");
  EXPECT_THAT(msg, HasSubstr("t.yaml:4: invalid YAML"));
}

TEST(YamlToProto, UnknownFieldNamesLineAndPathWithAHint) {
  std::string msg = ErrorOf("name: x\ninners:\n  - n: 1\n  - nn: 2\n");
  EXPECT_EQ(msg, "t.yaml:4: inners[1].nn: unknown field (did you mean \"n\"?)");
  EXPECT_EQ(ErrorOf("zzzzzz: 1\n"), "t.yaml:1: zzzzzz: unknown field");
}

TEST(YamlToProto, EveryUnknownFieldIsReported) {
  std::string msg = ErrorOf("nam: x\ninner:\n  m: 1\ncolour: COLOR_RED\n");
  EXPECT_THAT(msg, HasSubstr("t.yaml:1: nam: unknown field (did you mean \"name\"?)"));
  EXPECT_THAT(msg, HasSubstr("t.yaml:3: inner.m: unknown field"));
  EXPECT_THAT(msg, HasSubstr("t.yaml:4: colour: unknown field (did you mean \"color\"?)"));
}

TEST(YamlToProto, WrongTypeNamesLineAndPath) {
  EXPECT_EQ(ErrorOf("name: x\n\ninners:\n  - n: 1\n  - n: abc\n"),
            "t.yaml:5: inners[1].n: invalid value \"abc\" for type TYPE_INT32");
  EXPECT_EQ(ErrorOf("count: -1\n"), "t.yaml:1: count: invalid value -1 for type TYPE_UINT32");
  EXPECT_EQ(ErrorOf("count: 4294967296\n"),
            "t.yaml:1: count: invalid value 4294967296 for type TYPE_UINT32");
  EXPECT_EQ(ErrorOf("count: 0x1ffffffffffffffff\n"),
            "t.yaml:1: count: invalid value \"0x1ffffffffffffffff\" for type TYPE_UINT32");
}

TEST(YamlToProto, ShapeMismatches) {
  EXPECT_THAT(ErrorOf("\ninner: 5\n"), HasSubstr("t.yaml:2: inner: invalid value 5 for type "
                                                 "interlock.test.Inner"));
  EXPECT_EQ(ErrorOf("inner:\n  s: [a]\n"),
            "t.yaml:2: inner.s: expected a single value, got a list");
  EXPECT_EQ(ErrorOf("inner:\n  s: {a: 1}\n"),
            "t.yaml:2: inner.s: expected a single value, got a mapping");
}

TEST(YamlToProto, ErrorsInsideMapsUseTheKey) {
  EXPECT_EQ(ErrorOf("by_name:\n  ok: {n: 1}\n  a.b:\n    n: x\n"),
            "t.yaml:4: by_name[\"a.b\"].n: invalid value \"x\" for type TYPE_INT32");
  EXPECT_EQ(ErrorOf("labels:\n  1: one\n  two: 2\n"),
            "t.yaml:3: labels[\"two\"]: invalid value \"two\" for type TYPE_INT32");
}

TEST(YamlToProto, UnknownEnumNameListsTheChoices) {
  EXPECT_EQ(ErrorOf("color: red\n"),
            "t.yaml:1: color: unknown value \"red\" for enum interlock.test.Color (expected "
            "one of COLOR_RED, COLOR_BLUE)");
}

TEST(YamlToProto, DuplicateKeysAndOneofConflicts) {
  std::string msg = ErrorOf("name: a\ncount: 1\nname: b\ntext: t\nnumber: 5\n");
  EXPECT_THAT(msg, HasSubstr("t.yaml:3: name: duplicate field (first at line 1)"));
  EXPECT_THAT(msg, HasSubstr("t.yaml:5: number: only one of the choice fields may be set, and "
                             "\"text\" is set at line 4"));
  // The same field under its JSON name is a duplicate too.
  EXPECT_THAT(ErrorOf("by_name: {}\nbyName: {}\n"), HasSubstr("t.yaml:2: by_name: duplicate"));
  EXPECT_THAT(ErrorOf("by_name:\n  k: {}\n  k: {}\n"),
              HasSubstr("t.yaml:3: by_name[\"k\"]: duplicate key (first at line 2)"));
}

TEST(YamlToProto, StructureErrorsAndValueErrorsAreReportedTogether) {
  std::string msg = ErrorOf("nme: x\ncount: abc\n");
  EXPECT_EQ(msg,
            "t.yaml:1: nme: unknown field (did you mean \"name\"?)\n"
            "t.yaml:2: count: invalid value \"abc\" for type TYPE_UINT32");
}

TEST(YamlToProto, TopLevelMustBeAMapping) {
  EXPECT_THAT(ErrorOf("- a\n- b\n"), HasSubstr("t.yaml:1: the top level must be a mapping"));
  EXPECT_THAT(ErrorOf("just text\n"), HasSubstr("the top level must be a mapping"));
}

TEST(YamlToProto, OneDocumentOnly) {
  EXPECT_THAT(ErrorOf("name: a\n---\nname: b\n"),
              HasSubstr("t.yaml:3: only one YAML document is allowed"));
}

TEST(YamlToProto, KeysMustBeScalars) {
  EXPECT_THAT(ErrorOf("? [a, b]\n: 1\n"), HasSubstr("mapping keys must be strings"));
}

TEST(YamlToProto, Tags) {
  Outer out;
  ASSERT_TRUE(Parse("name: !!str 5\ncount: !!int 0x10\nratio: !!float 2\n", &out).ok());
  EXPECT_EQ(out.name(), "5");
  EXPECT_EQ(out.count(), 16u);
  EXPECT_DOUBLE_EQ(out.ratio(), 2.0);
  EXPECT_EQ(ErrorOf("count: !!int abc\n"), "t.yaml:1: count: \"abc\" is not a valid !!int value");
  EXPECT_EQ(ErrorOf("name: !secret x\n"), "t.yaml:1: name: unsupported tag !secret");
  EXPECT_EQ(ErrorOf("name: !!binary aGk=\n"), "t.yaml:1: name: unsupported tag !!binary");
}

TEST(YamlToProto, AliasesExpandButBombsAndCyclesAreStopped) {
  Outer out;
  ASSERT_TRUE(Parse("inner: &i {n: 4}\ninners: [*i, *i]\n", &out).ok());
  EXPECT_EQ(out.inners(1).n(), 4);

  std::string bomb =
      "extra:\n  a: &a [\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]\n";
  std::string prev = "a";
  for (char c = 'b'; c <= 'p'; ++c) {
    bomb += "  " + std::string(1, c) + ": &" + std::string(1, c) + " [*" + prev + ", *" + prev +
            ", *" + prev + ", *" + prev + "]\n";
    prev = std::string(1, c);
  }
  EXPECT_THAT(ErrorOf(bomb), HasSubstr("t.yaml: the document expands to more than"));

  EXPECT_THAT(ErrorOf("extra:\n  x: &a [*a]\n"), HasSubstr("nested deeper than 64 levels"));
  // Two self-references would branch 2^64 times: the walk must stop at the first.
  EXPECT_THAT(ErrorOf("extra:\n  x: &a [*a, *a]\n"),
              AllOf(HasSubstr("t.yaml:2: extra.x"), HasSubstr("nested deeper than 64 levels")));
}

TEST(YamlToProto, OversizedInputIsRejected) {
  std::string big = "name: " + std::string(kMaxYamlBytes, 'x') + "\n";
  EXPECT_THAT(ErrorOf(big), HasSubstr("larger than the limit"));
}

TEST(YamlToProto, ControlCharactersAreEscapedInJson) {
  Outer out;
  ASSERT_TRUE(Parse("name: \"a\\tb\\\"c\\\\d\\x01\"\n", &out).ok());
  EXPECT_EQ(out.name(), "a\tb\"c\\d\x01");
}

}  // namespace
}  // namespace interlock::config
