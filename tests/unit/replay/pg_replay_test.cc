#include "userspace/replay/pg_replay.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/common/file_util.h"
#include "userspace/record/reader.h"
#include "userspace/record/recorder.h"
#include "userspace/record/replay.h"
#include "userspace/record/sealed_box.h"

namespace interlock::replay {
namespace {

namespace cpg = ::interlock::codec::pg;
using record::test::SampleOpen;
using record::test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr v1::Direction kUp = v1::DIRECTION_TO_UPSTREAM;
constexpr v1::Direction kDown = v1::DIRECTION_TO_AGENT;

cpg::FieldDescription Field(std::string name, uint32_t type_oid, int16_t format = 0) {
  cpg::FieldDescription f;
  f.name = std::move(name);
  f.type_oid = type_oid;
  f.type_size = -1;
  f.type_modifier = -1;
  f.format = format;
  return f;
}

std::string RowDescription(std::vector<cpg::FieldDescription> fields) {
  cpg::RowDescription d;
  d.fields = std::move(fields);
  return cpg::Encode(d);
}

std::string DataRow(std::vector<std::optional<absl::string_view>> columns) {
  cpg::DataRow r;
  r.columns = std::move(columns);
  return cpg::Encode(r);
}

std::string CommandComplete(absl::string_view tag) {
  return cpg::Encode(cpg::CommandComplete{std::string(tag)});
}

std::string Idle() { return cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle); }

// Writes a real recording (Recorder, FakeClock) of a "postgres" session and reads it back.
class PgRecording {
 public:
  explicit PgRecording(const record::RecorderOptions& options = {})
      : key_(record::RecordingKey::Generate()) {
    v1::SessionOpen open = SampleOpen("pg-0001");
    open.set_resource("appdb");
    open.set_protocol("postgres");
    auto rec = record::Recorder::Create(dir_.File("s.rec"), open, key_, clock_, options);
    EXPECT_TRUE(rec.ok()) << rec.status();
    rec_ = std::move(*rec);
  }
  // One record of `bytes`, 1 ms after the previous one.
  void Send(v1::Direction dir, absl::string_view bytes) {
    clock_.Advance(absl::Milliseconds(1));
    ASSERT_TRUE(rec_->AppendData(dir, bytes).ok());
  }
  // `bytes` in records cut at each of `cuts` (offsets into bytes, increasing).
  void SendSplit(v1::Direction dir, absl::string_view bytes, std::vector<size_t> cuts) {
    size_t from = 0;
    cuts.push_back(bytes.size());
    for (size_t to : cuts) {
      Send(dir, bytes.substr(from, to - from));
      from = to;
    }
  }
  void SendBytewise(v1::Direction dir, absl::string_view bytes) {
    for (char c : bytes) Send(dir, absl::string_view(&c, 1));
  }
  // The originals of masked bytes, sealed, in the same millisecond as the last Send.
  void Sealed(v1::Direction dir, absl::string_view bytes) {
    ASSERT_TRUE(rec_->AppendSealed(dir, bytes).ok());
  }
  void Event(absl::string_view kind, absl::string_view detail) {
    ASSERT_TRUE(rec_->AppendEvent(kind, detail).ok());
  }
  std::vector<v1::Record> Finish() {
    clock_.Advance(absl::Milliseconds(1));
    v1::SessionClose close;
    close.set_outcome("closed");
    EXPECT_TRUE(rec_->Close(close).ok());
    rec_.reset();
    record::Recording r = record::ReadRecording(*ReadFile(dir_.File("s.rec")));
    EXPECT_TRUE(r.stop.ok()) << r.stop;
    return std::move(r.records);
  }
  const record::RecordingKey& key() const { return key_; }

