// ResultMasker with a session floor: every statement kind's rows (FETCH, RETURNING,
// EXECUTE, COPY TO, a released hold), error and notice fields, notifications, parameter
// statuses, function call results and binary values are masked, whatever the statement's
// own decision; what cannot be masked fails closed. Pure: messages in, verdicts out.
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/proxy/pg/pg_messages_util.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/proxy/pg/result_masker.h"
#include "userspace/sql/classify.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = codec::pg;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint32_t kCustomers = 16400;
constexpr char kSsn[] = "078-05-1120";
constexpr char kCard[] = "4111 1111 1111 1111";

std::shared_ptr<const mask::Masker> Compile(bool column_rules) {
  v1::MaskProfile p;
  p.set_name("pii");
  if (column_rules) {
    auto* c = p.add_columns();
    c->set_column("customers.ssn");
    c->mutable_mask()->set_style(v1::MASK_STYLE_REDACT);
  }
  p.add_detectors()->set_detector(v1::DETECTOR_SSN);
  auto* d = p.add_detectors();
  d->set_detector(v1::DETECTOR_CARD);
  d->mutable_mask()->set_style(v1::MASK_STYLE_PARTIAL);
  auto m = mask::Masker::Create(p, std::string(32, 'k'));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::shared_ptr<const mask::Masker>(std::move(*m)) : nullptr;
}

using testing::Field;
using testing::Row;
using testing::Values;

std::string Be32(uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

class FloorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    floor_ = Compile(true);
    ASSERT_NE(floor_, nullptr);
    rm_.SetFloor(floor_);
  }
  ResultMasker::Out Back(const std::string& m) { return rm_.OnBackend(m[0], m); }
  // What the agent receives for backend message `m`.
  std::string Seen(const std::string& m) {
    ResultMasker::Out o = Back(m);
    EXPECT_NE(o.verdict, ResultMasker::Verdict::kFatal) << o.error;
    return o.verdict == ResultMasker::Verdict::kReplace ? std::string(o.view) : m;
  }
  // A frontend message under the floor (no decision of its own: empty profile name).
  std::string Front(const std::string& m) { return rm_.OnFrontend(m[0], m.substr(5), floor_); }
  std::string RowDesc(std::vector<cpg::FieldDescription> fields) {
    cpg::RowDescription rd;
    rd.fields = std::move(fields);
    return cpg::Encode(rd);
  }
  void Done(const std::string& tag) {
    Back(cpg::Encode(cpg::CommandComplete{tag}));
    Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  }
  // One simple Query returning `ssn` (a traced column) and an expression holding a card.
  void ExpectQueryMasked(const std::string& sql, const std::string& tag) {
    SCOPED_TRACE(sql);
    Front(cpg::EncodeQuery(sql));
    EXPECT_TRUE(rm_.active());
    ASSERT_EQ(Back(RowDesc({Field("ssn", kCustomers, 3, 25), Field("note", 0, 0, 25)})).verdict,
              ResultMasker::Verdict::kPass);
    auto out = Back(Row({kSsn, absl::StrCat("card ", kCard)}));
    ASSERT_EQ(out.verdict, ResultMasker::Verdict::kReplace);
    auto v = Values(out.view);
    EXPECT_EQ(*v[0], "[REDACTED]");
    EXPECT_EQ(*v[1], "card **** **** **** 1111");
    Done(tag);
  }

  std::shared_ptr<const mask::Masker> floor_;
  ResultMasker rm_{[](uint32_t oid, int16_t attnum) -> std::optional<ColumnSource> {
    if (oid == kCustomers && attnum == 3) return ColumnSource{"public", "customers", "ssn"};
    return ColumnSource{"public", "customers", absl::StrCat("col", attnum)};
  }};
};

