// PostgreSQL frontend/backend protocol 3.0 messages as plain structs, and pure functions that
// parse a message body (Frame::body from framing.h) into them. Encoders are in encode.h;
// Parse(Encode(x)) == x for every struct here.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<Frame> f, PeekFrame(buf, kMaxMessageBytes));
//   if (f && f->type == frontend::kQuery) {
//     INTERLOCK_ASSIGN_OR_RETURN(Query q, ParseQuery(f->body));
//     Evaluate(q.query);
//   }
//
// Reference: PostgreSQL 15 docs, 55.7 "Message Formats" (layout of each message) and 55.2
// "Message Flow" (when each is sent). Each struct below cites its entry.
//
// Ownership: fields that are Strings on the wire (NUL-terminated: names, SQL, tags, error
// fields) are copied into std::string. Fields that are Byte-n on the wire (DataRow columns,
// CopyData, Bind/FunctionCall values, SASL/GSS payloads) are absl::string_view into the body
// passed to the parse function and are valid only while that buffer is.
//
// Strictness (the checks PostgreSQL's own pq_getmsg* readers make): every count must fit in
// what is left of the body before anything is reserved; every String must be NUL-terminated
// within the body; value lengths are -1 (NULL) or 0..remaining; bytes left after the last
// field are an error, and so is a body longer than a kMaxMessageBytes message can carry
// (startup: kMaxStartupPacketBytes), which PeekFrame never returns. Int16 counts are read
// unsigned (0..65535), as the server and libpq read them, so a Bind with 40000 parameters
// (libpq allows 65535) is valid. Enumerated bytes (ReadyForQuery status, Close/Describe
// target, Authentication code) are validated.
// Every error is INVALID_ARGUMENT, e.g. "pg: data row: column 2: length 10 > remaining 4".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::codec::pg {

// ---------------------------------------------------------------------------------------------
// Type bytes (PostgreSQL 15 docs, 55.7). Some letters mean different messages per direction.

namespace frontend {
inline constexpr char kBind = 'B';
inline constexpr char kClose = 'C';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyFail = 'f';
inline constexpr char kDescribe = 'D';
inline constexpr char kExecute = 'E';
inline constexpr char kFlush = 'H';
inline constexpr char kFunctionCall = 'F';
inline constexpr char kParse = 'P';
// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all use 'p'; which one
// follows depends on the Authentication request the server sent.
inline constexpr char kPasswordMessage = 'p';
inline constexpr char kQuery = 'Q';
inline constexpr char kSync = 'S';
inline constexpr char kTerminate = 'X';
}  // namespace frontend

namespace backend {
inline constexpr char kAuthentication = 'R';
inline constexpr char kBackendKeyData = 'K';
inline constexpr char kBindComplete = '2';
inline constexpr char kCloseComplete = '3';
inline constexpr char kCommandComplete = 'C';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyInResponse = 'G';
inline constexpr char kCopyOutResponse = 'H';
inline constexpr char kCopyBothResponse = 'W';
inline constexpr char kDataRow = 'D';
inline constexpr char kEmptyQueryResponse = 'I';
inline constexpr char kErrorResponse = 'E';
inline constexpr char kFunctionCallResponse = 'V';
inline constexpr char kNegotiateProtocolVersion = 'v';
inline constexpr char kNoData = 'n';
inline constexpr char kNoticeResponse = 'N';
inline constexpr char kNotificationResponse = 'A';
inline constexpr char kParameterDescription = 't';
inline constexpr char kParameterStatus = 'S';
inline constexpr char kParseComplete = '1';
inline constexpr char kPortalSuspended = 's';
inline constexpr char kReadyForQuery = 'Z';
inline constexpr char kRowDescription = 'T';
}  // namespace backend

// "Query", "DataRow", ... for logs and replay; "StartupPacket" for type 0; "PasswordMessage"
// for frontend 'p' (whichever of its four forms); "Unknown" for anything else.
absl::string_view MessageName(char type, bool from_frontend);