 private:
  TempDir dir_;
  record::RecordingKey key_;
  interlock::testing::FakeClock clock_;
  std::unique_ptr<record::Recorder> rec_;
};

// A psql-like session as interlockd records it in token mode.
std::vector<v1::Record> PsqlSession(PgRecording& s) {
  s.Send(kUp, cpg::EncodeSslRequest());
  s.Send(kDown, "N");
  s.SendSplit(kUp,
              cpg::EncodeStartupMessage({{"user", "alice"},
                                         {"database", "appdb"},
                                         {"application_name", "psql"},
                                         {"client_encoding", "UTF8"}}),
              {3});  // inside the length word
  s.Send(kDown, cpg::EncodeAuthenticationCleartextPassword());
  s.Event("agent_password", "password message (redacted)");
  s.Send(kDown, cpg::EncodeAuthenticationOk() +
                    cpg::EncodeParameterStatus("server_version", "15.8") +
                    cpg::EncodeParameterStatus("client_encoding", "UTF8") +
                    cpg::EncodeBackendKeyData(4242, 0x5eC12e7) + Idle());

  // Simple query; the answer split at awkward offsets (inside a header, a length, a value).
  s.Send(kUp, cpg::EncodeQuery("SELECT id, name, email\nFROM accounts\nORDER BY id;"));
  const std::string result =
      RowDescription({Field("id", 23), Field("name", 25), Field("email", 25)}) +
      DataRow({"1", "alice", "alice@example.com"}) + DataRow({"2", "bob", std::nullopt}) +
      DataRow({"3", "carol", "carol@example.com"}) + CommandComplete("SELECT 3") + Idle();
  s.SendSplit(kDown, result, {1, 4, 20, 77, 78, 120});

  // Extended protocol, the agent's messages one byte at a time.
  cpg::Parse parse;
  parse.query = "SELECT name FROM accounts WHERE id = $1 AND note IS NOT DISTINCT FROM $2";
  parse.param_type_oids = {23, 25};
  cpg::Bind bind;
  bind.params = {"2", std::nullopt};
  cpg::Describe describe;
  describe.kind = cpg::TargetKind::kPortal;
  s.SendBytewise(kUp, cpg::Encode(parse) + cpg::Encode(bind) + cpg::Encode(describe) +
                          cpg::Encode(cpg::Execute{}) + cpg::Encode(cpg::Sync{}));
  s.SendBytewise(kDown, cpg::Encode(cpg::ParseComplete{}) + cpg::Encode(cpg::BindComplete{}) +
                            RowDescription({Field("name", 25)}) + DataRow({"bob"}) +
                            CommandComplete("SELECT 1") + Idle());

  // An error.
  s.Send(kUp, cpg::EncodeQuery("SELECT * FROM nope"));
  cpg::ErrorResponse err;
  err.fields = {{'S', "ERROR"}, {'V', "ERROR"},
                {'C', "42P01"}, {'M', "relation \"nope\" does not exist"},
                {'P', "15"},    {'F', "parse_relation.c"},
                {'L', "1392"},  {'R', "parserOpenTable"}};
  s.SendSplit(kDown, cpg::Encode(err) + Idle(), {2});

  s.Send(kUp, cpg::EncodeTerminate());
  return s.Finish();
}

size_t Pos(const std::string& haystack, absl::string_view needle) {
  const size_t p = haystack.find(std::string(needle));
  EXPECT_NE(p, std::string::npos) << "missing: " << needle;
  return p;
}

TEST(PgReplay, PsqlSessionIsDecoded) {
  PgRecording s;
  const std::vector<v1::Record> records = PsqlSession(s);
  ASSERT_TRUE(IsPostgresRecording(records));
  const std::string t = FormatPgTimeline(records, {});
  SCOPED_TRACE(t);

  // The header is FormatTimeline's.
  EXPECT_EQ(t.substr(0, t.find("\n\n") + 2), record::FormatTimelineHeader(records));
  EXPECT_THAT(t, HasSubstr("protocol     postgres"));

  // Start-up.
  EXPECT_THAT(t, HasSubstr("+1.000ms  agent   SSLRequest\n"));
  EXPECT_THAT(t, HasSubstr("+2.000ms  server  SSLRequest answer: N (declined"));
  EXPECT_THAT(t, HasSubstr("+4.000ms  agent   StartupMessage protocol 3.0\n"));
  EXPECT_THAT(
      t, HasSubstr("\n                          user = \"alice\"  (ignored: interlockd logs in "
                   "as the configured role)\n"));
  EXPECT_THAT(t, HasSubstr("database = \"appdb\"  (ignored"));
  EXPECT_THAT(t, HasSubstr("application_name = \"psql\"\n"));
  EXPECT_THAT(t, HasSubstr("server  Authentication: CleartextPassword"));
  EXPECT_THAT(t, HasSubstr("event  agent_password  password message (redacted)"));
  EXPECT_THAT(t, HasSubstr("server  Authentication: Ok"));
  EXPECT_THAT(t, HasSubstr("server  ParameterStatus: server_version = 15.8"));
  EXPECT_THAT(t, HasSubstr("server  BackendKeyData: pid 4242\n"));
  EXPECT_THAT(t, HasSubstr("server  ReadyForQuery: I (idle)"));

  // The simple query and its table.
  EXPECT_THAT(t, HasSubstr("+7.000ms  agent   Query: SELECT id, name, email\n"
                           "                          FROM accounts\n"
                           "                          ORDER BY id;\n"));
  EXPECT_THAT(t, HasSubstr("+14.000ms  server  result: 3 rows\n"
                           "                          | id | name  | email             |\n"
                           "                          |----+-------+-------------------|\n"
                           "                          | 1  | alice | alice@example.com |\n"
                           "                          | 2  | bob   | NULL              |\n"
                           "                          | 3  | carol | carol@example.com |\n"
                           "     +14.000ms  server  CommandComplete: SELECT 3\n"));

  // Extended protocol.
  EXPECT_THAT(t, HasSubstr("agent   Parse (unnamed): SELECT name FROM accounts WHERE id = $1 "
                           "AND note IS NOT DISTINCT FROM $2\n"
                           "                          parameter types: $1 int4, $2 text\n"));
  EXPECT_THAT(t, HasSubstr("agent   Bind: portal (unnamed), statement (unnamed), 2 parameters\n"
                           "                          $1 = '2'\n"
                           "                          $2 = NULL\n"));
  EXPECT_THAT(t, HasSubstr("agent   Describe: portal (unnamed)\n"));
  EXPECT_THAT(t, HasSubstr("agent   Execute: portal (unnamed)\n"));
  EXPECT_THAT(t, HasSubstr("agent   Sync\n"));
  EXPECT_THAT(t, HasSubstr("server  ParseComplete\n"));
  EXPECT_THAT(t, HasSubstr("server  BindComplete\n"));
  EXPECT_THAT(t, HasSubstr("server  result: 1 row\n"
                           "                          | name |\n"
                           "                          |------|\n"
                           "                          | bob  |\n"));
  EXPECT_THAT(t, HasSubstr("CommandComplete: SELECT 1\n"));

  // The error.
  EXPECT_THAT(t, HasSubstr("agent   Query: SELECT * FROM nope\n"));
  EXPECT_THAT(t, HasSubstr("server  ErrorResponse: ERROR  SQLSTATE 42P01  relation \"nope\" "
                           "does not exist\n"
                           "                          position: 15\n"));
  EXPECT_THAT(t, Not(HasSubstr("parse_relation.c")));

  EXPECT_THAT(t, HasSubstr("agent   Terminate\n"));
  EXPECT_THAT(t, HasSubstr("close  closed"));
  EXPECT_THAT(t, HasSubstr("seal   key " + s.key().Fingerprint()));
  EXPECT_THAT(t, Not(HasSubstr("undecodable")));
  EXPECT_THAT(t, Not(HasSubstr("incomplete")));
  EXPECT_THAT(t, Not(HasSubstr("agent -> upstream")));

  // In time order.
  EXPECT_LT(Pos(t, "SSLRequest\n"), Pos(t, "StartupMessage"));
  EXPECT_LT(Pos(t, "StartupMessage"), Pos(t, "agent_password"));
  EXPECT_LT(Pos(t, "agent_password"), Pos(t, "Authentication: Ok"));
  EXPECT_LT(Pos(t, "Query: SELECT id"), Pos(t, "result: 3 rows"));
  EXPECT_LT(Pos(t, "result: 3 rows"), Pos(t, "Parse (unnamed)"));
  EXPECT_LT(Pos(t, "Sync\n"), Pos(t, "ParseComplete"));
  EXPECT_LT(Pos(t, "result: 1 row\n"), Pos(t, "SQLSTATE 42P01"));
  EXPECT_LT(Pos(t, "SQLSTATE 42P01"), Pos(t, "Terminate"));
  EXPECT_LT(Pos(t, "Terminate"), Pos(t, "close  closed"));
}

// Records built by hand: all at one time, so that splitting cannot change the output.
class Records {
 public:
  Records() {
    v1::Record open;
    open.set_time_unix_nanos(1'000'000'000);
    *open.mutable_open() = SampleOpen();
    open.mutable_open()->set_protocol("postgres");
    records_.push_back(open);
  }
  Records& Add(v1::Direction dir, absl::string_view bytes, int64_t ms = 1) {
    v1::Record r;
    r.set_time_unix_nanos(1'000'000'000 + ms * 1'000'000);
    r.mutable_data()->set_direction(dir);
    r.mutable_data()->set_payload(std::string(bytes));
    records_.push_back(std::move(r));
    return *this;
  }
  Records& AddEvent(absl::string_view kind, absl::string_view detail = "", int64_t ms = 1) {
    v1::Record r;
    r.set_time_unix_nanos(1'000'000'000 + ms * 1'000'000);
    r.mutable_event()->set_kind(std::string(kind));
    r.mutable_event()->set_detail(std::string(detail));
    records_.push_back(std::move(r));
    return *this;
  }
  // A sealed original whose plaintext is `plain` once opened: its seq (its index) maps to
  // `plain` in originals().
  Records& AddSealed(v1::Direction dir, absl::string_view plain, int64_t ms = 1) {
    v1::Record r;
    r.set_seq(records_.size());
    r.set_time_unix_nanos(1'000'000'000 + ms * 1'000'000);
    r.mutable_sealed()->set_direction(dir);
    r.mutable_sealed()->set_ciphertext(std::string(plain.size() + record::kSealTagBytes, '?'));
    originals_[r.seq()] = std::string(plain);
    records_.push_back(std::move(r));
    return *this;
  }
  const std::vector<v1::Record>& get() const { return records_; }
  const record::UnsealedOriginals& originals() const { return originals_; }

 private:
  std::vector<v1::Record> records_;
  record::UnsealedOriginals originals_;
};

TEST(PgReplay, OneByteAtATimeGivesTheSameTimeline) {
  const std::vector<std::pair<v1::Direction, std::string>> steps = {
      {kUp, cpg::EncodeStartupMessage({{"user", "u"}})},
      {kDown, cpg::EncodeAuthenticationOk() + cpg::EncodeBackendKeyData(1, 2) + Idle()},
      {kUp, cpg::EncodeQuery("SELECT 1 AS a, 'x' AS b")},
      {kDown, RowDescription({Field("a", 23), Field("b", 25)}) + DataRow({"1", "x"}) +
                  CommandComplete("SELECT 1") + Idle()},
      {kUp, cpg::EncodeTerminate()},
  };
  Records whole, bytewise;
  for (const auto& [dir, bytes] : steps) {
    whole.Add(dir, bytes);
    for (char c : bytes) bytewise.Add(dir, absl::string_view(&c, 1));
  }
  const std::string a = FormatPgTimeline(whole.get(), {});
  EXPECT_EQ(a, FormatPgTimeline(bytewise.get(), {}));
  EXPECT_THAT(a, HasSubstr("| 1 | x |"));
  // Two messages in one record and one message across records are the same too.
  Records coalesced;
  coalesced.Add(kUp, steps[0].second).Add(kDown, steps[1].second);
  coalesced.Add(kUp, steps[2].second).Add(kDown, steps[3].second.substr(0, 9));
  coalesced.Add(kDown, steps[3].second.substr(9)).Add(kUp, steps[4].second);
  EXPECT_EQ(a, FormatPgTimeline(coalesced.get(), {}));
}

TEST(PgReplay, GarbageInTheMiddleIsShownAndTheRestOfThatDirectionIsRaw) {
  Records r;
  const std::string query = cpg::EncodeQuery("SELECT 1");
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));  // 16 bytes
  r.Add(kUp, query.substr(0, 4));
  r.Add(kUp, query.substr(4) + "\x01\x02garbage!");
  r.Add(kDown, CommandComplete("SELECT 1"));
  r.Add(kUp, cpg::EncodeQuery("SELECT 2"), 2);
  r.Add(kDown, Idle(), 3);
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("agent   Query: SELECT 1\n"));
  const size_t offset = 16 + query.size();
  EXPECT_THAT(t, HasSubstr(absl::StrCat("agent   undecodable bytes (10) at offset ", offset,
                                        ": \"\\x01\\x02garbage!\"\n")));
  EXPECT_THAT(t, HasSubstr("(unknown frontend message type 0x01; the rest of this direction is "
                           "shown raw)"));
  // Later agent records are raw; the server side still decodes.
  EXPECT_THAT(t, HasSubstr("+2.000ms  agent -> upstream        14 bytes  \"Q\\x00\\x00\\x00\\r"
                           "SELECT 2\\x00\""));
  EXPECT_THAT(t, Not(HasSubstr("Query: SELECT 2")));
  EXPECT_THAT(t, HasSubstr("server  CommandComplete: SELECT 1\n"));
  EXPECT_THAT(t, HasSubstr("+3.000ms  server  ReadyForQuery: I (idle)\n"));
}

TEST(PgReplay, ImpossibleLengthAndBadStartupLoseSync) {
  Records r;
  r.Add(kUp, std::string("\x00\x01\x11\x70", 4) + "junk");  // startup length 70000
  r.Add(kDown, std::string("Z\x7f\xff\xff\xff", 5));        // length > 1 GiB
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("agent   undecodable bytes (8) at offset 0"));
  EXPECT_THAT(t, HasSubstr("length 70000"));
  EXPECT_THAT(t, HasSubstr("server  undecodable bytes (5) at offset 0"));
}

TEST(PgReplay, MalformedBodyIsReportedAndDecodingGoesOn) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.Add(kDown, cpg::EncodeMessage('Z', "Q") + cpg::EncodeMessage('C', "no terminator") + Idle());
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("server  undecodable ReadyForQuery message (6 bytes) at offset 0: pg:"));
  EXPECT_THAT(t, HasSubstr("server  undecodable CommandComplete message (18 bytes) at offset 6"));
  EXPECT_THAT(t, HasSubstr("server  ReadyForQuery: I (idle)\n"));
}

