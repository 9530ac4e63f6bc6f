// encode.h: Parse(Encode(x)) == x for every message type, exact bytes of the convenience
// encoders, and the preconditions that abort.
#include "userspace/codec/pg/encode.h"

#include <string>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::codec::pg {
namespace {

using namespace std::string_literals;  // NOLINT: "..."s keeps embedded NULs

// Frames Encode(x), checks its type byte and that the frame is the whole encoding, parses the
// body with `parse` and compares with x.
template <typename T>
void ExpectRoundTrip(const T& x, absl::StatusOr<T> (*parse)(absl::string_view), char type) {
  const std::string wire = Encode(x);
  absl::StatusOr<std::optional<Frame>> f = PeekFrame(wire, kMaxMessageBytes);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->type, type);
  EXPECT_EQ((*f)->total_bytes, wire.size());
  absl::StatusOr<T> y = parse((*f)->body);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_TRUE(*y == x) << MessageName(type, true) << "/" << MessageName(type, false);
}

void ExpectStartupRoundTrip(const StartupPacket& x) {
  const std::string wire = std::visit([](const auto& m) { return Encode(m); }, x);
  absl::StatusOr<std::optional<Frame>> f = PeekStartupFrame(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->total_bytes, wire.size());
  absl::StatusOr<StartupPacket> y = ParseStartupPacket((*f)->body);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_TRUE(*y == x) << x.index();
}

TEST(PgEncode, StartupPhaseRoundTrips) {
  ExpectStartupRoundTrip(StartupMessage{});
  ExpectStartupRoundTrip(StartupMessage{
      .params = {{"user", "alice"}, {"database", "app"}, {"options", ""}, {"user", "bob"}}});
  ExpectStartupRoundTrip(StartupMessage{.minor_version = 2, .params = {{"_pq_.x", "1"}}});
  ExpectStartupRoundTrip(StartupMessage{.major_version = 2});  // params not kept for 2.0
  ExpectStartupRoundTrip(SslRequest{});
  ExpectStartupRoundTrip(GssEncRequest{});
  ExpectStartupRoundTrip(CancelRequest{.process_id = 1, .secret_key = INT32_MIN});
}

TEST(PgEncode, FrontendRoundTrips) {
  const std::string binary = "\0\1\xff"s;
  ExpectRoundTrip(Bind{}, &ParseBind, 'B');
  ExpectRoundTrip(Bind{.portal = "p",
                       .statement = "s",
                       .param_formats = {0, 1, -1},
                       .params = {std::nullopt, "", binary},
                       .result_formats = {1}},
                  &ParseBind, 'B');
  ExpectRoundTrip(Close{.kind = TargetKind::kPortal, .name = "c"}, &ParseClose, 'C');
  ExpectRoundTrip(Close{}, &ParseClose, 'C');
  ExpectRoundTrip(CopyData{binary}, &ParseCopyData, 'd');
  ExpectRoundTrip(CopyData{}, &ParseCopyData, 'd');
  ExpectRoundTrip(CopyDone{}, &ParseCopyDone, 'c');
  ExpectRoundTrip(CopyFail{"no space"}, &ParseCopyFail, 'f');
  ExpectRoundTrip(Describe{.kind = TargetKind::kStatement, .name = "s1"}, &ParseDescribe, 'D');
  ExpectRoundTrip(Execute{.portal = "", .max_rows = -1}, &ParseExecute, 'E');
  ExpectRoundTrip(Flush{}, &ParseFlush, 'H');
  ExpectRoundTrip(FunctionCall{.function_oid = 0xffffffff,
                               .arg_formats = {1},
                               .args = {binary, std::nullopt},
                               .result_format = 1},
                  &ParseFunctionCall, 'F');
  ExpectRoundTrip(Parse{.statement = "s", .query = "SELECT $1, $2", .param_type_oids = {0, 23}},
                  &ParseParse, 'P');
  ExpectRoundTrip(PasswordMessage{"md5" + std::string(32, 'a')}, &ParsePasswordMessage, 'p');
  ExpectRoundTrip(SaslInitialResponse{.mechanism = "SCRAM-SHA-256", .data = std::nullopt},
                  &ParseSaslInitialResponse, 'p');
  ExpectRoundTrip(SaslInitialResponse{.mechanism = "SCRAM-SHA-256", .data = ""},
                  &ParseSaslInitialResponse, 'p');
  ExpectRoundTrip(SaslResponse{"c=biws,r=abc,p=xyz"}, &ParseSaslResponse, 'p');
  ExpectRoundTrip(GssResponse{binary}, &ParseGssResponse, 'p');
  ExpectRoundTrip(Query{"SELECT 'ü' -- utf-8"}, &ParseQuery, 'Q');
  ExpectRoundTrip(Sync{}, &ParseSync, 'S');
  ExpectRoundTrip(Terminate{}, &ParseTerminate, 'X');
}