// ---------------------------------------------------------------------------------------------
// Startup phase: untyped packets (PeekStartupFrame). 55.2.1 "Start-up", 55.2.10 "SSL Session
// Encryption", 55.2.11 "GSSAPI Session Encryption", 55.2.7 "Canceling Requests in Progress".

inline constexpr uint16_t kProtocolMajor = 3;
inline constexpr uint16_t kProtocolMinor = 0;
inline constexpr uint32_t kProtocolVersion3 = 196608;     // 3 << 16 | 0
inline constexpr uint32_t kCancelRequestCode = 80877102;  // 1234 << 16 | 5678
inline constexpr uint32_t kSslRequestCode = 80877103;     // 1234 << 16 | 5679
inline constexpr uint32_t kGssEncRequestCode = 80877104;  // 1234 << 16 | 5680
// Major "version" of the three request codes above; any other minor under it is an error.
inline constexpr uint16_t kRequestCodeMajor = 1234;

// 55.7 StartupMessage: Int32 protocol version; then pairs of Strings (name, value); then a
// zero byte. Only protocol 3.x has that layout: for any other major version the parameters are
// not parsed and `params` stays empty; the caller answers with an ErrorResponse (PostgreSQL:
// "unsupported frontend protocol"). For 3.x with minor > 0 a 3.0 server answers
// NegotiateProtocolVersion.
struct StartupMessage {
  uint16_t major_version = kProtocolMajor;
  uint16_t minor_version = kProtocolMinor;
  // In wire order, duplicates kept. Names are non-empty.
  std::vector<std::pair<std::string, std::string>> params;

  bool operator==(const StartupMessage&) const = default;
  // The value of the LAST parameter named `name` (the server applies duplicates in order, so
  // the last one wins); nullopt if absent.
  std::optional<absl::string_view> Find(absl::string_view name) const;
};

// 55.7 SSLRequest: Int32 80877103, nothing else (length 8).
struct SslRequest {
  bool operator==(const SslRequest&) const = default;
};

// 55.7 GSSENCRequest: Int32 80877104, nothing else (length 8).
struct GssEncRequest {
  bool operator==(const GssEncRequest&) const = default;
};

// 55.7 CancelRequest: Int32 80877102, Int32 process ID, Int32 secret key (length 16).
struct CancelRequest {
  int32_t process_id = 0;
  int32_t secret_key = 0;
  bool operator==(const CancelRequest&) const = default;
};

using StartupPacket = std::variant<StartupMessage, SslRequest, GssEncRequest, CancelRequest>;

// `body` is Frame::body of PeekStartupFrame (after the length word). Errors: a request code
// 1234.x other than the three above, a body of the wrong size for SSL/GSS/Cancel, and for 3.x a
// parameter without value or a missing/misplaced final terminator.
absl::StatusOr<StartupPacket> ParseStartupPacket(absl::string_view body);

// ---------------------------------------------------------------------------------------------
// Frontend messages (55.7).

// Target of Close and Describe.
enum class TargetKind : char { kStatement = 'S', kPortal = 'P' };

// 55.7 Bind ('B'): String portal, String statement, Int16 n + Int16[n] parameter format codes,
// Int16 n + n x (Int32 length (-1 = NULL), Byte-n value), Int16 n + Int16[n] result formats.
struct Bind {
  std::string portal;
  std::string statement;
  std::vector<int16_t> param_formats;
  std::vector<std::optional<absl::string_view>> params;  // nullopt = NULL
  std::vector<int16_t> result_formats;
  bool operator==(const Bind&) const = default;
};
absl::StatusOr<Bind> ParseBind(absl::string_view body);

// 55.7 Close ('C'): Byte1 'S' (statement) or 'P' (portal), String name.
struct Close {
  TargetKind kind = TargetKind::kStatement;
  std::string name;
  bool operator==(const Close&) const = default;
};
absl::StatusOr<Close> ParseClose(absl::string_view body);