TEST_F(FloorTest, EveryStatementKindsRowsPassTheFloor) {
  ExpectQueryMasked("FETCH ALL FROM c", "FETCH 1");
  ExpectQueryMasked("UPDATE customers SET note = note WHERE id = 1 RETURNING ssn, note", "UPDATE 1");
  ExpectQueryMasked("DELETE FROM customers WHERE id = 1 RETURNING ssn, note", "DELETE 1");
  ExpectQueryMasked("INSERT INTO customers SELECT * FROM customers RETURNING ssn, note", "INSERT 0 1");
  ExpectQueryMasked("EXECUTE p(1)", "SELECT 1");
  // A statement released after approval is sent like any other: with the floor.
  ExpectQueryMasked("SELECT * FROM customers", "SELECT 1");
  auto reports = rm_.TakeReports();
  ASSERT_EQ(reports.size(), 6u);
  EXPECT_EQ(reports[0].profile, "pii");
  EXPECT_THAT(reports[0].masked_columns, ::testing::ElementsAre("public.customers.ssn"));
}

TEST_F(FloorTest, ExtendedPortalFetchGetsOurDescribe) {
  // An Execute of a cursor's portal (SQL DECLARE, or a Bind): our Describe plans it.
  std::string prefix = Front(cpg::Encode(cpg::Execute{"c", 10}));
  auto d = cpg::ParseDescribe(prefix.substr(5));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->name, "c");
  Front(cpg::Encode(cpg::Sync{}));
  EXPECT_EQ(Back(RowDesc({Field("ssn", kCustomers, 3, 25)})).verdict, ResultMasker::Verdict::kDrop);
  EXPECT_EQ(*Values(Seen(Row({kSsn})))[0], "[REDACTED]");
  Back(cpg::Encode(cpg::PortalSuspended{}));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kInTransaction));
}

TEST_F(FloorTest, TextFormatByteaIsReadAsBytes) {
  Front(cpg::EncodeQuery("SELECT ssn::bytea FROM customers WHERE id = 1"));
  Back(RowDesc({Field("ssn", 0, 0, 17)}));
  EXPECT_EQ(*Values(Seen(Row({"\\x3037382d30352d31313230"})))[0], "\\x5b52454441435445445d");
  EXPECT_EQ(Back(Row({"\\x00ff"})).verdict, ResultMasker::Verdict::kPass);
  Done("SELECT 2");
}

TEST_F(FloorTest, CopyOutputPassesTheDetectors) {
  Front(cpg::EncodeQuery("COPY (SELECT ssn, card_number FROM customers) TO STDOUT"));
  EXPECT_EQ(Back(cpg::Encode(cpg::CopyOutResponse{})).verdict, ResultMasker::Verdict::kPass);
  cpg::CopyData line;
  std::string l = absl::StrCat(kSsn, "\t", kCard, "\n");
  line.data = l;
  std::string seen = Seen(cpg::Encode(line));
  EXPECT_THAT(seen, Not(HasSubstr(kSsn)));
  EXPECT_THAT(seen, Not(HasSubstr(kCard)));
  Back(cpg::Encode(cpg::CopyDone{}));
  Done("COPY 1");
  Front(cpg::EncodeQuery("COPY customers TO STDOUT (FORMAT binary)"));
  cpg::CopyOutResponse binary;
  binary.format = 1;
  EXPECT_EQ(Back(cpg::Encode(binary)).verdict, ResultMasker::Verdict::kFatal);
}

TEST_F(FloorTest, AStatementSentBeforeTheFloorIsMaskedWithIt) {
  ResultMasker rm([](uint32_t, int16_t) { return ColumnSource{}; });
  std::string q = cpg::EncodeQuery("SELECT ssn FROM customers");
  rm.OnFrontend(q[0], q.substr(5), nullptr);
  rm.SetFloor(floor_);
  std::string rd = RowDesc({Field("x", 0, 0, 25)});
  EXPECT_EQ(rm.OnBackend(rd[0], rd).verdict, ResultMasker::Verdict::kPass);
  std::string row = Row({kSsn});
  auto out = rm.OnBackend(row[0], row);
  ASSERT_EQ(out.verdict, ResultMasker::Verdict::kReplace);
  EXPECT_EQ(*Values(out.view)[0], "[REDACTED]");
}