TEST(PgEncode, BackendRoundTrips) {
  const std::string binary = "\0\1\xff"s;
  ExpectRoundTrip(Authentication{}, &ParseAuthentication, 'R');
  for (AuthCode code :
       {AuthCode::kKerberosV5, AuthCode::kCleartextPassword, AuthCode::kGss, AuthCode::kSspi}) {
    ExpectRoundTrip(Authentication{.code = code}, &ParseAuthentication, 'R');
  }
  ExpectRoundTrip(
      Authentication{.code = AuthCode::kMd5Password, .md5_salt = {'\0', 'a', '\xff', 'z'}},
      &ParseAuthentication, 'R');
  ExpectRoundTrip(Authentication{.code = AuthCode::kSasl, .sasl_mechanisms = {"A", "B"}},
                  &ParseAuthentication, 'R');
  ExpectRoundTrip(Authentication{.code = AuthCode::kSasl}, &ParseAuthentication, 'R');
  for (AuthCode code : {AuthCode::kGssContinue, AuthCode::kSaslContinue, AuthCode::kSaslFinal}) {
    ExpectRoundTrip(Authentication{.code = code, .data = binary}, &ParseAuthentication, 'R');
  }
  ExpectRoundTrip(BackendKeyData{.process_id = 4242, .secret_key = -1}, &ParseBackendKeyData, 'K');
  ExpectRoundTrip(BindComplete{}, &ParseBindComplete, '2');
  ExpectRoundTrip(CloseComplete{}, &ParseCloseComplete, '3');
  ExpectRoundTrip(CommandComplete{"INSERT 0 5"}, &ParseCommandComplete, 'C');
  CopyInResponse in;
  in.format = 1;
  in.column_formats = {1, 1};
  ExpectRoundTrip(in, &ParseCopyInResponse, 'G');
  CopyOutResponse out;
  out.column_formats = {0};
  ExpectRoundTrip(out, &ParseCopyOutResponse, 'H');
  ExpectRoundTrip(CopyBothResponse{}, &ParseCopyBothResponse, 'W');
  ExpectRoundTrip(DataRow{}, &ParseDataRow, 'D');
  ExpectRoundTrip(DataRow{{"1", std::nullopt, "", binary}}, &ParseDataRow, 'D');
  ErrorResponse error;
  error.fields = {{'S', "ERROR"}, {'C', "42501"}, {'M', "permission denied"}, {'Z', ""}};
  ExpectRoundTrip(error, &ParseErrorResponse, 'E');
  ExpectRoundTrip(ErrorResponse{}, &ParseErrorResponse, 'E');
  NoticeResponse notice;
  notice.fields = {{'S', "NOTICE"}, {'M', "hello"}};
  ExpectRoundTrip(notice, &ParseNoticeResponse, 'N');
  ExpectRoundTrip(EmptyQueryResponse{}, &ParseEmptyQueryResponse, 'I');
  ExpectRoundTrip(FunctionCallResponse{}, &ParseFunctionCallResponse, 'V');
  ExpectRoundTrip(FunctionCallResponse{binary}, &ParseFunctionCallResponse, 'V');
  ExpectRoundTrip(NegotiateProtocolVersion{.newest_minor = 0, .unrecognized_options = {"_pq_.a"}},
                  &ParseNegotiateProtocolVersion, 'v');
  ExpectRoundTrip(NoData{}, &ParseNoData, 'n');
  ExpectRoundTrip(NotificationResponse{.process_id = 7, .channel = "c", .payload = ""},
                  &ParseNotificationResponse, 'A');
  ExpectRoundTrip(ParameterDescription{{23, 0xffffffff}}, &ParseParameterDescription, 't');
  ExpectRoundTrip(ParameterStatus{.name = "TimeZone", .value = "UTC"}, &ParseParameterStatus, 'S');
  ExpectRoundTrip(ParseComplete{}, &ParseParseComplete, '1');
  ExpectRoundTrip(PortalSuspended{}, &ParsePortalSuspended, 's');
  for (TransactionStatus s :
       {TransactionStatus::kIdle, TransactionStatus::kInTransaction, TransactionStatus::kFailed}) {
    ExpectRoundTrip(ReadyForQuery{s}, &ParseReadyForQuery, 'Z');
  }
  ExpectRoundTrip(RowDescription{{{.name = "a",
                                   .table_oid = 1,
                                   .column_attr = -2,
                                   .type_oid = 3,
                                   .type_size = -1,
                                   .type_modifier = 5,
                                   .format = 1},
                                  {.name = ""}}},
                  &ParseRowDescription, 'T');
}