// 55.7 CopyData ('d', both directions): Byte-n data (the rest of the message).
struct CopyData {
  absl::string_view data;
  bool operator==(const CopyData&) const = default;
};
absl::StatusOr<CopyData> ParseCopyData(absl::string_view body);

// 55.7 CopyDone ('c', both directions): empty.
struct CopyDone {
  bool operator==(const CopyDone&) const = default;
};
absl::StatusOr<CopyDone> ParseCopyDone(absl::string_view body);

// 55.7 CopyFail ('f'): String error message.
struct CopyFail {
  std::string message;
  bool operator==(const CopyFail&) const = default;
};
absl::StatusOr<CopyFail> ParseCopyFail(absl::string_view body);

// 55.7 Describe ('D'): Byte1 'S' or 'P', String name.
struct Describe {
  TargetKind kind = TargetKind::kStatement;
  std::string name;
  bool operator==(const Describe&) const = default;
};
absl::StatusOr<Describe> ParseDescribe(absl::string_view body);

// 55.7 Execute ('E'): String portal, Int32 maximum rows (0 = no limit; the server treats
// negative values the same way).
struct Execute {
  std::string portal;
  int32_t max_rows = 0;
  bool operator==(const Execute&) const = default;
};
absl::StatusOr<Execute> ParseExecute(absl::string_view body);

// 55.7 Flush ('H'): empty.
struct Flush {
  bool operator==(const Flush&) const = default;
};
absl::StatusOr<Flush> ParseFlush(absl::string_view body);

// 55.7 FunctionCall ('F'): Int32 function OID, Int16 n + Int16[n] argument formats, Int16 n +
// n x (Int32 length (-1 = NULL), Byte-n), Int16 result format.
struct FunctionCall {
  uint32_t function_oid = 0;
  std::vector<int16_t> arg_formats;
  std::vector<std::optional<absl::string_view>> args;  // nullopt = NULL
  int16_t result_format = 0;
  bool operator==(const FunctionCall&) const = default;
};
absl::StatusOr<FunctionCall> ParseFunctionCall(absl::string_view body);

// 55.7 Parse ('P'): String statement name, String query, Int16 n + Int32[n] parameter type
// OIDs (0 = unspecified). (The function that parses a Parse message is ParseParse.)
struct Parse {
  std::string statement;
  std::string query;
  std::vector<uint32_t> param_type_oids;
  bool operator==(const Parse&) const = default;
};
absl::StatusOr<Parse> ParseParse(absl::string_view body);

// 55.7 PasswordMessage ('p'), answering AuthenticationCleartextPassword/MD5Password: String
// password (cleartext, or "md5" + 32 hex digits).
struct PasswordMessage {
  std::string password;
  bool operator==(const PasswordMessage&) const = default;
};
absl::StatusOr<PasswordMessage> ParsePasswordMessage(absl::string_view body);

// 55.7 SASLInitialResponse ('p'), answering AuthenticationSASL: String mechanism, Int32 length
// (-1 = no initial response), Byte-n initial client response.
struct SaslInitialResponse {
  std::string mechanism;
  std::optional<absl::string_view> data;
  bool operator==(const SaslInitialResponse&) const = default;
};
absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(absl::string_view body);

// 55.7 SASLResponse ('p'), answering AuthenticationSASLContinue: Byte-n (the rest).
struct SaslResponse {
  absl::string_view data;
  bool operator==(const SaslResponse&) const = default;
};
absl::StatusOr<SaslResponse> ParseSaslResponse(absl::string_view body);

// 55.7 GSSResponse ('p'), answering AuthenticationGSS/GSSContinue/SSPI: Byte-n (the rest).
struct GssResponse {
  absl::string_view data;
  bool operator==(const GssResponse&) const = default;
};
absl::StatusOr<GssResponse> ParseGssResponse(absl::string_view body);

// 55.7 Query ('Q'): String query (the simple query protocol; may hold several statements).
struct Query {
  std::string query;
  bool operator==(const Query&) const = default;
};
absl::StatusOr<Query> ParseQuery(absl::string_view body);

