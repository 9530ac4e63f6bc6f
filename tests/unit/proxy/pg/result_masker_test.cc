// ResultMasker: DataRow and CopyData rewriting for masked statements, with column sources
// from the catalog, our own Describe before a masked Execute, binary formats, and the
// response bookkeeping (errors skip to Sync). Pure: messages in, verdicts out.
#include "userspace/proxy/pg/result_masker.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/proxy/pg/pg_messages_util.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = codec::pg;
using ::testing::HasSubstr;

constexpr uint32_t kCustomers = 16400;

v1::MaskProfile Profile() {
  v1::MaskProfile p;
  p.set_name("pii");
  auto* c = p.add_columns();
  c->set_column("public.customers.ssn");
  c->mutable_mask()->set_style(v1::MASK_STYLE_REDACT);
  auto* n = p.add_columns();
  n->set_column("balance");
  n->mutable_mask()->set_style(v1::MASK_STYLE_REDACT);
  auto* d = p.add_detectors();
  d->set_detector(v1::DETECTOR_CARD);
  d->mutable_mask()->set_style(v1::MASK_STYLE_PARTIAL);
  return p;
}

std::string Body(const std::string& m) { return m.substr(5); }

using testing::Field;
using testing::Row;
using testing::Values;

class ResultMaskerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = mask::Masker::Create(Profile(), std::string(32, 'k'));
    ASSERT_TRUE(m.ok()) << m.status();
    masker_ = std::move(*m);
  }
  ResultMasker::Out Back(const std::string& m) { return rm_.OnBackend(m[0], m); }
  std::string Front(const std::string& m, bool masked) {
    return rm_.OnFrontend(m[0], Body(m), masked ? masker_ : nullptr, "pii");
  }
  std::string RowDesc(std::vector<cpg::FieldDescription> fields) {
    cpg::RowDescription rd;
    rd.fields = std::move(fields);
    return cpg::Encode(rd);
  }

  bool cached_ = true;
  int lookups_ = 0;
  std::shared_ptr<const mask::Masker> masker_;
  ResultMasker rm_{[this](uint32_t oid, int16_t attnum) -> std::optional<ColumnSource> {
    ++lookups_;
    if (!cached_) return std::nullopt;
    if (oid == kCustomers && attnum == 3) return ColumnSource{"public", "customers", "ssn"};
    return ColumnSource{"public", "customers", absl::StrCat("col", attnum)};
  }};
};

TEST_F(ResultMaskerTest, SimpleQueryColumnRuleFollowsTheSourceThroughAnAlias) {
  EXPECT_EQ(Front(cpg::EncodeQuery("SELECT id, ssn AS x, note FROM customers"), true), "");
  EXPECT_EQ(Back(RowDesc({Field("id", kCustomers, 1, 23), Field("x", kCustomers, 3, 25), Field("note", kCustomers, 4, 25)}))
                .verdict,
            ResultMasker::Verdict::kPass);
  EXPECT_TRUE(rm_.active());
  auto out = Back(Row({"1", "078-05-1120", "card 4111 1111 1111 1111 on file"}));
  ASSERT_EQ(out.verdict, ResultMasker::Verdict::kReplace);
  auto v = Values(out.view);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(*v[0], "1");
  EXPECT_EQ(*v[1], "[REDACTED]");
  EXPECT_EQ(*v[2], "card **** **** **** 1111 on file");
  // A NULL stays NULL: nothing else to mask, the row passes as it is.
  EXPECT_EQ(Back(Row({"2", std::nullopt, "nothing here"})).verdict, ResultMasker::Verdict::kPass);
  Back(cpg::Encode(cpg::CommandComplete{"SELECT 2"}));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  EXPECT_FALSE(rm_.active());
  auto reports = rm_.TakeReports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].rows, 2u);
  EXPECT_EQ(reports[0].values_masked, 2u);
  EXPECT_THAT(reports[0].masked_columns, ::testing::ElementsAre("public.customers.ssn as x"));
  EXPECT_EQ(reports[0].counts.detectors.at("card"), 1u);
}

TEST_F(ResultMaskerTest, UnmaskedStatementsPassUntouched) {
  Front(cpg::EncodeQuery("SELECT ssn FROM customers"), false);
  Back(RowDesc({Field("ssn", kCustomers, 3, 25)}));
  EXPECT_FALSE(rm_.active());
  EXPECT_EQ(Back(Row({"078-05-1120"})).verdict, ResultMasker::Verdict::kPass);
  EXPECT_EQ(lookups_, 0);
}

