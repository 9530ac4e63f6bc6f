// StatementTracker: whole conversations (agent -> database, database -> agent, time passing)
// in, audit records out. Messages are built with the PostgreSQL codec's encoders and handed
// to the tracker as (type, body), the way the session does.
#include "userspace/proxy/pg/statement_tracker.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <openssl/sha.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = ::interlock::codec::pg;
using ::interlock::testing::FakeClock;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

using Value = std::optional<std::string>;  // a bound value; nullopt = NULL

// ---- Independent reference computations ------------------------------------------------------

std::string HexOf(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 0xf]);
  }
  return out;
}

std::string RefSha256(absl::string_view bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  return HexOf(md, sizeof md);
}

// The documented parameter digest: SHA-256 over each value as Int32 length (-1 for NULL),
// big-endian, followed by its bytes.
std::string RefParamsDigest(const std::vector<Value>& values) {
  std::string wire;
  for (const Value& v : values) {
    uint32_t len = v.has_value() ? static_cast<uint32_t>(v->size()) : 0xffffffffu;
    for (int shift = 24; shift >= 0; shift -= 8) wire.push_back(static_cast<char>(len >> shift));
    if (v.has_value()) wire += *v;
  }
  return RefSha256(wire);
}

// ---- Message builders ------------------------------------------------------------------------

std::vector<std::optional<absl::string_view>> Views(const std::vector<Value>& values) {
  std::vector<std::optional<absl::string_view>> out;
  for (const Value& v : values) {
    out.push_back(v.has_value() ? std::optional<absl::string_view>(*v) : std::nullopt);
  }
  return out;
}

// Frontend.
std::string Query(absl::string_view sql) { return cpg::EncodeQuery(sql); }
std::string Parse(absl::string_view name, absl::string_view sql) {
  return cpg::Encode(cpg::Parse{.statement = std::string(name), .query = std::string(sql)});
}
std::string Bind(absl::string_view portal, absl::string_view statement,
                 const std::vector<Value>& values = {}, std::vector<int16_t> formats = {}) {
  return cpg::Encode(cpg::Bind{.portal = std::string(portal),
                               .statement = std::string(statement),
                               .param_formats = std::move(formats),
                               .params = Views(values)});
}
std::string Execute(absl::string_view portal, int32_t max_rows = 0) {
  return cpg::Encode(cpg::Execute{.portal = std::string(portal), .max_rows = max_rows});
}
std::string DescribeStatement(absl::string_view name) {
  return cpg::Encode(cpg::Describe{.kind = cpg::TargetKind::kStatement, .name = std::string(name)});
}
std::string DescribePortal(absl::string_view name) {
  return cpg::Encode(cpg::Describe{.kind = cpg::TargetKind::kPortal, .name = std::string(name)});
}
std::string CloseStatement(absl::string_view name) {
  return cpg::Encode(cpg::Close{.kind = cpg::TargetKind::kStatement, .name = std::string(name)});
}
std::string ClosePortal(absl::string_view name) {
  return cpg::Encode(cpg::Close{.kind = cpg::TargetKind::kPortal, .name = std::string(name)});
}
std::string Sync() { return cpg::Encode(cpg::Sync{}); }
std::string Flush() { return cpg::Encode(cpg::Flush{}); }
std::string FunctionCall(uint32_t oid, const std::vector<Value>& args = {},
                         std::vector<int16_t> formats = {}) {
  return cpg::Encode(cpg::FunctionCall{
      .function_oid = oid, .arg_formats = std::move(formats), .args = Views(args)});
}
std::string CopyData(absl::string_view data) { return cpg::Encode(cpg::CopyData{.data = data}); }
std::string CopyDone() { return cpg::Encode(cpg::CopyDone{}); }

// Backend.
std::string ParseComplete() { return cpg::Encode(cpg::ParseComplete{}); }
std::string BindComplete() { return cpg::Encode(cpg::BindComplete{}); }
std::string CloseComplete() { return cpg::Encode(cpg::CloseComplete{}); }
std::string NoData() { return cpg::Encode(cpg::NoData{}); }
std::string ParameterDescription() {
  return cpg::Encode(cpg::ParameterDescription{.type_oids = {23}});
}
std::string RowDescription() {
  return cpg::Encode(cpg::RowDescription{
      .fields = {{.name = "x", .type_oid = 23, .type_size = 4, .type_modifier = -1}}});
}
std::string DataRow(absl::string_view v = "1") { return cpg::Encode(cpg::DataRow{.columns = {v}}); }
std::string Tag(absl::string_view tag) {
  return cpg::Encode(cpg::CommandComplete{.tag = std::string(tag)});
}
std::string EmptyQuery() { return cpg::Encode(cpg::EmptyQueryResponse{}); }
std::string Suspended() { return cpg::Encode(cpg::PortalSuspended{}); }
std::string Error(absl::string_view sqlstate, absl::string_view message) {
  return cpg::EncodeError("ERROR", sqlstate, message);
}
std::string Ready(cpg::TransactionStatus s = cpg::TransactionStatus::kIdle) {
  return cpg::EncodeReadyForQuery(s);
}
std::string CopyIn() { return cpg::Encode(cpg::CopyInResponse{}); }
std::string FunctionResult(absl::string_view v) {
  return cpg::Encode(cpg::FunctionCallResponse{.result = v});
}
std::string Notice() { return cpg::Encode(cpg::NoticeResponse{{{{'S', "NOTICE"}, {'M', "hi"}}}}); }
std::string ParamStatus() { return cpg::EncodeParameterStatus("TimeZone", "UTC"); }
std::string Notification() {
  return cpg::Encode(cpg::NotificationResponse{.process_id = 7, .channel = "c", .payload = "p"});
}