// 55.7 Sync ('S'): empty.
struct Sync {
  bool operator==(const Sync&) const = default;
};
absl::StatusOr<Sync> ParseSync(absl::string_view body);

// 55.7 Terminate ('X'): empty.
struct Terminate {
  bool operator==(const Terminate&) const = default;
};
absl::StatusOr<Terminate> ParseTerminate(absl::string_view body);

// A relay-phase frontend message, decoded once: every part of a session that reads it (the
// policy guard, the statement tracker, the recording's literal withholding, the result
// masker) reads this same decoded form instead of parsing the bytes again. The string
// views in it (Bind parameters, FunctionCall arguments) point into the message body.
using FrontendBody = std::variant<std::monostate, Query, Parse, Bind, Execute, Describe, Close, FunctionCall,
                                  Sync, Flush, CopyDone, CopyFail, Terminate>;
struct FrontendMessage {
  char type = 0;
  // monostate: a type none of the above (CopyData, which streams, and types the relay
  // phase does not know, which the server answers with an error).
  FrontendBody body;
  template <typename T>
  const T* get() const {
    return std::get_if<T>(&body);
  }
};
// Decodes `body` as a message of `type`; errors as the Parse* function of the type.
absl::StatusOr<FrontendMessage> DecodeFrontend(char type, absl::string_view body);

// ---------------------------------------------------------------------------------------------
// Backend messages (55.7).

// The Int32 request code of an Authentication message.
enum class AuthCode : int32_t {
  kOk = 0,
  kKerberosV5 = 2,
  kCleartextPassword = 3,
  kMd5Password = 5,
  kGss = 7,
  kGssContinue = 8,
  kSspi = 9,
  kSasl = 10,
  kSaslContinue = 11,
  kSaslFinal = 12,
};

// 55.7 AuthenticationOk / KerberosV5 / CleartextPassword / MD5Password / GSS / GSSContinue /
// SSPI / SASL / SASLContinue / SASLFinal ('R'): Int32 code, then by code: MD5Password Byte4
// salt; GSSContinue, SASLContinue, SASLFinal Byte-n data (the rest); SASL a list of Strings
// (mechanism names) ended by an empty String; the others nothing. Unknown codes are errors
// (code 6, SCMCredential, left the protocol in PostgreSQL 9.1).
struct Authentication {
  AuthCode code = AuthCode::kOk;
  std::array<char, 4> md5_salt{};            // kMd5Password only; zeros otherwise
  std::vector<std::string> sasl_mechanisms;  // kSasl only, e.g. {"SCRAM-SHA-256"}
  absl::string_view data;                    // kGssContinue, kSaslContinue, kSaslFinal only
  bool operator==(const Authentication&) const = default;
};
absl::StatusOr<Authentication> ParseAuthentication(absl::string_view body);

// 55.7 BackendKeyData ('K'): Int32 process ID, Int32 secret key (for CancelRequest).
struct BackendKeyData {
  int32_t process_id = 0;
  int32_t secret_key = 0;
  bool operator==(const BackendKeyData&) const = default;
};
absl::StatusOr<BackendKeyData> ParseBackendKeyData(absl::string_view body);

// 55.7 BindComplete ('2'): empty.
struct BindComplete {
  bool operator==(const BindComplete&) const = default;
};
absl::StatusOr<BindComplete> ParseBindComplete(absl::string_view body);

// 55.7 CloseComplete ('3'): empty.
struct CloseComplete {
  bool operator==(const CloseComplete&) const = default;
};
absl::StatusOr<CloseComplete> ParseCloseComplete(absl::string_view body);

// 55.7 CommandComplete ('C'): String command tag ("SELECT 1", "INSERT 0 5", "CREATE TABLE").
struct CommandComplete {
  std::string tag;
  bool operator==(const CommandComplete&) const = default;
};
absl::StatusOr<CommandComplete> ParseCommandComplete(absl::string_view body);