TEST_F(FloorTest, ColumnNamesBuiltFromDataAreMasked) {
  // FETCH from a cursor a function opened with EXECUTE format('SELECT 1 AS %I', ssn).
  Front(cpg::EncodeQuery("FETCH ALL FROM leaky"));
  std::string seen = Seen(RowDesc({Field(kSsn, 0, 0, 23)}));
  auto rd = cpg::ParseRowDescription(absl::string_view(seen).substr(5));
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(rd->fields[0].name, "[REDACTED]");
  EXPECT_EQ(rd->fields[0].type_oid, 23u);
  Done("FETCH 0");
  // And for the agent's own Describe.
  cpg::Describe d;
  d.kind = cpg::TargetKind::kPortal;
  Front(cpg::Encode(d));
  EXPECT_THAT(Seen(RowDesc({Field(kSsn, 0, 0, 23)})), Not(HasSubstr(kSsn)));
  // Ordinary names pass untouched.
  Front(cpg::EncodeQuery("SELECT 1 AS id"));
  EXPECT_EQ(Back(RowDesc({Field("id", 0, 0, 23)})).verdict, ResultMasker::Verdict::kPass);
}

TEST_F(FloorTest, RowDataOutsideAnyStatementIsFatal) {
  auto out = Back(Row({kSsn}));
  EXPECT_EQ(out.verdict, ResultMasker::Verdict::kFatal);
  cpg::CopyData line;
  line.data = kSsn;
  EXPECT_EQ(Back(cpg::Encode(line)).verdict, ResultMasker::Verdict::kFatal);
  cpg::FunctionCallResponse f;
  f.result = kSsn;
  EXPECT_EQ(Back(cpg::Encode(f)).verdict, ResultMasker::Verdict::kFatal);
}

TEST_F(FloorTest, NothingFoundNoReport) {
  Front(cpg::EncodeQuery("SELECT 1"));
  Back(RowDesc({Field("?column?", 0, 0, 23)}));
  EXPECT_EQ(Back(Row({"1"})).verdict, ResultMasker::Verdict::kPass);
  Done("SELECT 1");
  EXPECT_TRUE(rm_.TakeReports().empty());
}

cpg::ErrorResponse CastError() {
  cpg::ErrorResponse e;
  e.fields = {{'S', "ERROR"},
              {'V', "ERROR"},
              {'C', "22P02"},
              {'M', absl::StrCat("invalid input syntax for type integer: \"", kSsn, "\"")},
              {'D', absl::StrCat("value ", kCard)},
              {'H', absl::StrCat("try ", kSsn)},
              {'W', absl::StrCat("PL/pgSQL function f(text) line 1 near ", kSsn)},
              {'q', absl::StrCat("SELECT '", kSsn, "'")},
              {'s', "public"},
              {'t', kSsn},
              {'c', kSsn},
              {'d', kSsn},
              {'n', kSsn},
              {'P', "8"},
              {'F', "numutils.c"},
              {'L', "232"},
              {'R', "pg_strtoint32"}};
  return e;
}

TEST_F(FloorTest, ErrorFieldsPassTheDetectors) {
  Front(cpg::EncodeQuery("SELECT ssn::int FROM customers"));
  Back(RowDesc({Field("ssn", 0, 0, 23)}));
  std::string seen = Seen(cpg::Encode(CastError()));
  EXPECT_THAT(seen, Not(HasSubstr(kSsn)));
  EXPECT_THAT(seen, Not(HasSubstr(kCard)));
  auto e = cpg::ParseErrorResponse(seen.substr(5));
  ASSERT_TRUE(e.ok()) << e.status();
  // Severity, code, position and source location are kept as they were.
  EXPECT_EQ(e->sqlstate(), "22P02");
  EXPECT_EQ(*e->Find('P'), "8");
  EXPECT_EQ(*e->Find('R'), "pg_strtoint32");
  EXPECT_EQ(*e->Find('s'), "public");
  EXPECT_EQ(e->message(), "invalid input syntax for type integer: \"[REDACTED]\"");
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  auto reports = rm_.TakeReports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_GE(reports[0].values_masked, 8u);
}