TEST(PgReplay, TruncatedRecordingSaysWhatIsMissing) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.Add(kUp, cpg::EncodeQuery("SELECT pg_sleep(10)").substr(0, 10));
  r.Add(kDown, std::string("Z\x00", 2));
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("agent   incomplete Query of 25 bytes at offset 16: 10 bytes recorded"));
  EXPECT_THAT(t, HasSubstr("server  incomplete message header at offset 0: 2 bytes recorded"));
  EXPECT_THAT(t, HasSubstr("(no seal: recording incomplete)"));
}

TEST(PgReplay, ManyRowsAreCappedAndCounted) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  std::string rows = RowDescription({Field("n", 23)});
  for (int i = 1; i <= 60; ++i) rows += DataRow({absl::StrCat(i)});
  r.Add(kDown, rows + CommandComplete("SELECT 60"));
  const std::string t = FormatPgTimeline(r.get(), {});
  EXPECT_THAT(t, HasSubstr("result: 60 rows\n"));
  EXPECT_THAT(t, HasSubstr("| 50 |\n                          ... 10 more rows\n"));
  EXPECT_THAT(t, Not(HasSubstr("| 51 |")));
  const std::string two = FormatPgTimeline(r.get(), {.max_rows = 2});
  EXPECT_THAT(two, HasSubstr("| 2 |\n                          ... 58 more rows\n"));
}

