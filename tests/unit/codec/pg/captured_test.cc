// Real bytes from psql / pgbench sessions (captured_bytes.h): the codec must frame, parse and
// re-encode them exactly.
#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/codec/pg/captured_bytes.h"
#include "tests/unit/codec/pg/pg_check.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::codec::pg {
namespace {

using captured::Bytes;
using ::testing::ElementsAre;
using ::testing::Pair;

// Splits a captured read into frames; fails the test if bytes are left over.
std::vector<Frame> FramesOf(absl::string_view bytes) {
  std::vector<Frame> frames;
  while (!bytes.empty()) {
    absl::StatusOr<std::optional<Frame>> f = PeekFrame(bytes, kMaxMessageBytes);
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok() || !f->has_value()) {
      ADD_FAILURE() << bytes.size() << " bytes left unframed";
      break;
    }
    frames.push_back(**f);
    bytes.remove_prefix((*f)->total_bytes);
  }
  return frames;
}

std::string Types(const std::vector<Frame>& frames) {
  std::string types;
  for (const Frame& f : frames) types.push_back(f.type);
  return types;
}

// Every frame must be accepted by a parser of its direction, and re-encode to the same bytes
// (pg_check.h aborts otherwise).
void ExpectEveryFrameParses(absl::string_view bytes, bool from_frontend) {
  for (const Frame& f : FramesOf(bytes)) {
    int accepted = 0;
    for (const testing::ParserEntry& p : testing::kParsers) {
      if (p.type == f.type && p.from_frontend == from_frontend) {
        accepted += p.check(p.type, f.body) ? 1 : 0;
      }
    }
    EXPECT_GE(accepted, 1) << MessageName(f.type, from_frontend);
  }
}

TEST(PgCaptured, SslRequestIsRefusedWithOneUnframedByte) {
  absl::StatusOr<std::optional<Frame>> f = PeekStartupFrame(Bytes(captured::kSslRequest));
  ASSERT_TRUE(f.ok() && f->has_value());
  absl::StatusOr<StartupPacket> p = ParseStartupPacket((*f)->body);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(std::holds_alternative<SslRequest>(*p));
  EXPECT_EQ(EncodeSslRequest(), Bytes(captured::kSslRequest));
  // The answer is a bare 'N' (or 'S'), not a message: the proxy reads one byte there.
  EXPECT_EQ(Bytes(captured::kSslRefused), "N");
}

TEST(PgCaptured, PsqlStartupMessage) {
  absl::StatusOr<std::optional<Frame>> f = PeekStartupFrame(Bytes(captured::kStartupMessage));
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->length, 55u);
  EXPECT_EQ((*f)->total_bytes, Bytes(captured::kStartupMessage).size());
  absl::StatusOr<StartupPacket> p = ParseStartupPacket((*f)->body);
  ASSERT_TRUE(p.ok()) << p.status();
  const StartupMessage& m = std::get<StartupMessage>(*p);
  EXPECT_EQ(m.major_version, 3);
  EXPECT_EQ(m.minor_version, 0);
  EXPECT_THAT(m.params, ElementsAre(Pair("user", "alice"), Pair("database", "app"),
                                    Pair("application_name", "psql")));
  EXPECT_EQ(m.Find("user"), "alice");
  EXPECT_EQ(EncodeStartupMessage(m.params), Bytes(captured::kStartupMessage));
}

TEST(PgCaptured, AuthenticationSaslScramSha256) {
  std::vector<Frame> frames = FramesOf(Bytes(captured::kAuthenticationSasl));
  ASSERT_EQ(frames.size(), 1u);
  absl::StatusOr<Authentication> a = ParseAuthentication(frames[0].body);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->code, AuthCode::kSasl);
  EXPECT_THAT(a->sasl_mechanisms, ElementsAre("SCRAM-SHA-256"));
  EXPECT_EQ(EncodeAuthenticationSasl({"SCRAM-SHA-256"}), Bytes(captured::kAuthenticationSasl));
}