// ---- Driving the tracker ---------------------------------------------------------------------

// One step of a conversation: bytes from the agent, bytes from the database, or time passing.
struct Step {
  enum class Kind { kFrontend, kBackend, kAdvance };
  Kind kind;
  std::string wire;  // one or more whole messages
  absl::Duration advance = absl::ZeroDuration();
};
Step Fe(std::string wire) { return {Step::Kind::kFrontend, std::move(wire)}; }
Step Be(std::string wire) { return {Step::Kind::kBackend, std::move(wire)}; }
Step Wait(absl::Duration d) { return {Step::Kind::kAdvance, "", d}; }

// Hands every message in `wire` to the tracker; the first error stops it.
absl::Status Feed(StatementTracker& t, bool frontend, absl::string_view wire) {
  while (!wire.empty()) {
    absl::StatusOr<std::optional<cpg::Frame>> f = cpg::PeekFrame(wire, cpg::kMaxMessageBytes);
    if (!f.ok()) return f.status();
    if (!f->has_value()) return absl::InternalError("test: partial message");
    absl::Status st =
        frontend ? t.OnFrontend((*f)->type, (*f)->body) : t.OnBackend((*f)->type, (*f)->body);
    if (!st.ok()) return st;
    wire.remove_prefix((*f)->total_bytes);
  }
  return absl::OkStatus();
}

void RunSteps(StatementTracker& t, FakeClock& clock, const std::vector<Step>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    if (s.kind == Step::Kind::kAdvance) {
      clock.Advance(s.advance);
      continue;
    }
    absl::Status st = Feed(t, s.kind == Step::Kind::kFrontend, s.wire);
    ASSERT_TRUE(st.ok()) << "step " << i << ": " << st;
  }
}

// Literals in clear, so the conversations below read as written; the default (literals
// replaced) has its own cases (StatementTrackerLiterals).
StatementTrackerOptions Options(bool audit_parameters = false) {
  return {.database = "app", .user = "app_rw", .audit_parameters = audit_parameters, .audit_literals = true};
}

// The body of an encoded message (after type byte and length).
std::string BodyOf(absl::string_view wire) { return std::string(wire.substr(5)); }

// ---- Conversations ---------------------------------------------------------------------------

struct ScriptCase {
  std::string name;
  std::vector<Step> steps;
  // The completed records in order, as text protos. Fields left out (or at their default) are
  // not compared.
  std::vector<std::string> want;
  size_t want_pending = 0;
};
void PrintTo(const ScriptCase& c, std::ostream* os) { *os << c.name; }

class StatementTrackerScript : public ::testing::TestWithParam<ScriptCase> {};

TEST_P(StatementTrackerScript, ProducesRecords) {
  const ScriptCase& c = GetParam();
  FakeClock clock;
  StatementTracker t(Options(), clock);
  RunSteps(t, clock, c.steps);
  if (HasFatalFailure()) return;
  std::vector<v1::StatementInfo> got = t.TakeCompleted();
  EXPECT_EQ(t.pending(), c.want_pending);
  ASSERT_EQ(got.size(), c.want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    v1::StatementInfo want;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(c.want[i], &want)) << c.want[i];
    google::protobuf::util::MessageDifferencer diff;
    diff.set_scope(google::protobuf::util::MessageDifferencer::PARTIAL);
    std::string report;
    diff.ReportDifferencesToString(&report);
    EXPECT_TRUE(diff.Compare(want, got[i]))
        << "record " << i << ": " << report << "\ngot: " << got[i].ShortDebugString();
    // PARTIAL would accept extra tags: compare them whole.
    if (want.command_tags_size() > 0) {
      EXPECT_THAT(got[i].command_tags(), ElementsAreArray(want.command_tags())) << "record " << i;
    }
    EXPECT_EQ(got[i].database(), "app");
    EXPECT_EQ(got[i].user(), "app_rw");
  }
  EXPECT_THAT(t.TakeCompleted(), IsEmpty());  // drained
}