TEST(PgReplay, BinaryLongAndHostileValues) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  cpg::Bind bind;
  bind.statement = "s1";
  bind.param_formats = {1, 0};
  const std::string long_text(1000, 'y');
  const std::string int4("\x00\x00\x00\x2a", 4);
  bind.params = {int4, long_text};
  r.Add(kUp, cpg::Encode(bind) + cpg::EncodeQuery("SELECT '\x1b[2J' AS x, 'Jos\xc3\xa9' AS y,"
                                                  " '\xe2\x80\xae' AS z, 'bad\xff'"));
  r.Add(kDown, RowDescription({Field("blob", 17, 1), Field("name", 25)}) +
                   DataRow({std::string("\xde\xad\xbe\xef", 4), "Jos\xc3\xa9\n"}) +
                   CommandComplete("SELECT 1"));
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("Bind: portal (unnamed), statement \"s1\", 2 parameters\n"));
  EXPECT_THAT(t, HasSubstr("$1 = \\x0000002a\n"));
  EXPECT_THAT(t, HasSubstr(absl::StrCat("$2 = '", std::string(80, 'y'), "'... (1000 bytes)\n")));
  // Control bytes, bidi overrides and invalid UTF-8 are escaped; valid UTF-8 is kept.
  EXPECT_THAT(t, HasSubstr("Query: SELECT '\\x1b[2J' AS x, 'Jos\xc3\xa9' AS y, '\\u{202e}' AS z,"
                           " 'bad\\xff'"));
  EXPECT_THAT(t, Not(HasSubstr("\x1b")));
  EXPECT_THAT(t, HasSubstr("| blob       | name   |\n"));
  EXPECT_THAT(t, HasSubstr("| \\xdeadbeef | Jos\xc3\xa9\\n |\n"));
}