TEST(PgCaptured, ScramExchange) {
  std::vector<Frame> first = FramesOf(Bytes(captured::kSaslInitialResponse));
  ASSERT_EQ(first.size(), 1u);
  absl::StatusOr<SaslInitialResponse> init = ParseSaslInitialResponse(first[0].body);
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_EQ(init->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(init->data, "n,,n=,r=3s7jV3HEggh925+OgIuoGviA");
  // The same 'p' body is not a PasswordMessage: the caller must know which one it expects.
  EXPECT_FALSE(ParsePasswordMessage(first[0].body).ok());

  std::vector<Frame> server_first = FramesOf(Bytes(captured::kSaslContinue));
  ASSERT_EQ(server_first.size(), 1u);
  absl::StatusOr<Authentication> cont = ParseAuthentication(server_first[0].body);
  ASSERT_TRUE(cont.ok()) << cont.status();
  EXPECT_EQ(cont->code, AuthCode::kSaslContinue);
  EXPECT_TRUE(absl::StartsWith(cont->data, "r=3s7jV3HEggh925+OgIuoGviA"));
  EXPECT_TRUE(absl::EndsWith(cont->data, ",i=4096"));

  std::vector<Frame> client_final = FramesOf(Bytes(captured::kSaslResponse));
  ASSERT_EQ(client_final.size(), 1u);
  absl::StatusOr<SaslResponse> resp = ParseSaslResponse(client_final[0].body);
  ASSERT_TRUE(resp.ok());
  EXPECT_TRUE(absl::StartsWith(resp->data, "c=biws,r="));
  EXPECT_EQ(EncodeSaslResponse(resp->data), Bytes(captured::kSaslResponse));
}

TEST(PgCaptured, LoginCompletionInOneRead) {
  absl::string_view bytes = Bytes(captured::kLoginCompletion);
  std::vector<Frame> frames = FramesOf(bytes);
  EXPECT_EQ(Types(frames), "RRSSSSSSSSSSSSSKZ");
  ASSERT_EQ(frames.size(), 17u);

  absl::StatusOr<Authentication> final = ParseAuthentication(frames[0].body);
  ASSERT_TRUE(final.ok());
  EXPECT_EQ(final->code, AuthCode::kSaslFinal);
  EXPECT_EQ(final->data, "v=ixlOmvv2TnXAXMmV3erSuoza/aCwOVhIIssRk/RezAs=");
  absl::StatusOr<Authentication> ok = ParseAuthentication(frames[1].body);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->code, AuthCode::kOk);

  absl::StatusOr<ParameterStatus> app = ParseParameterStatus(frames[2].body);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->name, "application_name");
  EXPECT_EQ(app->value, "psql");
  absl::StatusOr<ParameterStatus> version = ParseParameterStatus(frames[11].body);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->name, "server_version");
  EXPECT_EQ(version->value, "15.18 (Debian 15.18-0+deb12u1)");

  absl::StatusOr<BackendKeyData> key = ParseBackendKeyData(frames[15].body);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->process_id, 0x0b0b);
  EXPECT_EQ(static_cast<uint32_t>(key->secret_key), 0x94484cf4u);
  absl::StatusOr<ReadyForQuery> ready = ParseReadyForQuery(frames[16].body);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, TransactionStatus::kIdle);

  // Re-encoding every message from its parsed form gives back the read byte for byte.
  std::string again = EncodeAuthenticationSaslFinal(final->data) + EncodeAuthenticationOk();
  for (size_t i = 2; i < 15; ++i) again += Encode(*ParseParameterStatus(frames[i].body));
  again += EncodeBackendKeyData(key->process_id, key->secret_key);
  again += EncodeReadyForQuery(TransactionStatus::kIdle);
  EXPECT_EQ(again, bytes);
}

TEST(PgCaptured, SimpleQuerySelect1) {
  std::vector<Frame> query = FramesOf(Bytes(captured::kQuerySelect1));
  ASSERT_EQ(query.size(), 1u);
  absl::StatusOr<Query> q = ParseQuery(query[0].body);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->query, "SELECT 1");
  EXPECT_EQ(EncodeQuery("SELECT 1"), Bytes(captured::kQuerySelect1));

  std::vector<Frame> result = FramesOf(Bytes(captured::kSelect1Result));
  EXPECT_EQ(Types(result), "TDCZ");
  ASSERT_EQ(result.size(), 4u);
  absl::StatusOr<RowDescription> desc = ParseRowDescription(result[0].body);
  ASSERT_TRUE(desc.ok()) << desc.status();
  EXPECT_EQ(desc->fields, (std::vector<FieldDescription>{{.name = "?column?",
                                                          .table_oid = 0,
                                                          .column_attr = 0,
                                                          .type_oid = 23,  // int4
                                                          .type_size = 4,
                                                          .type_modifier = -1,
                                                          .format = 0}}));
  absl::StatusOr<DataRow> row = ParseDataRow(result[1].body);
  ASSERT_TRUE(row.ok());
  EXPECT_THAT(row->columns, ElementsAre(std::optional<absl::string_view>("1")));
  absl::StatusOr<CommandComplete> done = ParseCommandComplete(result[2].body);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->tag, "SELECT 1");
  EXPECT_EQ(CommandTagRowCount(done->tag), 1u);

  EXPECT_EQ(EncodeTerminate(), Bytes(captured::kTerminate));
}