TEST_F(FloorTest, EchoedValuesOfColumnRulesAreRedactedInDataErrors) {
  // A value no detector knows (a name under a column rule) echoed by a cast and by a
  // unique violation.
  Front(cpg::EncodeQuery("SELECT name::int FROM customers"));
  std::string cast = cpg::EncodeError("ERROR", "22P02", "invalid input syntax for type integer: \"Ada Lovelace\"");
  EXPECT_THAT(Seen(cast), Not(HasSubstr("Ada")));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  Front(cpg::EncodeQuery("INSERT INTO customers SELECT * FROM customers"));
  std::string dup = cpg::EncodeError("ERROR", "23505", "duplicate key value violates unique constraint \"c_name\"",
                                     "Key (name)=(Ada Lovelace) already exists.");
  std::string seen = Seen(dup);
  EXPECT_THAT(seen, Not(HasSubstr("Ada")));
  EXPECT_THAT(seen, HasSubstr("Key (name)=([REDACTED]) already exists."));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  std::string not_null = cpg::EncodeError("ERROR", "23502", "null value in column \"ssn\" violates not-null constraint",
                                          "Failing row contains (3, Ada Lovelace, null).");
  Front(cpg::EncodeQuery("INSERT INTO customers VALUES (3, 'Ada Lovelace', null)"));
  EXPECT_THAT(Seen(not_null), Not(HasSubstr("Ada")));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  // Other errors keep their identifiers: the agent needs to know which relation is missing.
  Front(cpg::EncodeQuery("SELECT * FROM nope"));
  std::string missing = cpg::EncodeError("ERROR", "42P01", "relation \"nope\" does not exist");
  EXPECT_EQ(Back(missing).verdict, ResultMasker::Verdict::kPass);
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
}

TEST_F(FloorTest, EchoedValuesAreLeftToTheDetectorsWithoutColumnRules) {
  ResultMasker rm([](uint32_t, int16_t) { return ColumnSource{}; });
  rm.SetFloor(Compile(false));
  std::string cast = cpg::EncodeError("ERROR", "22P02", "invalid input syntax for type integer: \"Ada Lovelace\"");
  EXPECT_EQ(rm.OnBackend(cast[0], cast).verdict, ResultMasker::Verdict::kPass);
}

TEST_F(FloorTest, NoticesOfRaiseArePassedThroughTheDetectors) {
  Front(cpg::EncodeQuery("SELECT complain(ssn) FROM customers WHERE id = 1"));
  Back(RowDesc({Field("complain", 0, 0, 23)}));
  cpg::NoticeResponse n;
  n.fields = {{'S', "NOTICE"}, {'V', "NOTICE"}, {'C', "00000"}, {'M', absl::StrCat("saw ", kSsn)},
              {'W', "PL/pgSQL function complain(text) line 1 at RAISE"}};
  std::string seen = Seen(cpg::Encode(n));
  EXPECT_THAT(seen, Not(HasSubstr(kSsn)));
  EXPECT_THAT(seen, HasSubstr("saw [REDACTED]"));
  cpg::ErrorResponse raised;
  raised.fields = {{'S', "ERROR"}, {'C', "P0001"}, {'M', absl::StrCat("bad value ", kSsn)},
                   {'D', kSsn}, {'H', kSsn}};
  EXPECT_THAT(Seen(cpg::Encode(raised)), Not(HasSubstr(kSsn)));
  Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
}