TEST_F(ResultMaskerTest, UnknownTablesAskForTheCatalogFirst) {
  cached_ = false;
  Front(cpg::EncodeQuery("SELECT ssn FROM customers"), true);
  std::string rd = RowDesc({Field("ssn", kCustomers, 3, 25), Field("n", 0, 0, 25)});
  auto need = Back(rd);
  ASSERT_EQ(need.verdict, ResultMasker::Verdict::kNeedCatalog);
  EXPECT_THAT(need.oids, ::testing::ElementsAre(kCustomers));
  cached_ = true;  // the session resolved them; the same message again
  EXPECT_EQ(Back(rd).verdict, ResultMasker::Verdict::kPass);
  EXPECT_EQ(*Values(Back(Row({"078-05-1120", "x"})).view)[0], "[REDACTED]");
}

TEST_F(ResultMaskerTest, MaskedExecuteGetsOurDescribeWithBoundFormats) {
  cpg::Bind b;
  b.result_formats = {1};  // all binary
  Front(cpg::Encode(b), true);
  std::string prefix = Front(cpg::Encode(cpg::Execute{}), true);
  auto d = cpg::ParseDescribe(Body(prefix));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind, cpg::TargetKind::kPortal);
  Front(cpg::Encode(cpg::Sync{}), false);
  Back(cpg::Encode(cpg::BindComplete{}));
  // The answer to our Describe is consumed.
  EXPECT_EQ(Back(RowDesc({Field("ssn", kCustomers, 3, 25, 1), Field("balance", kCustomers, 5, 1700, 1),
                          Field("id", kCustomers, 1, 23, 1)}))
                .verdict,
            ResultMasker::Verdict::kDrop);
  // Binary: text-like values are masked as text; a non-text type under a column rule is
  // NULLed; other binary values are left alone.
  std::string int4("\x00\x00\x00\x07", 4);
  auto v = Values(Back(Row({"078-05-1120", std::string("\x00\x02\x00\x00\x00\x00\x00\x00", 8), int4})).view);
  EXPECT_EQ(*v[0], "[REDACTED]");
  EXPECT_FALSE(v[1].has_value());
  EXPECT_EQ(*v[2], int4);
  Back(cpg::Encode(cpg::CommandComplete{"SELECT 1"}));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  EXPECT_EQ(rm_.TakeReports().size(), 1u);
}

TEST_F(ResultMaskerTest, AnErrorSkipsTheRestOfTheBatch) {
  Front(cpg::Encode(cpg::Execute{}), true);  // Describe + Execute queued
  Front(cpg::Encode(cpg::Sync{}), false);
  Back(cpg::EncodeError("ERROR", "34000", "portal \"\" does not exist"));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  EXPECT_FALSE(rm_.active());
  // The next simple query is planned afresh.
  Front(cpg::EncodeQuery("SELECT ssn FROM customers"), true);
  Back(RowDesc({Field("ssn", kCustomers, 3, 25)}));
  EXPECT_EQ(*Values(Back(Row({"078-05-1120"})).view)[0], "[REDACTED]");
}

TEST_F(ResultMaskerTest, CopyTextLinesGoThroughTheDetectorsAndBinaryCopyFailsClosed) {
  Front(cpg::EncodeQuery("COPY customers TO STDOUT"), true);
  cpg::CopyOutResponse text;
  EXPECT_EQ(Back(cpg::Encode(text)).verdict, ResultMasker::Verdict::kPass);
  cpg::CopyData line;
  std::string l = "1\t4111111111111111\tnote\n";
  line.data = l;
  auto out = Back(cpg::Encode(line));
  ASSERT_EQ(out.verdict, ResultMasker::Verdict::kReplace);
  EXPECT_THAT(std::string(out.view), HasSubstr("************1111\tnote\n"));
  Back(cpg::Encode(cpg::CopyDone{}));
  Back(cpg::Encode(cpg::CommandComplete{"COPY 1"}));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  Front(cpg::EncodeQuery("COPY customers TO STDOUT (FORMAT binary)"), true);
  cpg::CopyOutResponse binary;
  binary.format = 1;
  auto fatal = Back(cpg::Encode(binary));
  EXPECT_EQ(fatal.verdict, ResultMasker::Verdict::kFatal);
  EXPECT_THAT(fatal.error, HasSubstr("binary COPY"));
}

TEST_F(ResultMaskerTest, MalformedRowsAreFatalNotCrashes) {
  Front(cpg::EncodeQuery("SELECT ssn FROM customers"), true);
  Back(RowDesc({Field("ssn", kCustomers, 3, 25)}));
  for (std::string body : {std::string(""), std::string("\x00\x01", 2), std::string("\x00\x01\x00\x00\x00\x09" "ab", 8),
                           std::string("\x00\x01\xff\xff\xff\xfe", 6)}) {
    std::string m = cpg::EncodeMessage('D', body);
    EXPECT_EQ(rm_.OnBackend('D', m).verdict, ResultMasker::Verdict::kFatal);
  }
}

}  // namespace
}  // namespace interlock::proxy::pg