// The row count in a CommandComplete tag: "SELECT 5" -> 5, "INSERT 0 5" -> 5 (the OID word is
// skipped), likewise UPDATE, DELETE, MERGE, COPY, FETCH, MOVE. nullopt for tags without a
// count ("BEGIN", "CREATE TABLE") or that do not have exactly that shape.
std::optional<uint64_t> CommandTagRowCount(absl::string_view tag);

// 55.7 CopyInResponse ('G') / CopyOutResponse ('H') / CopyBothResponse ('W'): Int8 overall
// format (0 text, 1 binary), Int16 n + Int16[n] per-column formats.
struct CopyResponseFields {
  int8_t format = 0;
  std::vector<int16_t> column_formats;
  bool operator==(const CopyResponseFields&) const = default;
};
struct CopyInResponse : CopyResponseFields {
  bool operator==(const CopyInResponse&) const = default;
};
struct CopyOutResponse : CopyResponseFields {
  bool operator==(const CopyOutResponse&) const = default;
};
struct CopyBothResponse : CopyResponseFields {
  bool operator==(const CopyBothResponse&) const = default;
};
absl::StatusOr<CopyInResponse> ParseCopyInResponse(absl::string_view body);
absl::StatusOr<CopyOutResponse> ParseCopyOutResponse(absl::string_view body);
absl::StatusOr<CopyBothResponse> ParseCopyBothResponse(absl::string_view body);

// 55.7 DataRow ('D'): Int16 column count, then per column Int32 length (-1 = NULL) and Byte-n
// value. Columns view into the body.
struct DataRow {
  std::vector<std::optional<absl::string_view>> columns;  // nullopt = NULL
  bool operator==(const DataRow&) const = default;
};
absl::StatusOr<DataRow> ParseDataRow(absl::string_view body);

// 55.7 EmptyQueryResponse ('I'): empty.
struct EmptyQueryResponse {
  bool operator==(const EmptyQueryResponse&) const = default;
};
absl::StatusOr<EmptyQueryResponse> ParseEmptyQueryResponse(absl::string_view body);

// Field codes of ErrorResponse / NoticeResponse (55.8 "Error and Notice Message Fields").
namespace field {
inline constexpr char kSeverity = 'S';              // localized
inline constexpr char kSeverityNonLocalized = 'V';  // ERROR, FATAL, PANIC, WARNING, NOTICE...
inline constexpr char kSqlState = 'C';
inline constexpr char kMessage = 'M';
inline constexpr char kDetail = 'D';
inline constexpr char kHint = 'H';
inline constexpr char kPosition = 'P';
inline constexpr char kInternalPosition = 'p';
inline constexpr char kInternalQuery = 'q';
inline constexpr char kWhere = 'W';
inline constexpr char kSchemaName = 's';
inline constexpr char kTableName = 't';
inline constexpr char kColumnName = 'c';
inline constexpr char kDataTypeName = 'd';
inline constexpr char kConstraintName = 'n';
inline constexpr char kFile = 'F';
inline constexpr char kLine = 'L';
inline constexpr char kRoutine = 'R';
}  // namespace field

// 55.7 ErrorResponse ('E') / NoticeResponse ('N'): repeated (Byte1 field code, String value),
// then a zero byte. Codes are non-zero; unknown codes are kept (the docs tell clients to
// ignore them).
struct ResponseFields {
  std::vector<std::pair<char, std::string>> fields;  // in wire order

  bool operator==(const ResponseFields&) const = default;
  // The first value with `code`; nullopt if absent.
  std::optional<absl::string_view> Find(char code) const;
  // Empty when absent.
  absl::string_view severity() const;  // 'S'
  absl::string_view sqlstate() const;  // 'C'
  absl::string_view message() const;   // 'M'
  absl::string_view detail() const;    // 'D'
  absl::string_view hint() const;      // 'H'
};
struct ErrorResponse : ResponseFields {
  bool operator==(const ErrorResponse&) const = default;
};
struct NoticeResponse : ResponseFields {
  bool operator==(const NoticeResponse&) const = default;
};
absl::StatusOr<ErrorResponse> ParseErrorResponse(absl::string_view body);
absl::StatusOr<NoticeResponse> ParseNoticeResponse(absl::string_view body);