TEST_F(FloorTest, NotificationsAndParameterStatusesBetweenStatements) {
  cpg::NotificationResponse a;
  a.process_id = 42;
  a.channel = absl::StrCat("leak_", "219-09-9999");
  a.payload = kSsn;
  auto n = cpg::ParseNotificationResponse(Seen(cpg::Encode(a)).substr(5));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->process_id, 42);
  EXPECT_EQ(n->payload, "[REDACTED]");
  EXPECT_THAT(n->channel, Not(HasSubstr("219-09-9999")));
  cpg::ParameterStatus ps;
  ps.name = "application_name";
  ps.value = kSsn;
  auto p = cpg::ParseParameterStatus(Seen(cpg::Encode(ps)).substr(5));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "application_name");
  EXPECT_EQ(p->value, "[REDACTED]");
  // Outside a statement they are reported on their own.
  auto reports = rm_.TakeReports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].protocol, "async");
  // Unremarkable ones pass untouched.
  ps.value = "psql";
  EXPECT_EQ(Back(cpg::Encode(ps)).verdict, ResultMasker::Verdict::kPass);
}

TEST_F(FloorTest, ParameterStatusInsideAStatement) {
  Front(cpg::EncodeQuery("SELECT set_config('application_name', ssn, false) FROM customers WHERE id = 1"));
  Back(RowDesc({Field("set_config", 0, 0, 25)}));
  EXPECT_EQ(*Values(Seen(Row({kSsn})))[0], "[REDACTED]");
  cpg::ParameterStatus ps;
  ps.name = "application_name";
  ps.value = kSsn;
  EXPECT_THAT(Seen(cpg::Encode(ps)), Not(HasSubstr(kSsn)));
  Done("SELECT 1");
}

TEST_F(FloorTest, FunctionCallResultsPassTheDetectors) {
  for (int16_t format : {0, 1}) {
    cpg::FunctionCall call;
    call.function_oid = 954;  // loread
    call.result_format = format;
    Front(cpg::Encode(call));
    cpg::FunctionCallResponse r;
    std::string data = absl::StrCat("ssn ", kSsn);
    r.result = data;
    std::string seen = Seen(cpg::Encode(r));
    auto out = cpg::ParseFunctionCallResponse(absl::string_view(seen).substr(5));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out->result, "ssn [REDACTED]");
    Back(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle));
  }
  ASSERT_EQ(rm_.TakeReports().size(), 2u);
}

TEST_F(FloorTest, BinaryValuesWithoutAColumnRuleAreDecodedOrNulled) {
  cpg::Bind b;
  b.result_formats = {1};
  Front(cpg::Encode(b));
  Front(cpg::Encode(cpg::Execute{}));
  Front(cpg::Encode(cpg::Sync{}));
  Back(cpg::Encode(cpg::BindComplete{}));
  constexpr uint32_t kBytea = 17, kTextArray = 1009, kRecord = 2249, kNumeric = 1700, kInt4 = 23, kUserType = 70000,
                     kText = 25;
  ASSERT_EQ(Back(RowDesc({Field("b", 0, 0, kBytea, 1), Field("a", 0, 0, kTextArray, 1), Field("r", 0, 0, kRecord, 1),
                          Field("n", 0, 0, kNumeric, 1), Field("i", 0, 0, kInt4, 1), Field("u", 0, 0, kUserType, 1)}))
                .verdict,
            ResultMasker::Verdict::kDrop);
  std::string bytea = absl::StrCat("x ", kSsn);
  // ARRAY['ok', ssn]: 1 dimension, no nulls, text elements.
  std::string array = absl::StrCat(Be32(1), Be32(0), Be32(kText), Be32(2), Be32(1), Be32(2), "ok", Be32(11), kSsn);
  // row(1, ssn)
  std::string record = absl::StrCat(Be32(2), Be32(kInt4), Be32(4), Be32(1), Be32(kText), Be32(11), kSsn);
  // 4111111111111111 as numeric: ndigits 4, weight 3, sign +, dscale 0, 4111 1111 1111 1111.
  std::string numeric("\x00\x04\x00\x03\x00\x00\x00\x00\x10\x0f\x04\x57\x04\x57\x04\x57", 16);
  std::string int4 = Be32(7);
  std::string user = absl::StrCat(Be32(1), kSsn);  // an extension type holding the text
  auto v = Values(Seen(Row({bytea, array, record, numeric, int4, user})));
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(*v[0], "x [REDACTED]");
  EXPECT_EQ(*v[1], absl::StrCat(Be32(1), Be32(0), Be32(kText), Be32(2), Be32(1), Be32(2), "ok", Be32(10), "[REDACTED]"));
  EXPECT_EQ(*v[2], absl::StrCat(Be32(2), Be32(kInt4), Be32(4), Be32(1), Be32(kText), Be32(10), "[REDACTED]"));
  EXPECT_FALSE(v[3].has_value());  // a number cannot hold the masked form: NULL
  EXPECT_EQ(*v[4], int4);
  EXPECT_FALSE(v[5].has_value());  // not decodable: the whole value goes
  Done("SELECT 1");
}