TEST(PgReplay, CopyIsSummarizedAndPasswordsNeverShown) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.Add(kDown, cpg::EncodeAuthenticationCleartextPassword());
  r.Add(kUp, cpg::EncodePasswordMessage("hunter2"));
  r.Add(kUp, cpg::EncodeQuery("COPY t FROM STDIN"));
  cpg::CopyInResponse in;
  in.column_formats = {0, 0};
  r.Add(kDown, cpg::Encode(in));
  const std::string chunk(8192, 'r');
  r.Add(kUp, cpg::Encode(cpg::CopyData{chunk}).substr(0, 100));
  r.Add(kUp, cpg::Encode(cpg::CopyData{chunk}).substr(100) + cpg::Encode(cpg::CopyDone{}));
  r.Add(kDown, CommandComplete("COPY 512"));
  r.Add(kUp, cpg::EncodeQuery("COPY t TO STDOUT"));
  r.Add(kDown, cpg::Encode(cpg::CopyOutResponse{}) + cpg::Encode(cpg::CopyData{"a\n"}) +
                   cpg::Encode(cpg::CopyData{"bc\n"}) + cpg::Encode(cpg::CopyDone{}));
  const std::string t = FormatPgTimeline(r.get(), {.raw = {.hexdump = true}});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("agent   PasswordMessage (8 bytes, not shown)\n"));
  EXPECT_THAT(t, Not(HasSubstr("hunter2")));
  EXPECT_THAT(t, HasSubstr("server  CopyInResponse: text, 2 columns\n"));
  EXPECT_THAT(t, HasSubstr("agent   COPY data 8192 bytes\n"));
  EXPECT_LT(Pos(t, "COPY data 8192 bytes"), Pos(t, "agent   CopyDone"));
  EXPECT_THAT(t, HasSubstr("server  COPY data 5 bytes in 2 messages\n"));
  EXPECT_THAT(t, Not(HasSubstr("rrrrrrrr")));       // CopyData is summarized, not dumped
  EXPECT_THAT(t, HasSubstr("|Q....COPY t FROM|"));  // the hexdump of the Query
}