TEST(PgEncode, LargestCountsRoundTrip) {
  DataRow row;
  row.columns.assign(65535, std::nullopt);
  ExpectRoundTrip(row, &ParseDataRow, 'D');
  RowDescription desc;
  desc.fields.resize(65535);
  ExpectRoundTrip(desc, &ParseRowDescription, 'T');
}

TEST(PgEncode, ExactBytes) {
  EXPECT_EQ(EncodeAuthenticationOk(), "R\0\0\0\x08\0\0\0\0"s);
  EXPECT_EQ(EncodeAuthenticationCleartextPassword(), "R\0\0\0\x08\0\0\0\x03"s);
  EXPECT_EQ(EncodeAuthenticationMd5Password({'a', 'b', 'c', 'd'}),
            "R\0\0\0\x0c\0\0\0\x05"
            "abcd"s);
  EXPECT_EQ(EncodeAuthenticationSaslContinue("r=1"), "R\0\0\0\x0b\0\0\0\x0br=1"s);
  EXPECT_EQ(EncodeAuthenticationSaslFinal("v=1"), "R\0\0\0\x0b\0\0\0\x0cv=1"s);
  EXPECT_EQ(EncodeParameterStatus("a", "b"),
            "S\0\0\0\x08"
            "a\0b\0"s);
  EXPECT_EQ(EncodeBackendKeyData(1, 2), "K\0\0\0\x0c\0\0\0\x01\0\0\0\x02"s);
  EXPECT_EQ(EncodeReadyForQuery(TransactionStatus::kInTransaction), "Z\0\0\0\x05T"s);
  EXPECT_EQ(EncodeNegotiateProtocolVersion(0, {"_pq_.x"}),
            "v\0\0\0\x13\0\0\0\0\0\0\0\x01_pq_.x\0"s);
  EXPECT_EQ(EncodeCancelRequest(7, 9), "\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x07\0\0\0\x09"s);
  EXPECT_EQ(EncodeGssEncRequest(), "\0\0\0\x08\x04\xd2\x16\x30"s);
  EXPECT_EQ(EncodePasswordMessage("pw"), "p\0\0\0\x07pw\0"s);
  EXPECT_EQ(EncodeSaslInitialResponse("M", std::nullopt), "p\0\0\0\x0aM\0\xff\xff\xff\xff"s);
  EXPECT_EQ(EncodeSaslInitialResponse("M", "x"), "p\0\0\0\x0bM\0\0\0\0\x01x"s);
  EXPECT_EQ(EncodeMessage('d', "abc"),
            "d\0\0\0\x07"
            "abc"s);
  EXPECT_EQ(EncodeMessage('c', ""), "c\0\0\0\x04"s);
}

TEST(PgEncode, EncodeErrorSetsSeverityCodeAndMessage) {
  const std::string wire = EncodeError("FATAL", "28000", "interlock: access denied", "why");
  absl::StatusOr<std::optional<Frame>> f = PeekFrame(wire, kMaxMessageBytes);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->type, 'E');
  absl::StatusOr<ErrorResponse> e = ParseErrorResponse((*f)->body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->fields, (std::vector<std::pair<char, std::string>>{{'S', "FATAL"},
                                                                  {'V', "FATAL"},
                                                                  {'C', "28000"},
                                                                  {'M', "interlock: access denied"},
                                                                  {'D', "why"}}));
  EXPECT_EQ(EncodeError("ERROR", "42501", "denied"),
            "E\0\0\0\x22SERROR\0VERROR\0C42501\0Mdenied\0\0"s);
}

TEST(PgEncodeDeathTest, StringWithNulAborts) {
  // The peer would read "SELECT 1" while policy saw the whole text.
  EXPECT_DEATH(EncodeQuery("SELECT 1\0; DROP TABLE t"s), "NUL inside a String field");
  EXPECT_DEATH(EncodeStartupMessage({{"user", "a\0b"s}}), "NUL inside a String field");
  EXPECT_DEATH(EncodeStartupMessage({{"", "x"}}), "empty startup parameter name");
  EXPECT_DEATH(EncodeAuthenticationSasl({""}), "empty sasl mechanism name");
  ErrorResponse zero;
  zero.fields = {{'\0', "x"}};
  EXPECT_DEATH(Encode(zero), "zero error field code");
}

TEST(PgEncodeDeathTest, OversizedAborts) {
  DataRow row;
  row.columns.assign(65536, std::nullopt);
  EXPECT_DEATH(Encode(row), "element count above 65535");
  EXPECT_DEATH(EncodeStartupMessage({{"user", std::string(10000, 'a')}}),
               "message above its maximum length");
  EXPECT_DEATH(EncodeMessage(0, ""), "type 0");
}

}  // namespace
}  // namespace interlock::codec::pg
