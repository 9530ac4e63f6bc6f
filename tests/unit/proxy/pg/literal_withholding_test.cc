// WithholdLiterals: frontend messages in, what the recording keeps of them out. Every case
// decodes the result with the codec, so a rewrite that broke framing fails here too.
#include "userspace/proxy/pg/literal_withholding.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = ::interlock::codec::pg;
namespace fe = ::interlock::codec::pg::frontend;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kCard = "4111111111111111";

absl::string_view Body(const std::string& m) { return absl::string_view(m).substr(cpg::kMessageHeaderBytes); }

// The message is one whole frame of `type` whose length word matches its size.
void ExpectOneFrame(const std::string& m, char type) {
  auto f = cpg::PeekFrame(m, cpg::kMaxMessageBytes);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->type, type);
  EXPECT_EQ((*f)->total_bytes, m.size());
}

TEST(WithholdLiterals, QueryTextKeepsItsShapeWithLiteralsAsPlaceholders) {
  const std::string q = cpg::EncodeQuery(absl::StrCat("SELECT name FROM customers WHERE card = '", kCard,
                                                      "' AND id > 42"));
  auto shown = WithholdLiterals(fe::kQuery, q, true);
  ASSERT_TRUE(shown.has_value());
  ExpectOneFrame(*shown, fe::kQuery);
  auto parsed = cpg::ParseQuery(Body(*shown));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->query, "SELECT name FROM customers WHERE card = $1 AND id > $2");
}

TEST(WithholdLiterals, QueryTextIsReadWithTheSessionsStringSyntax) {
  // With standard_conforming_strings off, \' does not end the string: the card is inside it.
  const std::string q = cpg::EncodeQuery(absl::StrCat("SELECT 'a\\' ", kCard, "'"));
  auto shown = WithholdLiterals(fe::kQuery, q, /*standard_conforming_strings=*/false);
  ASSERT_TRUE(shown.has_value());
  EXPECT_THAT(*shown, Not(HasSubstr(kCard)));
  EXPECT_THAT(*shown, HasSubstr("SELECT $1"));
}

TEST(WithholdLiterals, ParseTextIsNormalizedAndItsTypesKept) {
  cpg::Parse p;
  p.statement = "s1";
  p.query = absl::StrCat("UPDATE cards SET note = 'x' WHERE pan = '", kCard, "' AND id = $1");
  p.param_type_oids = {23};
  auto shown = WithholdLiterals(fe::kParse, cpg::Encode(p), true);
  ASSERT_TRUE(shown.has_value());
  ExpectOneFrame(*shown, fe::kParse);
  auto parsed = cpg::ParseParse(Body(*shown));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->statement, "s1");
  EXPECT_EQ(parsed->query, "UPDATE cards SET note = $2 WHERE pan = $3 AND id = $1");
  EXPECT_EQ(parsed->param_type_oids, std::vector<uint32_t>{23});
}

TEST(WithholdLiterals, BindValuesAreEmptiedNullsAndFormatsKept) {
  cpg::Bind b;
  b.portal = "p";
  b.statement = "s1";
  b.params = {kCard, std::nullopt, absl::string_view("\x00\x00\x00\x2a", 4)};
  b.param_formats = {0, 0, 1};
  b.result_formats = {1};
  auto shown = WithholdLiterals(fe::kBind, cpg::Encode(b), true);
  ASSERT_TRUE(shown.has_value());
  ExpectOneFrame(*shown, fe::kBind);
  auto parsed = cpg::ParseBind(Body(*shown));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->portal, "p");
  EXPECT_EQ(parsed->statement, "s1");
  EXPECT_EQ(parsed->param_formats, b.param_formats);
  EXPECT_EQ(parsed->result_formats, b.result_formats);
  ASSERT_EQ(parsed->params.size(), 3u);
  EXPECT_EQ(parsed->params[0], std::optional<absl::string_view>(""));
  EXPECT_EQ(parsed->params[1], std::nullopt);
  EXPECT_EQ(parsed->params[2], std::optional<absl::string_view>(""));
  EXPECT_THAT(*shown, Not(HasSubstr(kCard)));
}

TEST(WithholdLiterals, FunctionCallArgumentsAreEmptied) {
  cpg::FunctionCall f;
  f.function_oid = 2077;  // set_config: what runs is still visible
  f.args = {absl::string_view("application_name"), kCard, std::nullopt};
  auto shown = WithholdLiterals(fe::kFunctionCall, cpg::Encode(f), true);
  ASSERT_TRUE(shown.has_value());
  auto parsed = cpg::ParseFunctionCall(Body(*shown));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->function_oid, 2077u);
  ASSERT_EQ(parsed->args.size(), 3u);
  EXPECT_EQ(parsed->args[1], std::optional<absl::string_view>(""));
  EXPECT_EQ(parsed->args[2], std::nullopt);
  EXPECT_THAT(*shown, Not(HasSubstr(kCard)));
}

TEST(WithholdLiterals, CopyDataIsEmptied) {
  auto shown = WithholdLiterals(fe::kCopyData, cpg::Encode(cpg::CopyData{absl::StrCat("1\t", kCard, "\n")}), true);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ(*shown, cpg::Encode(cpg::CopyData{}));
}

TEST(WithholdLiterals, MessagesWithoutValuesAreRecordedAsTheyAre) {
  for (const std::string& m : {cpg::Encode(cpg::Sync{}), cpg::Encode(cpg::Execute{"p", 0}),
                               cpg::Encode(cpg::Describe{cpg::TargetKind::kPortal, "p"}),
                               cpg::Encode(cpg::Close{cpg::TargetKind::kStatement, "s1"}),
                               cpg::EncodeTerminate()}) {
    EXPECT_EQ(WithholdLiterals(m[0], m, true), std::nullopt) << m[0];
  }
}

TEST(WithholdLiterals, AMessageThatDoesNotParseIsRecordedEmptyNeverInClear) {
  // A Bind whose value length runs past the end: the session refuses it, the recording
  // must not hold its bytes either.
  std::string bad = cpg::EncodeMessage(fe::kBind, absl::StrCat(std::string("\0\0\0\0\0\1\0\0\0\x7f", 10), kCard));
  auto shown = WithholdLiterals(fe::kBind, bad, true);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ(*shown, cpg::EncodeMessage(fe::kBind, ""));
  std::string bad_query = cpg::EncodeMessage(fe::kQuery, kCard);  // no terminating NUL
  EXPECT_EQ(WithholdLiterals(fe::kQuery, bad_query, true), cpg::EncodeMessage(fe::kQuery, ""));
}

TEST(WithholdLiterals, UnreadableStatementTextIsDescribedNotShown) {
  const std::string q = cpg::EncodeQuery(absl::StrCat("SELECT '", kCard));  // unterminated
  auto shown = WithholdLiterals(fe::kQuery, q, true);
  ASSERT_TRUE(shown.has_value());
  EXPECT_THAT(*shown, Not(HasSubstr(kCard)));
  EXPECT_THAT(*shown, HasSubstr("unreadable"));
}

}  // namespace
}  // namespace interlock::proxy::pg