// 55.7 FunctionCallResponse ('V'): Int32 length (-1 = NULL), Byte-n result.
struct FunctionCallResponse {
  std::optional<absl::string_view> result;
  bool operator==(const FunctionCallResponse&) const = default;
};
absl::StatusOr<FunctionCallResponse> ParseFunctionCallResponse(absl::string_view body);

// 55.7 NegotiateProtocolVersion ('v'): Int32 newest supported minor version, Int32 n, String[n]
// protocol options ("_pq_.x") the server did not recognize.
struct NegotiateProtocolVersion {
  int32_t newest_minor = 0;
  std::vector<std::string> unrecognized_options;
  bool operator==(const NegotiateProtocolVersion&) const = default;
};
absl::StatusOr<NegotiateProtocolVersion> ParseNegotiateProtocolVersion(absl::string_view body);

// 55.7 NoData ('n'): empty.
struct NoData {
  bool operator==(const NoData&) const = default;
};
absl::StatusOr<NoData> ParseNoData(absl::string_view body);

// 55.7 NotificationResponse ('A'): Int32 notifying backend PID, String channel, String payload.
struct NotificationResponse {
  int32_t process_id = 0;
  std::string channel;
  std::string payload;
  bool operator==(const NotificationResponse&) const = default;
};
absl::StatusOr<NotificationResponse> ParseNotificationResponse(absl::string_view body);

// 55.7 ParameterDescription ('t'): Int16 n, Int32[n] parameter type OIDs.
struct ParameterDescription {
  std::vector<uint32_t> type_oids;
  bool operator==(const ParameterDescription&) const = default;
};
absl::StatusOr<ParameterDescription> ParseParameterDescription(absl::string_view body);

// 55.7 ParameterStatus ('S'): String name, String value ("server_version", "15.18").
struct ParameterStatus {
  std::string name;
  std::string value;
  bool operator==(const ParameterStatus&) const = default;
};
absl::StatusOr<ParameterStatus> ParseParameterStatus(absl::string_view body);

// 55.7 ParseComplete ('1'): empty.
struct ParseComplete {
  bool operator==(const ParseComplete&) const = default;
};
absl::StatusOr<ParseComplete> ParseParseComplete(absl::string_view body);

// 55.7 PortalSuspended ('s'): empty.
struct PortalSuspended {
  bool operator==(const PortalSuspended&) const = default;
};
absl::StatusOr<PortalSuspended> ParsePortalSuspended(absl::string_view body);

// 55.7 ReadyForQuery ('Z'): Byte1 transaction status; any other byte is an error.
enum class TransactionStatus : char { kIdle = 'I', kInTransaction = 'T', kFailed = 'E' };
struct ReadyForQuery {
  TransactionStatus status = TransactionStatus::kIdle;
  bool operator==(const ReadyForQuery&) const = default;
};
absl::StatusOr<ReadyForQuery> ParseReadyForQuery(absl::string_view body);

// 55.7 RowDescription ('T'): Int16 n, then per field: String name, Int32 table OID (0 if not
// a table column), Int16 column attribute number (0 if not), Int32 type OID, Int16 type size
// (negative = variable width), Int32 type modifier, Int16 format code (0 text, 1 binary).
struct FieldDescription {
  std::string name;
  uint32_t table_oid = 0;
  int16_t column_attr = 0;
  uint32_t type_oid = 0;
  int16_t type_size = 0;
  int32_t type_modifier = 0;
  int16_t format = 0;
  bool operator==(const FieldDescription&) const = default;
};
struct RowDescription {
  std::vector<FieldDescription> fields;
  bool operator==(const RowDescription&) const = default;
};
absl::StatusOr<RowDescription> ParseRowDescription(absl::string_view body);

}  // namespace interlock::codec::pg