// clang-format off
const ScriptCase kScripts[] = {
    {"SimpleQueryWithTwoStatementsIsOneRecord",
     {Fe(Query("SELECT 1; SELECT 2")), Wait(absl::Milliseconds(3)),
      Be(RowDescription() + DataRow() + Tag("SELECT 1") + RowDescription() + DataRow("2") +
         Tag("SELECT 1") + Ready())},
     {R"pb(protocol: "simple" text: "SELECT 1; SELECT 2" command_tags: [ "SELECT 1", "SELECT 1" ]
           rows: 2 duration_us: 3000 status: "ok")pb"}},
    {"SimpleQuerySumsTagRowCounts",
     {Fe(Query("INSERT INTO t SELECT 1; UPDATE t SET x = 2; DELETE FROM t")),
      Be(Tag("INSERT 0 3") + Tag("UPDATE 4") + Tag("DELETE 5") + Ready())},
     {R"pb(command_tags: [ "INSERT 0 3", "UPDATE 4", "DELETE 5" ] rows: 12 status: "ok")pb"}},
    {"SimpleQueryCountsDataRowsWhenTagHasNoCount",
     {Fe(Query("EXPLAIN SELECT 1")),
      Be(RowDescription() + DataRow("a") + DataRow("b") + DataRow("c") + Tag("EXPLAIN") + Ready())},
     {R"pb(command_tags: "EXPLAIN" rows: 3 status: "ok")pb"}},
    {"SimpleQueryWithoutRows",
     {Fe(Query("BEGIN")), Be(Tag("BEGIN") + Ready(cpg::TransactionStatus::kInTransaction))},
     {R"pb(command_tags: "BEGIN" status: "ok")pb"}},
    {"SimpleQueryErrorCompletesAtReadyForQuery",
     {Fe(Query("SELECT * FROM nope")), Wait(absl::Microseconds(1500)),
      Be(Error("42P01", "relation \"nope\" does not exist")), Wait(absl::Microseconds(500)),
      Be(Ready())},
     {R"pb(protocol: "simple" status: "error" sqlstate: "42P01"
           error: "relation \"nope\" does not exist" duration_us: 2000)pb"}},
    {"SimpleQueryErrorAfterFirstStatementKeepsItsTag",
     {Fe(Query("SELECT 1; SELECT 1/0")),
      Be(RowDescription() + DataRow() + Tag("SELECT 1") + RowDescription() +
         Error("22012", "division by zero") + Ready(cpg::TransactionStatus::kIdle))},
     {R"pb(command_tags: "SELECT 1" rows: 1 status: "error" sqlstate: "22012"
           error: "division by zero")pb"}},
    {"SimpleQueryCancelled",
     {Fe(Query("SELECT pg_sleep(60)")),
      Be(RowDescription() + Error("57014", "canceling statement due to user request") + Ready())},
     {R"pb(status: "cancelled" sqlstate: "57014")pb"}},
    {"EmptySimpleQuery",
     {Fe(Query("")), Be(EmptyQuery() + Ready())},
     {R"pb(protocol: "simple" status: "ok"
           text_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")pb"}},
    {"SimpleQueryCopyIn",
     {Fe(Query("COPY t FROM STDIN")), Be(CopyIn()), Fe(CopyData("1\n2\n") + CopyDone()),
      Be(Tag("COPY 2") + Ready())},
     {R"pb(command_tags: "COPY 2" rows: 2 status: "ok")pb"}},
    {"TwoSimpleQueriesInARow",
     {Fe(Query("SELECT 1")), Fe(Query("SELECT 2")), Wait(absl::Milliseconds(1)),
      Be(RowDescription() + DataRow() + Tag("SELECT 1") + Ready()), Wait(absl::Milliseconds(1)),
      Be(RowDescription() + DataRow() + Tag("SELECT 1") + Ready())},
     {R"pb(text: "SELECT 1" duration_us: 1000 status: "ok")pb",
      R"pb(text: "SELECT 2" duration_us: 2000 status: "ok")pb"}},
    {"ExtendedParseBindDescribeExecuteSync",
     {Fe(Parse("", "SELECT $1::int") + Bind("", "", {"42"}) + DescribePortal("") + Execute("") +
         Sync()),
      Wait(absl::Milliseconds(7)),
      Be(ParseComplete() + BindComplete() + RowDescription() + DataRow("42") + Tag("SELECT 1") +
         Ready())},
     {R"pb(protocol: "extended" text: "SELECT $1::int" parameter_count: 1
           command_tags: "SELECT 1" rows: 1 duration_us: 7000 status: "ok")pb"}},
    {"ExtendedNamedStatementAndPortal",
     {Fe(Parse("s1", "UPDATE t SET x = $1") + Sync()), Be(ParseComplete() + Ready()),
      Fe(Bind("p1", "s1", {"5"}) + Execute("p1") + Sync()),
      Be(BindComplete() + Tag("UPDATE 3") + Ready())},
     {R"pb(protocol: "extended" text: "UPDATE t SET x = $1" statement_name: "s1" portal: "p1"
           parameter_count: 1 command_tags: "UPDATE 3" rows: 3 status: "ok")pb"}},
    {"ExtendedStatementReusedAcrossSyncs",
     {Fe(Parse("s1", "SELECT $1") + Sync()), Be(ParseComplete() + Ready()),
      Fe(Bind("", "s1", {"a"}) + Execute("") + Sync()),
      Be(BindComplete() + DataRow() + Tag("SELECT 1") + Ready()),
      Fe(Bind("", "s1", {"b"}) + Execute("") + Sync()),
      Be(BindComplete() + DataRow() + Tag("SELECT 1") + Ready())},
     {R"pb(text: "SELECT $1" statement_name: "s1" status: "ok")pb",
      R"pb(text: "SELECT $1" statement_name: "s1" status: "ok")pb"}},
    {"ExtendedExecuteWithMaxRowsIsSuspended",
     {Fe(Parse("", "SELECT generate_series(1, 10)") + Bind("", "") + Execute("", 2) + Sync()),
      Be(ParseComplete() + BindComplete() + DataRow() + DataRow() + Suspended() + Ready())},
     {R"pb(protocol: "extended" rows: 2 status: "suspended")pb"}},
    {"ExtendedSuspendedPortalFetchedAgainInTransaction",
     {Fe(Parse("", "SELECT generate_series(1, 3)") + Bind("c1", "") + Execute("c1", 2) +
         Execute("c1", 2) + Sync()),
      Be(ParseComplete() + BindComplete() + DataRow() + DataRow() + Suspended() + DataRow() +
         Tag("SELECT 1") + Ready(cpg::TransactionStatus::kInTransaction))},
     {R"pb(portal: "c1" rows: 2 status: "suspended")pb",
      R"pb(portal: "c1" text: "SELECT generate_series(1, 3)" rows: 1 status: "ok")pb"}},
    {"ExtendedPipelineErrorSkipsToSync",
     {Fe(Parse("", "INSERT INTO t VALUES (1)") + Bind("", "") + Execute("") +
         Parse("", "INSERT INTO t VALUES (1)") + Bind("", "") + Execute("") +
         Parse("", "INSERT INTO t VALUES (2)") + Bind("", "") + Execute("") + Sync()),
      Wait(absl::Milliseconds(10)),
      Be(ParseComplete() + BindComplete() + Tag("INSERT 0 1") + ParseComplete() + BindComplete()),
      Wait(absl::Milliseconds(5)),
      Be(Error("23505", "duplicate key value violates unique constraint \"t_pkey\"")),
      Wait(absl::Milliseconds(1)), Be(Ready())},
     {R"pb(text: "INSERT INTO t VALUES (1)" command_tags: "INSERT 0 1" rows: 1
           duration_us: 10000 status: "ok")pb",
      R"pb(text: "INSERT INTO t VALUES (1)" status: "error" sqlstate: "23505"
           error: "duplicate key value violates unique constraint \"t_pkey\""
           duration_us: 15000)pb",
      R"pb(text: "INSERT INTO t VALUES (2)" status: "skipped" sqlstate: "23505"
           error: "not executed: an earlier message in the pipeline failed (23505)"
           duration_us: 15000)pb"}},
    {"ExtendedParseErrorSkipsItsExecute",
     {Fe(Parse("", "SELEC 1") + Bind("", "") + Execute("") + Sync()),
      Be(Error("42601", "syntax error at or near \"SELEC\"") + Ready())},
     {R"pb(text: "SELEC 1" status: "skipped" sqlstate: "42601")pb"}},
    {"ExtendedCancelled",
     {Fe(Parse("", "SELECT pg_sleep(60)") + Bind("", "") + Execute("") + Sync()),
      Be(ParseComplete() + BindComplete() +
         Error("57014", "canceling statement due to user request") + Ready())},
     {R"pb(status: "cancelled" sqlstate: "57014"
           error: "canceling statement due to user request")pb"}},
    {"ExtendedEmptyQuery",
     {Fe(Parse("", "") + Bind("", "") + Execute("") + Sync()),
      Be(ParseComplete() + BindComplete() + EmptyQuery() + Ready())},
     {R"pb(protocol: "extended" status: "ok")pb"}},
    {"ExtendedCopyIn",
     {Fe(Parse("", "COPY t FROM STDIN") + Bind("", "") + Execute("") + Sync()),
      Be(ParseComplete() + BindComplete() + CopyIn()), Fe(CopyData("1\n") + CopyDone()),
      Be(Tag("COPY 1") + Ready())},
     {R"pb(command_tags: "COPY 1" rows: 1 status: "ok")pb"}},
    {"ExtendedFlushAddsNothing",
     {Fe(Parse("", "SELECT 1") + Bind("", "") + Execute("") + Flush()),
      Be(ParseComplete() + BindComplete() + DataRow() + Tag("SELECT 1")), Fe(Sync()),
      Be(Ready())},
     {R"pb(rows: 1 status: "ok")pb"}},
    {"ReadyForQueryWithoutResponseLeavesExecuteIncomplete",
     {Fe(Parse("", "SELECT 1") + Bind("", "") + Execute("") + Sync()),
      Be(ParseComplete() + BindComplete() + Ready())},
     {R"pb(status: "incomplete")pb"}},
    {"ExecuteOfUnknownPortalHasNoText",
     {Fe(Execute("nope") + Sync()),
      Be(Error("34000", "portal \"nope\" does not exist") + Ready())},
     {R"pb(protocol: "extended" portal: "nope" status: "error" sqlstate: "34000")pb"}},
    {"DescribeAndCloseAreMatchedWithoutRecords",
     {Fe(Parse("s1", "SELECT $1::int") + DescribeStatement("s1") + Sync()),
      Be(ParseComplete() + ParameterDescription() + RowDescription() + Ready()),
      Fe(Parse("s2", "INSERT INTO t VALUES (1)") + DescribeStatement("s2") + Sync()),
      Be(ParseComplete() + ParameterDescription() + NoData() + Ready()),
      Fe(CloseStatement("s1") + CloseStatement("s2") + ClosePortal("none") + Sync()),
      Be(CloseComplete() + CloseComplete() + CloseComplete() + Ready())},
     {}},
    {"DescribeErrorSkipsToSync",
     {Fe(DescribeStatement("nope") + Bind("", "nope") + Execute("") + Sync()),
      Be(Error("26000", "prepared statement \"nope\" does not exist") + Ready())},
     {R"pb(status: "skipped" sqlstate: "26000")pb"}},
    {"BindToClosedStatementIsSkipped",
     {Fe(Parse("s1", "SELECT 1") + CloseStatement("s1") + Bind("", "s1") + Execute("") + Sync()),
      Be(ParseComplete() + CloseComplete() +
         Error("26000", "prepared statement \"s1\" does not exist") + Ready())},
     {R"pb(protocol: "extended" status: "skipped" sqlstate: "26000")pb"}},
    {"FunctionCall",
     {Fe(FunctionCall(1598, {"1"})), Wait(absl::Milliseconds(2)),
      Be(FunctionResult("0.5") + Ready())},
     {R"pb(protocol: "function_call" text: "function call: oid 1598" parameter_count: 1
           duration_us: 2000 status: "ok")pb"}},
    {"FunctionCallError",
     {Fe(FunctionCall(42)), Be(Error("42883", "function 42 does not exist") + Ready())},
     {R"pb(protocol: "function_call" text: "function call: oid 42" status: "error"
           sqlstate: "42883" error: "function 42 does not exist")pb"}},
    {"AsyncBackendMessagesAreIgnored",
     {Be(ParamStatus() + Notice() + Notification()), Fe(Query("LISTEN c")),
      Be(ParamStatus() + Notice() + Tag("LISTEN") + Notification() + Ready())},
     {R"pb(command_tags: "LISTEN" status: "ok")pb"}},
    {"StatementsStillRunningStayPending",
     {Fe(Query("SELECT 1")), Be(RowDescription() + DataRow()),
      Fe(Parse("", "SELECT 2") + Bind("", "") + Execute("") + Sync())},
     {},
     5},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Conversations, StatementTrackerScript, ::testing::ValuesIn(kScripts),
                         [](const ::testing::TestParamInfo<ScriptCase>& i) {
                           return i.param.name;
                         });

// ---- Completion timing and bookkeeping -------------------------------------------------------

TEST(StatementTracker, SimpleQueryErrorWaitsForReadyForQuery) {
  FakeClock clock;
  StatementTracker t(Options(), clock);
  ASSERT_TRUE(Feed(t, true, Query("SELECT 1/0")).ok());
  ASSERT_TRUE(Feed(t, false, Error("22012", "division by zero")).ok());
  EXPECT_THAT(t.TakeCompleted(), IsEmpty());
  EXPECT_EQ(t.pending(), 1u);
  ASSERT_TRUE(Feed(t, false, Ready()).ok());
  std::vector<v1::StatementInfo> got = t.TakeCompleted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].status(), "error");
  EXPECT_EQ(t.pending(), 0u);
}

TEST(StatementTracker, PendingReturnsToZeroAfterEachSync) {
  FakeClock clock;
  StatementTracker t(Options(), clock);
  struct Round {
    std::string frontend;
    size_t pending_after_frontend;
    std::string backend;
  };
  const Round rounds[] = {
      {Parse("s1", "SELECT $1") + DescribeStatement("s1") + Sync(), 3,
       ParseComplete() + ParameterDescription() + RowDescription() + Ready()},
      {Bind("p1", "s1", {"x"}) + DescribePortal("p1") + Execute("p1") + Sync(), 4,
       BindComplete() + RowDescription() + DataRow() + Tag("SELECT 1") + Ready()},
      {ClosePortal("p1") + CloseStatement("s1") + Sync(), 3,
       CloseComplete() + CloseComplete() + Ready()},
      {Query("SELECT 1"), 1, RowDescription() + DataRow() + Tag("SELECT 1") + Ready()},
      {Parse("", "bad") + Bind("", "") + DescribePortal("") + Execute("") + Sync(), 5,
       Error("42601", "syntax error") + Ready()},
  };
  for (const Round& r : rounds) {
    ASSERT_TRUE(Feed(t, true, r.frontend).ok());
    EXPECT_EQ(t.pending(), r.pending_after_frontend);
    ASSERT_TRUE(Feed(t, false, r.backend).ok());
    EXPECT_EQ(t.pending(), 0u);
  }
  EXPECT_EQ(t.TakeCompleted().size(), 3u);  // Execute p1, the Query, the skipped Execute
}

TEST(StatementTracker, FinishCompletesPendingStatements) {
  FakeClock clock;
  StatementTracker t(Options(), clock);
  ASSERT_TRUE(Feed(t, true, Query("SELECT 1")).ok());
  ASSERT_TRUE(Feed(t, false, RowDescription() + DataRow() + Tag("SELECT 1") + Ready()).ok());
  ASSERT_TRUE(Feed(t, true, Query("SELECT * FROM big")).ok());
  clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(Feed(t, false, RowDescription() + DataRow() + DataRow()).ok());
  ASSERT_TRUE(Feed(t, true, Parse("", "SELECT 2") + Bind("", "") + Execute("") + Sync()).ok());
  clock.Advance(absl::Seconds(1));

  std::vector<v1::StatementInfo> got = t.Finish("incomplete");
  ASSERT_EQ(got.size(), 3u);  // the completed Query, then the two pending statements
  EXPECT_EQ(got[0].status(), "ok");
  EXPECT_EQ(got[1].text(), "SELECT * FROM big");
  EXPECT_EQ(got[1].status(), "incomplete");
  EXPECT_EQ(got[1].rows(), 2u);
  EXPECT_EQ(got[1].duration_us(), 3'000'000u);
  EXPECT_EQ(got[2].protocol(), "extended");
  EXPECT_EQ(got[2].text(), "SELECT 2");
  EXPECT_EQ(got[2].status(), "incomplete");
  EXPECT_EQ(got[2].duration_us(), 1'000'000u);
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_THAT(t.Finish("incomplete"), IsEmpty());
}

// ---- Parameters ------------------------------------------------------------------------------

struct ParamCase {
  std::string name;
  std::vector<int16_t> formats;
  std::vector<Value> values;
  uint32_t max_parameter_bytes;
  bool audit_parameters;
  std::vector<std::string> want;  // rendered values
};
void PrintTo(const ParamCase& c, std::ostream* os) { *os << c.name; }

class StatementTrackerParams : public ::testing::TestWithParam<ParamCase> {};

// The same rendering for Bind parameters (extended) and FunctionCall arguments.
TEST_P(StatementTrackerParams, RendersAndDigestsValues) {
  const ParamCase& c = GetParam();
  FakeClock clock;
  StatementTrackerOptions options = Options(c.audit_parameters);
  options.max_parameter_bytes = c.max_parameter_bytes;
  StatementTracker t(options, clock);
  ASSERT_TRUE(
      Feed(t, true,
           Parse("s", "SELECT f($1)") + Bind("", "s", c.values, c.formats) + Execute("") + Sync())
          .ok());
  ASSERT_TRUE(Feed(t, false, ParseComplete() + BindComplete() + Tag("SELECT 1") + Ready()).ok());
  ASSERT_TRUE(Feed(t, true, FunctionCall(1598, c.values, c.formats)).ok());
  ASSERT_TRUE(Feed(t, false, FunctionResult("x") + Ready()).ok());

  std::vector<v1::StatementInfo> got = t.TakeCompleted();
  ASSERT_EQ(got.size(), 2u);
  for (const v1::StatementInfo& s : got) {
    SCOPED_TRACE(s.protocol());
    EXPECT_THAT(s.parameters(), ElementsAreArray(c.want));
    EXPECT_EQ(s.parameter_count(), c.values.size());
    EXPECT_EQ(s.parameters_sha256(), RefParamsDigest(c.values));
  }
}

const std::string kBinary("\x00\x01\xff", 3);

// clang-format off
const ParamCase kParamCases[] = {
    {"Text", {}, {"42", "hello"}, 256, true, {"42", "hello"}},
    {"EmptyText", {}, {""}, 256, true, {""}},
    {"NullIsShownAsNull", {}, {std::nullopt, "x"}, 256, true, {"NULL", "x"}},
    {"BinaryNullIsShownAsNull", {1}, {std::nullopt}, 256, true, {"NULL"}},
    {"BinaryAsHex", {1}, {kBinary}, 256, true, {"\\x0001ff"}},
    {"OneFormatAppliesToAll", {1}, {"\x01", "\x02"}, 256, true, {"\\x01", "\\x02"}},
    {"FormatPerParameter", {0, 1}, {"7", "\x07"}, 256, true, {"7", "\\x07"}},
    {"TextAtCapIsKept", {}, {"abcd"}, 4, true, {"abcd"}},
    {"TextOverCapIsCut", {}, {"abcdefgh"}, 4, true, {"abcd..."}},
    {"TextCapDoesNotSplitUtf8", {}, {"abc\xc3\xa9"}, 4, true, {"abc..."}},
    {"BinaryAtCapIsKept", {1}, {"\x01\x02"}, 4, true, {"\\x0102"}},
    {"BinaryOverCapIsCut", {1}, {"\x01\x02\x03"}, 4, true, {"\\x0102..."}},
    {"NotAuditedByDefault", {}, {"secret", std::nullopt}, 256, false, {}},
    {"NotAuditedBinary", {1}, {kBinary}, 256, false, {}},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Values, StatementTrackerParams, ::testing::ValuesIn(kParamCases),
                         [](const ::testing::TestParamInfo<ParamCase>& i) { return i.param.name; });

// The digest of one Bind's values, through the tracker.
std::string TrackedDigest(const std::vector<Value>& values, std::vector<int16_t> formats = {}) {
  FakeClock clock;
  StatementTracker t(Options(), clock);
  EXPECT_TRUE(Feed(t, true,
                   Parse("", "SELECT $1, $2") + Bind("", "", values, std::move(formats)) +
                       Execute("") + Sync())
                  .ok());
  std::vector<v1::StatementInfo> got = t.Finish("incomplete");
  EXPECT_EQ(got.size(), 1u);
  return got.empty() ? "" : got[0].parameters_sha256();
}

TEST(StatementTracker, ParameterDigestIsStableAndTellsValuesApart) {
  const std::string ab = TrackedDigest({"a", "b"});
  EXPECT_EQ(ab.size(), 64u);
  EXPECT_EQ(ab, TrackedDigest({"a", "b"}));
  EXPECT_EQ(ab, TrackedDigest({"a", "b"}, {1}));  // over the bytes, whatever their format
  const std::vector<std::vector<Value>> others = {
      {"b", "a"}, {"a", "c"}, {"ab", ""}, {"a", std::nullopt}, {"a", ""}, {"a"}, {"a", "b", ""}};
  for (const auto& values : others) {
    EXPECT_NE(TrackedDigest(values), ab) << ::testing::PrintToString(values);
  }
  EXPECT_NE(TrackedDigest({std::nullopt}), TrackedDigest({""}));
  EXPECT_EQ(TrackedDigest({}), "");  // no parameters, no digest
}

// ---- Statement text --------------------------------------------------------------------------

struct TextCase {
  std::string name;
  std::string text;
  uint32_t max_statement_bytes;
  std::string want_text;
  bool want_truncated;
};
void PrintTo(const TextCase& c, std::ostream* os) { *os << c.name; }

class StatementTrackerText : public ::testing::TestWithParam<TextCase> {};

// By default the audit trail shows no literal an agent wrote (a card number in a WHERE
// clause), in either protocol, and reads strings as the session's
// standard_conforming_strings says; the digest stays that of the exact text.
TEST(StatementTrackerLiterals, ReplacedByDefaultFollowingTheSessionsStringSyntax) {
  FakeClock clock;
  StatementTrackerOptions options = Options();
  options.audit_literals = false;
  StatementTracker t(options, clock);
  const std::string q = "DELETE FROM cards WHERE pan = '4111111111111111' AND n > 5";
  ASSERT_TRUE(Feed(t, true, Query(q)).ok());
  ASSERT_TRUE(Feed(t, true, Parse("", q) + Bind("", "") + Execute("") + Sync()).ok());
  // The server turns standard_conforming_strings off: a backslash now escapes a quote.
  cpg::ParameterStatus ps{"standard_conforming_strings", "off"};
  ASSERT_TRUE(t.OnBackend(cpg::backend::kParameterStatus, BodyOf(cpg::Encode(ps))).ok());
  ASSERT_TRUE(Feed(t, true, Query("SELECT 'a\\' , 4111111111111111 '")).ok());
  std::vector<v1::StatementInfo> got = t.Finish("incomplete");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].text(), "DELETE FROM cards WHERE pan = $1 AND n > $2");
  EXPECT_EQ(got[1].text(), "DELETE FROM cards WHERE pan = $1 AND n > $2");
  EXPECT_EQ(got[0].text_sha256(), RefSha256(q));
  EXPECT_EQ(got[2].text(), "SELECT $1");
}

TEST_P(StatementTrackerText, CapsAtUtf8Boundary) {
  const TextCase& c = GetParam();
  FakeClock clock;
  StatementTrackerOptions options = Options();
  options.max_statement_bytes = c.max_statement_bytes;
  StatementTracker t(options, clock);
  ASSERT_TRUE(Feed(t, true, Query(c.text)).ok());
  ASSERT_TRUE(Feed(t, true, Parse("", c.text) + Bind("", "") + Execute("") + Sync()).ok());
  std::vector<v1::StatementInfo> got = t.Finish("incomplete");
  ASSERT_EQ(got.size(), 2u);
  for (const v1::StatementInfo& s : got) {
    SCOPED_TRACE(s.protocol());
    EXPECT_EQ(s.text(), c.want_text);
    EXPECT_EQ(s.text_truncated(), c.want_truncated);
    EXPECT_EQ(s.text_sha256(), RefSha256(c.text));  // always of the full text
  }
}

// clang-format off
const TextCase kTextCases[] = {
    {"ShorterThanCap", "SELECT 1", 100, "SELECT 1", false},
    {"ExactlyAtCap", "SELECT 1", 8, "SELECT 1", false},
    {"AsciiOverCap", "SELECT 1", 7, "SELECT ", true},
    {"ZeroCap", "SELECT 1", 0, "", true},
    // "SELECT '" is 8 bytes; U+00E9 is C3 A9 at bytes 8 and 9.
    {"TwoByteCharStraddlingCap", "SELECT '\xc3\xa9'", 9, "SELECT '", true},
    {"CapRightAfterTwoByteChar", "SELECT '\xc3\xa9'", 10, "SELECT '\xc3\xa9", true},
    {"CapRightBeforeTwoByteChar", "SELECT '\xc3\xa9'", 8, "SELECT '", true},
    // U+1F600 is F0 9F 98 80 at bytes 2..5.
    {"FourByteCharCapAfterLeadByte", "ab\xf0\x9f\x98\x80z", 3, "ab", true},
    {"FourByteCharCapInside", "ab\xf0\x9f\x98\x80z", 5, "ab", true},
    {"FourByteCharCapAfterIt", "ab\xf0\x9f\x98\x80z", 6, "ab\xf0\x9f\x98\x80", true},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Caps, StatementTrackerText, ::testing::ValuesIn(kTextCases),
                         [](const ::testing::TestParamInfo<TextCase>& i) { return i.param.name; });

// ---- Malformed and unknown input -------------------------------------------------------------

struct FrontendCase {
  std::string name;
  char type;
  std::string body;
};
void PrintTo(const FrontendCase& c, std::ostream* os) { *os << c.name; }

std::string Chop(std::string s, size_t n = 1) { return s.substr(0, s.size() - n); }

class StatementTrackerMalformedFrontend : public ::testing::TestWithParam<FrontendCase> {};

TEST_P(StatementTrackerMalformedFrontend, IsInvalidArgument) {
  const FrontendCase& c = GetParam();
  FakeClock clock;
  StatementTracker t(Options(), clock);
  absl::Status st = t.OnFrontend(c.type, c.body);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_THAT(t.Finish("incomplete"), IsEmpty());
}

// clang-format off
const FrontendCase kMalformedFrontend[] = {
    {"QueryWithoutTerminator", 'Q', "SELECT 1"},
    {"QueryWithTrailingBytes", 'Q', BodyOf(Query("SELECT 1")) + "x"},
    {"ParseTruncated", 'P', std::string("s1\0SELECT 1", 11)},
    {"ParseMissingOidCount", 'P', Chop(BodyOf(Parse("s1", "SELECT 1")), 2)},
    {"BindEmpty", 'B', ""},
    {"BindValuePastEnd", 'B', Chop(BodyOf(Bind("", "", {"hello"})), 3)},
    {"BindTrailingBytes", 'B', BodyOf(Bind("", "")) + "xx"},
    {"ExecuteShortRowLimit", 'E', std::string("\0\0\0", 3)},
    {"ExecuteWithoutTerminator", 'E', "portal"},
    {"CloseUnknownTarget", 'C', std::string("Xs1\0", 4)},
    {"CloseEmpty", 'C', ""},
    {"FunctionCallTruncated", 'F', std::string("\0\0", 2)},
    {"FunctionCallArgPastEnd", 'F', Chop(BodyOf(FunctionCall(1, {"abc"})), 4)},
    // Messages are decoded once, strictly, for every reader (codec::pg::DecodeFrontend):
    // the server would refuse these too ("invalid message format").
    {"FlushWithGarbage", 'H', "garbage"},
    {"CopyFailWithoutTerminator", 'f', "oops"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Messages, StatementTrackerMalformedFrontend,
                         ::testing::ValuesIn(kMalformedFrontend),
                         [](const ::testing::TestParamInfo<FrontendCase>& i) {
                           return i.param.name;
                         });

class StatementTrackerIgnoredFrontend : public ::testing::TestWithParam<FrontendCase> {};

TEST_P(StatementTrackerIgnoredFrontend, IsAcceptedAndNotTracked) {
  const FrontendCase& c = GetParam();
  FakeClock clock;
  StatementTracker t(Options(), clock);
  EXPECT_TRUE(t.OnFrontend(c.type, c.body).ok());
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_THAT(t.Finish("incomplete"), IsEmpty());
}

// clang-format off
const FrontendCase kIgnoredFrontend[] = {
    {"Flush", 'H', ""},
    {"CopyData", 'd', std::string("\0\xff\x01", 3)},
    {"CopyDone", 'c', ""},
    {"CopyFail", 'f', std::string("oops\0", 5)},
    {"Terminate", 'X', ""},
    {"Password", 'p', "not parsed"},
    {"UnknownType", '?', std::string("\xde\xad\xbe\xef", 4)},
    {"NulType", '\0', ""},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Messages, StatementTrackerIgnoredFrontend,
                         ::testing::ValuesIn(kIgnoredFrontend),
                         [](const ::testing::TestParamInfo<FrontendCase>& i) {
                           return i.param.name;
                         });

TEST(StatementTracker, MalformedBackendMessageWhileStatementPending) {
  const FrontendCase cases[] = {
      {"CommandCompleteWithoutTerminator", 'C', "SELECT 1"},
      {"ErrorResponseWithoutTerminator", 'E', "SERROR"},
  };
  for (const FrontendCase& c : cases) {
    SCOPED_TRACE(c.name);
    FakeClock clock;
    StatementTracker t(Options(), clock);
    ASSERT_TRUE(Feed(t, true, Query("SELECT 1")).ok());
    absl::Status st = t.OnBackend(c.type, c.body);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  }
}

TEST(StatementTracker, BackendMessagesWithNothingPendingAreIgnored) {
  FakeClock clock;
  StatementTracker t(Options(), clock);
  // A FATAL error can arrive at any time; DataRow bodies are never read.
  EXPECT_TRUE(Feed(t, false, cpg::EncodeError("FATAL", "57P01", "terminating connection")).ok());
  EXPECT_TRUE(t.OnBackend('D', "").ok());
  EXPECT_TRUE(t.OnBackend('C', "not terminated").ok());
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_THAT(t.TakeCompleted(), IsEmpty());
}

TEST(StatementTracker, DataRowBodiesAreNotRead) {
  FakeClock clock;
  StatementTracker t(Options(), clock);
  ASSERT_TRUE(Feed(t, true, Query("SELECT 1")).ok());
  EXPECT_TRUE(t.OnBackend('D', "").ok());
  EXPECT_TRUE(t.OnBackend('D', "\xff").ok());
  ASSERT_TRUE(Feed(t, false, Tag("SHOW") + Ready()).ok());
  std::vector<v1::StatementInfo> got = t.TakeCompleted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rows(), 2u);
}

TEST(StatementTracker, Sha256HexKnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace interlock::proxy::pg

namespace interlock::proxy::pg {
namespace {

// A hostile agent cannot grow interlockd's memory without bound by preparing statements:
// text is kept capped and the count is limited.
TEST(StatementTrackerLimits, TooManyPreparedStatementsIsResourceExhausted) {
  interlock::testing::FakeClock clock;
  StatementTracker t({.database = "d", .user = "u", .max_statement_bytes = 16}, clock);
  const std::string big(100000, 'x');
  for (size_t i = 0; i < kMaxTrackedObjects; ++i) {
    std::string msg = codec::pg::Encode(codec::pg::Parse{absl::StrCat("s", i), big, {}});
    ASSERT_TRUE(t.OnFrontend(msg[0], absl::string_view(msg).substr(5)).ok()) << i;
  }
  std::string again = codec::pg::Encode(codec::pg::Parse{"s0", "SELECT 1", {}});
  EXPECT_TRUE(t.OnFrontend(again[0], absl::string_view(again).substr(5)).ok()) << "redefining is fine";
  std::string one_more = codec::pg::Encode(codec::pg::Parse{"overflow", "SELECT 1", {}});
  absl::Status st = t.OnFrontend(one_more[0], absl::string_view(one_more).substr(5));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
}

}  // namespace
}  // namespace interlock::proxy::pg