TEST(PgReplay, NoticesNotificationsAndDescribeOnlyAnswers) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  cpg::NoticeResponse notice;
  notice.fields = {{'S', "WARNING"},
                   {'C', "01000"},
                   {'M', "careful"},
                   {'D', "line one\nline two"},
                   {'H', "do not"}};
  cpg::NotificationResponse note;
  note.process_id = 77;
  note.channel = "jobs";
  note.payload = "42";
  cpg::ParameterDescription params;
  params.type_oids = {23};
  r.Add(kDown, cpg::Encode(notice) + cpg::Encode(note) + cpg::Encode(params) +
                   RowDescription({Field("id", 23)}) + Idle() +
                   cpg::EncodeReadyForQuery(cpg::TransactionStatus::kFailed));
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("NoticeResponse: WARNING  SQLSTATE 01000  careful\n"
                           "                          detail: line one\n"
                           "                                  line two\n"
                           "                          hint: do not\n"));
  EXPECT_THAT(t, HasSubstr("NotificationResponse: channel \"jobs\" from pid 77\n"
                           "                          payload: 42\n"));
  EXPECT_THAT(t, HasSubstr("ParameterDescription: $1 int4\n"));
  EXPECT_THAT(t, HasSubstr("server  RowDescription: id int4\n"));
  EXPECT_THAT(t, HasSubstr("ReadyForQuery: E (failed transaction)\n"));
}

TEST(PgReplay, EmptyAndNonPostgresRecordings) {
  EXPECT_EQ(FormatPgTimeline({}, {}), "(no records)\n");
  EXPECT_FALSE(IsPostgresRecording({}));
  Records r;
  EXPECT_TRUE(IsPostgresRecording(r.get()));
  std::vector<v1::Record> tcp = r.get();
  tcp[0].mutable_open()->set_protocol("tcp");
  EXPECT_FALSE(IsPostgresRecording(tcp));
}