// A computed column (table OID 0) that the statement derives from a masked column is masked
// with that column's rule, redacted; one derived from nothing masked, or non-revealing,
// passes to the detectors; one of unknown shape is taken as derived from anything.
TEST_F(FloorTest, ComputedColumnsFollowTheirDerivation) {
  auto shape = [](const char* sql) {
    auto c = sql::Classify(sql);
    EXPECT_TRUE(c.ok());
    const auto& cols = c->statements(0).output_columns();
    return ResultShapes{std::vector<v1::OutputColumn>(cols.begin(), cols.end())};
  };
  const std::string q = "SELECT reverse(ssn), length(ssn), note, id::text FROM customers";
  rm_.OnFrontend(cpg::frontend::kQuery, cpg::EncodeQuery(q).substr(5), floor_, "", shape(q.c_str()));
  ASSERT_EQ(Back(RowDesc({Field("reverse", 0, 0, 25), Field("length", 0, 0, 23), Field("note", kCustomers, 6, 25),
                          Field("id", 0, 0, 25)}))
                .verdict,
            ResultMasker::Verdict::kPass);
  auto v = Values(Seen(Row({"0211-50-870", "11", "ok", "1"})));
  EXPECT_EQ(*v[0], "[REDACTED]");  // reverse(ssn): the ssn rule, redacted
  EXPECT_EQ(*v[1], "11");          // length(ssn) reveals no value
  EXPECT_EQ(*v[2], "ok");
  EXPECT_EQ(*v[3], "1");           // computed from id, which no rule masks
  Done("SELECT 1");
  // Unknown shape (a FETCH from a cursor never seen declared): every computed column.
  rm_.OnFrontend(cpg::frontend::kQuery, cpg::EncodeQuery("FETCH ALL FROM k").substr(5), floor_, "",
                 ResultShapes{std::nullopt});
  ASSERT_EQ(Back(RowDesc({Field("x", 0, 0, 25)})).verdict, ResultMasker::Verdict::kPass);
  EXPECT_EQ(*Values(Seen(Row({"harmless"})))[0], "[REDACTED]");
  Done("FETCH 1");
}

TEST(RedactEchoedValues, Shapes) {
  std::string out;
  EXPECT_FALSE(RedactEchoedValues("division by zero", "[R]", &out));
  ASSERT_TRUE(RedactEchoedValues("invalid input syntax for type integer: \"a \"b\" c\"", "[R]", &out));
  EXPECT_EQ(out, "invalid input syntax for type integer: \"[R]\"");
  ASSERT_TRUE(RedactEchoedValues("Key (a, b)=(1, x)) y) already exists.", "[R]", &out));
  EXPECT_EQ(out, "Key (a, b)=([R]) already exists.");
  ASSERT_TRUE(RedactEchoedValues("Failing row contains (1, \"q\", null).", "[R]", &out));
  EXPECT_EQ(out, "Failing row contains ([R]).");
}

}  // namespace
}  // namespace interlock::proxy::pg