TEST(PgCaptured, ExtendedQueryProtocol) {
  std::vector<Frame> sent = FramesOf(Bytes(captured::kExtendedQuery));
  EXPECT_EQ(Types(sent), "PBDES");
  ASSERT_EQ(sent.size(), 5u);
  absl::StatusOr<Parse> parse = ParseParse(sent[0].body);
  ASSERT_TRUE(parse.ok());
  EXPECT_EQ(parse->statement, "");
  EXPECT_EQ(parse->query, "SELECT $1::int AS x, NULL AS n;");
  EXPECT_TRUE(parse->param_type_oids.empty());
  absl::StatusOr<Bind> bind = ParseBind(sent[1].body);
  ASSERT_TRUE(bind.ok()) << bind.status();
  EXPECT_EQ(bind->portal, "");
  EXPECT_TRUE(bind->param_formats.empty());  // all text
  EXPECT_THAT(bind->params, ElementsAre(std::optional<absl::string_view>("5")));
  EXPECT_THAT(bind->result_formats, ElementsAre(0));
  absl::StatusOr<Describe> describe = ParseDescribe(sent[2].body);
  ASSERT_TRUE(describe.ok());
  EXPECT_EQ(describe->kind, TargetKind::kPortal);
  absl::StatusOr<Execute> execute = ParseExecute(sent[3].body);
  ASSERT_TRUE(execute.ok());
  EXPECT_EQ(execute->max_rows, 0);
  EXPECT_TRUE(ParseSync(sent[4].body).ok());
  ExpectEveryFrameParses(Bytes(captured::kExtendedQuery), /*from_frontend=*/true);

  std::vector<Frame> got = FramesOf(Bytes(captured::kExtendedResult));
  EXPECT_EQ(Types(got), "12TDCZ");
  ASSERT_EQ(got.size(), 6u);
  absl::StatusOr<RowDescription> desc = ParseRowDescription(got[2].body);
  ASSERT_TRUE(desc.ok());
  ASSERT_EQ(desc->fields.size(), 2u);
  EXPECT_EQ(desc->fields[1].name, "n");
  EXPECT_EQ(desc->fields[1].type_oid, 25u);  // text
  EXPECT_EQ(desc->fields[1].type_size, -1);
  absl::StatusOr<DataRow> row = ParseDataRow(got[3].body);
  ASSERT_TRUE(row.ok());
  EXPECT_THAT(row->columns, ElementsAre(std::optional<absl::string_view>("5"), std::nullopt));
  ExpectEveryFrameParses(Bytes(captured::kExtendedResult), /*from_frontend=*/false);
}

TEST(PgCaptured, ErrorResponseDivisionByZero) {
  std::vector<Frame> frames = FramesOf(Bytes(captured::kDivByZeroError));
  ASSERT_EQ(frames.size(), 1u);
  absl::StatusOr<ErrorResponse> e = ParseErrorResponse(frames[0].body);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->severity(), "ERROR");
  EXPECT_EQ(e->Find(field::kSeverityNonLocalized), "ERROR");
  EXPECT_EQ(e->sqlstate(), "22012");
  EXPECT_EQ(e->message(), "division by zero");
  EXPECT_EQ(e->detail(), "");
  EXPECT_EQ(e->hint(), "");
  EXPECT_EQ(e->Find(field::kFile), "int.c");
  EXPECT_EQ(e->Find(field::kRoutine), "int4div");
  EXPECT_EQ(Encode(*e), Bytes(captured::kDivByZeroError));
}

TEST(PgCaptured, CopyOut) {
  std::vector<Frame> frames = FramesOf(Bytes(captured::kCopyOutResult));
  EXPECT_EQ(Types(frames), "HddcCZ");
  ASSERT_EQ(frames.size(), 6u);
  absl::StatusOr<CopyOutResponse> out = ParseCopyOutResponse(frames[0].body);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->format, 0);
  EXPECT_THAT(out->column_formats, ElementsAre(0));
  EXPECT_EQ(ParseCopyData(frames[1].body)->data, "1\n");
  EXPECT_EQ(ParseCopyData(frames[2].body)->data, "2\n");
  EXPECT_TRUE(ParseCopyDone(frames[3].body).ok());
  EXPECT_EQ(CommandTagRowCount(ParseCommandComplete(frames[4].body)->tag), 2u);
  ExpectEveryFrameParses(Bytes(captured::kCopyOutResult), /*from_frontend=*/false);
  ExpectEveryFrameParses(Bytes(captured::kQueryCopyOut), /*from_frontend=*/true);
  ExpectEveryFrameParses(Bytes(captured::kQueryDivByZero), /*from_frontend=*/true);
}

}  // namespace
}  // namespace interlock::codec::pg