TEST(PgReplay, RandomAndMutatedBytesNeverCrash) {
  // A real session's records, then the same with random bytes flipped and random cuts.
  PgRecording s;
  const std::vector<v1::Record> session = PsqlSession(s);
  std::mt19937 rng(12345);
  for (int round = 0; round < 500; ++round) {
    Records r;
    for (const v1::Record& rec : session) {
      if (!rec.has_data()) continue;
      std::string bytes = rec.data().payload();
      if (rng() % 4 == 0 && !bytes.empty()) bytes[rng() % bytes.size()] = static_cast<char>(rng());
      if (rng() % 16 == 0) bytes.resize(rng() % (bytes.size() + 1));
      const size_t cut = bytes.empty() ? 0 : rng() % bytes.size();
      r.Add(rec.data().direction(), bytes.substr(0, cut));
      r.Add(rec.data().direction(), bytes.substr(cut));
    }
    for (int i = 0; i < 3; ++i) {
      std::string noise(rng() % 40, '\0');
      for (char& c : noise) c = static_cast<char>(rng());
      r.Add(rng() % 2 ? kUp : kDown, noise);
      r.AddSealed(rng() % 2 ? kUp : kDown, rng() % 2 ? noise : DataRow({noise}));
    }
    const bool open = rng() % 2;
    const std::string t = FormatPgTimeline(
        r.get(), {.max_rows = rng() % 3, .raw = {.originals = open ? &r.originals() : nullptr}});
    EXPECT_THAT(t, HasSubstr("protocol     postgres"));
  }
}

// ---- sealed originals (the DataRows masking replaced) ----

TEST(PgReplay, OpenedOriginalsOfAClosedResultArePrintedAtOnce) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.Add(kUp, cpg::EncodeQuery("SELECT id, email FROM users"));
  r.Add(kDown, RowDescription({Field("id", 23), Field("email", 25)}) +
                   DataRow({"1", "a***@example.com"}) + DataRow({"2", "b***@example.com"}) +
                   CommandComplete("SELECT 2") + Idle());
  const std::string originals =
      DataRow({"1", "alice@example.com"}) + DataRow({"2", "bob@example.com"});
  r.AddSealed(kDown, originals);

  const std::string shut = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(shut);
  EXPECT_THAT(shut, HasSubstr(absl::StrCat("upstream -> agent  [sealed original: ",
                                           originals.size(), " bytes]\n")));
  EXPECT_THAT(shut, Not(HasSubstr("alice@")));

  const std::string t = FormatPgTimeline(r.get(), {.raw = {.originals = &r.originals()}});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("| 1  | a***@example.com |\n"));
  EXPECT_THAT(t, HasSubstr("server  original rows (sealed, before masking): 2 rows\n"
                           "                          | id | email             |\n"
                           "                          |----+-------------------|\n"
                           "                          | 1  | alice@example.com |\n"
                           "                          | 2  | bob@example.com   |\n"));
  EXPECT_LT(Pos(t, "ReadyForQuery"), Pos(t, "original rows"));
}

TEST(PgReplay, OriginalsArrivingDuringAResultArePrintedUnderIt) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.Add(kDown, RowDescription({Field("id", 23), Field("card", 25)}) + DataRow({"1", "4111-****"}));
  r.AddSealed(kDown, DataRow({"1", "4111-1111"}));
  r.Add(kDown, DataRow({"2", "5500-****"}));
  r.AddSealed(kDown, DataRow({"2", "5500-0000"}));
  r.Add(kDown, CommandComplete("SELECT 2") + Idle());

  const std::string t = FormatPgTimeline(r.get(), {.raw = {.originals = &r.originals()}});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("server  result: 2 rows\n"
                           "                          | id | card      |\n"
                           "                          |----+-----------|\n"
                           "                          | 1  | 4111-**** |\n"
                           "                          | 2  | 5500-**** |\n"));
  EXPECT_THAT(t, HasSubstr("server  original rows (sealed, before masking): 2 rows\n"
                           "                          | id | card      |\n"
                           "                          |----+-----------|\n"
                           "                          | 1  | 4111-1111 |\n"
                           "                          | 2  | 5500-0000 |\n"));
  EXPECT_LT(Pos(t, "result: 2 rows"), Pos(t, "original rows"));
  EXPECT_LT(Pos(t, "original rows"), Pos(t, "CommandComplete: SELECT 2"));

  // Not opened: counted under the result.
  const std::string shut = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(shut);
  EXPECT_THAT(shut, HasSubstr("server  [sealed originals: 50 bytes in 2 records]\n"));
  EXPECT_THAT(shut, Not(HasSubstr("4111-1111")));
  EXPECT_THAT(shut, Not(HasSubstr("original rows")));
}

// ---- statement literals withheld (literal_withholding.h) ----

TEST(PgReplay, WithheldLiteralsShowAsWithheldAndTheirOriginalsOpenWithTheKey) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.AddEvent("literals_withheld", "statement literals recorded as $n");
  r.Add(kUp, cpg::EncodeQuery("SELECT id FROM cards WHERE pan = $1"));
  r.AddSealed(kUp, cpg::EncodeQuery("SELECT id FROM cards WHERE pan = '4111111111111111'"));
  cpg::Bind shown;
  shown.statement = "s1";
  shown.params = {absl::string_view(""), std::nullopt};
  cpg::Bind original = shown;
  original.params = {absl::string_view("5500000000000004"), std::nullopt};
  r.Add(kUp, cpg::Encode(shown));
  r.AddSealed(kUp, cpg::Encode(original));

  const std::string shut = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(shut);
  EXPECT_THAT(shut, HasSubstr("agent   Query: SELECT id FROM cards WHERE pan = $1\n"));
  EXPECT_THAT(shut, HasSubstr("$1 = (withheld)\n"));
  EXPECT_THAT(shut, HasSubstr("$2 = NULL\n"));
  EXPECT_THAT(shut, Not(HasSubstr("4111111111111111")));
  EXPECT_THAT(shut, Not(HasSubstr("5500000000000004")));

  const std::string t = FormatPgTimeline(r.get(), {.raw = {.originals = &r.originals()}});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("agent   original Query: SELECT id FROM cards WHERE pan = '4111111111111111'\n"));
  EXPECT_THAT(t, HasSubstr("agent   original Bind: portal (unnamed), statement \"s1\"\n"));
  EXPECT_THAT(t, HasSubstr("4111111111111111"));
  EXPECT_THAT(t, HasSubstr("5500000000000004"));
}

TEST(PgReplay, AnEmptyValueIsAnEmptyStringWhenNothingWasWithheld) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  cpg::Bind b;
  b.params = {absl::string_view("")};
  r.Add(kUp, cpg::Encode(b));
  const std::string t = FormatPgTimeline(r.get(), {});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("$1 = ''\n"));
}

TEST(PgReplay, OriginalCopyDataAndUndecodableOriginals) {
  Records r;
  r.Add(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  r.Add(kDown, cpg::Encode(cpg::CopyOutResponse{}) + cpg::Encode(cpg::CopyData{"1\t***\n"}));
  r.AddSealed(kDown, cpg::Encode(cpg::CopyData{"1\tsecret\n"}));
  r.Add(kDown, cpg::Encode(cpg::CopyDone{}) + CommandComplete("COPY 1"));
  r.AddSealed(kDown, "\x01garbage");
  r.AddSealed(kDown, DataRow({"after"}));  // shown raw: the direction lost sync
  const std::string t = FormatPgTimeline(r.get(), {.raw = {.originals = &r.originals()}});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("server  original CopyData (14 bytes): \"1\\tsecret\\n\"\n"));
  EXPECT_THAT(t,
              HasSubstr("server  original: undecodable bytes (8) at offset 14: \"\\x01garbage\""));
  EXPECT_THAT(t, HasSubstr("upstream -> agent        16 bytes  original  \"D\\x00"));
  EXPECT_LT(Pos(t, "COPY data 6 bytes"), Pos(t, "original CopyData"));
}

TEST(PgReplay, RealRecordingWithSealedOriginalsOpensWithTheAuditorKey) {
  record::AuditorPrivateKey auditor = record::AuditorPrivateKey::Generate();
  PgRecording s({.auditor_public_key = auditor.public_key()});
  s.Send(kUp, cpg::EncodeStartupMessage({{"user", "u"}}));
  s.Send(kUp, cpg::EncodeQuery("SELECT ssn FROM people"));
  s.Send(kDown, RowDescription({Field("ssn", 25)}) + DataRow({"***-**-6789"}) +
                    CommandComplete("SELECT 1") + Idle());
  s.Sealed(kDown, DataRow({"123-45-6789"}));
  const std::vector<v1::Record> records = s.Finish();

  auto originals = record::UnsealOriginals(records, auditor);
  ASSERT_TRUE(originals.ok()) << originals.status();
  const std::string t = FormatPgTimeline(records, {.raw = {.originals = &*originals}});
  SCOPED_TRACE(t);
  EXPECT_THAT(t, HasSubstr("| ***-**-6789 |"));
  EXPECT_THAT(t, HasSubstr("original rows (sealed, before masking): 1 row\n"
                           "                          | ssn         |\n"
                           "                          |-------------|\n"
                           "                          | 123-45-6789 |\n"));
  EXPECT_THAT(FormatPgTimeline(records, {}), Not(HasSubstr("123-45")));
  EXPECT_EQ(record::UnsealOriginals(records, record::AuditorPrivateKey::Generate())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace interlock::replay
