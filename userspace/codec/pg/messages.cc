#include "userspace/codec/pg/messages.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/codec/pg/wire.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::pg {
namespace {

using internal::Reader;

// Smallest wire size of one repeated element, for Reader::Count16.
constexpr size_t kInt16Bytes = 2;
constexpr size_t kInt32Bytes = 4;
constexpr size_t kNullableValueMinBytes = 4;  // Int32 length of a NULL or empty value
// RowDescription field: empty name (1) + Int32 + Int16 + Int32 + Int16 + Int32 + Int16.
constexpr size_t kFieldDescriptionMinBytes = 1 + 4 + 2 + 4 + 2 + 4 + 2;

absl::StatusOr<std::vector<int16_t>> ReadInt16Array(Reader& r, absl::string_view count_what,
                                                    absl::string_view what) {
  INTERLOCK_ASSIGN_OR_RETURN(uint16_t n, r.Count16(count_what, kInt16Bytes));
  std::vector<int16_t> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(int16_t v, r.Int16(what, i));
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<uint32_t>> ReadOidArray(Reader& r, absl::string_view count_what,
                                                   absl::string_view what) {
  INTERLOCK_ASSIGN_OR_RETURN(uint16_t n, r.Count16(count_what, kInt32Bytes));
  std::vector<uint32_t> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(uint32_t v, r.Uint32(what, i));
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<std::optional<absl::string_view>>> ReadValues(
    Reader& r, absl::string_view count_what, absl::string_view what) {
  INTERLOCK_ASSIGN_OR_RETURN(uint16_t n, r.Count16(count_what, kNullableValueMinBytes));
  std::vector<std::optional<absl::string_view>> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(std::optional<absl::string_view> v, r.NullableBytes(what, i));
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<TargetKind> ReadTargetKind(Reader& r) {
  INTERLOCK_ASSIGN_OR_RETURN(uint8_t b, r.Byte("target"));
  if (b != 'S' && b != 'P') {
    return r.Error(absl::StrCat("target ", internal::TypeForDisplay(static_cast<char>(b)),
                                " not one of S, P"));
  }
  return static_cast<TargetKind>(b);
}

// Messages whose body must be empty.
template <typename T>
absl::StatusOr<T> ParseEmpty(absl::string_view body, absl::string_view context) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, context));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return T{};
}

template <typename T>
absl::StatusOr<T> ParseCopyResponse(absl::string_view body, absl::string_view context) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, context));
  T out;
  INTERLOCK_ASSIGN_OR_RETURN(uint8_t format, r.Byte("format"));
  out.format = static_cast<int8_t>(format);
  INTERLOCK_ASSIGN_OR_RETURN(out.column_formats,
                             ReadInt16Array(r, "column format count", "column format"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

template <typename T>
absl::StatusOr<T> ParseResponseFields(absl::string_view body, absl::string_view context) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, context));
  T out;
  // Each field takes at least two bytes (code + empty String), so the vector grows to at most
  // body.size() / 2 entries: bounded by the frame limit.
  for (int i = 0;; ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(uint8_t code, r.Byte("field code", i));
    if (code == 0) break;
    INTERLOCK_ASSIGN_OR_RETURN(absl::string_view value, r.String("field", i));
    out.fields.emplace_back(static_cast<char>(code), std::string(value));
  }
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 3.x StartupMessage parameters. PostgreSQL (ProcessStartupPacket) walks name/value pairs
// until an empty name and then requires that terminator to be the last byte ("invalid startup
// packet layout: expected terminator as last byte"); a name without a value is the same error.
absl::Status ParseStartupParams(Reader& r, StartupMessage& out) {
  for (int i = 0;; ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(absl::string_view name, r.String("parameter name", i));
    if (name.empty()) break;
    INTERLOCK_ASSIGN_OR_RETURN(absl::string_view value, r.String("parameter value", i));
    out.params.emplace_back(std::string(name), std::string(value));
  }
  return r.End();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

absl::string_view MessageName(char type, bool from_frontend) {
  if (type == 0) return "StartupPacket";
  if (from_frontend) {
    switch (type) {
      case frontend::kBind:
        return "Bind";
      case frontend::kClose:
        return "Close";
      case frontend::kCopyData:
        return "CopyData";
      case frontend::kCopyDone:
        return "CopyDone";
      case frontend::kCopyFail:
        return "CopyFail";
      case frontend::kDescribe:
        return "Describe";
      case frontend::kExecute:
        return "Execute";
      case frontend::kFlush:
        return "Flush";
      case frontend::kFunctionCall:
        return "FunctionCall";
      case frontend::kParse:
        return "Parse";
      case frontend::kPasswordMessage:
        return "PasswordMessage";
      case frontend::kQuery:
        return "Query";
      case frontend::kSync:
        return "Sync";
      case frontend::kTerminate:
        return "Terminate";
      default:
        return "Unknown";
    }
  }
  switch (type) {
    case backend::kAuthentication:
      return "Authentication";
    case backend::kBackendKeyData:
      return "BackendKeyData";
    case backend::kBindComplete:
      return "BindComplete";
    case backend::kCloseComplete:
      return "CloseComplete";
    case backend::kCommandComplete:
      return "CommandComplete";
    case backend::kCopyData:
      return "CopyData";
    case backend::kCopyDone:
      return "CopyDone";
    case backend::kCopyInResponse:
      return "CopyInResponse";
    case backend::kCopyOutResponse:
      return "CopyOutResponse";
    case backend::kCopyBothResponse:
      return "CopyBothResponse";
    case backend::kDataRow:
      return "DataRow";
    case backend::kEmptyQueryResponse:
      return "EmptyQueryResponse";
    case backend::kErrorResponse:
      return "ErrorResponse";
    case backend::kFunctionCallResponse:
      return "FunctionCallResponse";
    case backend::kNegotiateProtocolVersion:
      return "NegotiateProtocolVersion";
    case backend::kNoData:
      return "NoData";
    case backend::kNoticeResponse:
      return "NoticeResponse";
    case backend::kNotificationResponse:
      return "NotificationResponse";
    case backend::kParameterDescription:
      return "ParameterDescription";
    case backend::kParameterStatus:
      return "ParameterStatus";
    case backend::kParseComplete:
      return "ParseComplete";
    case backend::kPortalSuspended:
      return "PortalSuspended";
    case backend::kReadyForQuery:
      return "ReadyForQuery";
    case backend::kRowDescription:
      return "RowDescription";
    default:
      return "Unknown";
  }
}

// ---------------------------------------------------------------------------------------------
// Startup phase. PostgreSQL 15 docs, 55.7 StartupMessage / SSLRequest / GSSENCRequest /
// CancelRequest; flow in 55.2.1, 55.2.7, 55.2.10, 55.2.11.

std::optional<absl::string_view> StartupMessage::Find(absl::string_view name) const {
  std::optional<absl::string_view> found;
  for (const auto& [n, v] : params) {
    if (n == name) found = v;
  }
  return found;
}

absl::StatusOr<StartupPacket> ParseStartupPacket(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r,
                             Reader::Create(body, "pg: startup", internal::kMaxStartupBodyBytes));
  INTERLOCK_ASSIGN_OR_RETURN(uint32_t code, r.Uint32("protocol version"));
  const uint16_t major = static_cast<uint16_t>(code >> 16);
  const uint16_t minor = static_cast<uint16_t>(code & 0xffff);
  if (major == kRequestCodeMajor) {
    switch (code) {
      // The server does not check these two lengths; we do, so nothing rides along unseen.
      case kSslRequestCode:
        INTERLOCK_RETURN_IF_ERROR(Reader(r.Rest(), "pg: startup: ssl request").End());
        return SslRequest{};
      case kGssEncRequestCode:
        INTERLOCK_RETURN_IF_ERROR(Reader(r.Rest(), "pg: startup: gssenc request").End());
        return GssEncRequest{};
      case kCancelRequestCode: {
        CancelRequest out;
        Reader c(r.Rest(), "pg: startup: cancel request");
        INTERLOCK_ASSIGN_OR_RETURN(out.process_id, c.Int32("process id"));
        INTERLOCK_ASSIGN_OR_RETURN(out.secret_key, c.Int32("secret key"));
        INTERLOCK_RETURN_IF_ERROR(c.End());
        return out;
      }
      default:
        return r.Error(absl::StrCat("unknown request code ", code, " (", major, ".", minor, ")"));
    }
  }
  StartupMessage out;
  out.major_version = major;
  out.minor_version = minor;
  // Only 3.x defines the name/value layout; other versions are reported, not parsed.
  if (major != kProtocolMajor) return out;
  INTERLOCK_RETURN_IF_ERROR(ParseStartupParams(r, out));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Frontend messages. PostgreSQL 15 docs, 55.7; extended query flow in 55.2.3, COPY in 55.2.6,
// function calls in 55.2.5, authentication in 55.2.2.

// 55.7 Bind.
absl::StatusOr<Bind> ParseBind(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: bind"));
  Bind out;
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view portal, r.String("portal"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view statement, r.String("statement"));
  out.portal = std::string(portal);
  out.statement = std::string(statement);
  INTERLOCK_ASSIGN_OR_RETURN(out.param_formats,
                             ReadInt16Array(r, "parameter format count", "parameter format"));
  INTERLOCK_ASSIGN_OR_RETURN(out.params, ReadValues(r, "parameter count", "parameter"));
  INTERLOCK_ASSIGN_OR_RETURN(out.result_formats,
                             ReadInt16Array(r, "result format count", "result format"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 Close.
absl::StatusOr<Close> ParseClose(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: close"));
  Close out;
  INTERLOCK_ASSIGN_OR_RETURN(out.kind, ReadTargetKind(r));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view name, r.String("name"));
  out.name = std::string(name);
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 CopyData (both directions).
absl::StatusOr<CopyData> ParseCopyData(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: copy data"));
  return CopyData{r.Rest()};
}

// 55.7 CopyDone (both directions).
absl::StatusOr<CopyDone> ParseCopyDone(absl::string_view body) {
  return ParseEmpty<CopyDone>(body, "pg: copy done");
}

// 55.7 CopyFail.
absl::StatusOr<CopyFail> ParseCopyFail(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: copy fail"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view message, r.String("message"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return CopyFail{std::string(message)};
}

// 55.7 Describe.
absl::StatusOr<Describe> ParseDescribe(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: describe"));
  Describe out;
  INTERLOCK_ASSIGN_OR_RETURN(out.kind, ReadTargetKind(r));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view name, r.String("name"));
  out.name = std::string(name);
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 Execute.
absl::StatusOr<Execute> ParseExecute(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: execute"));
  Execute out;
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view portal, r.String("portal"));
  out.portal = std::string(portal);
  INTERLOCK_ASSIGN_OR_RETURN(out.max_rows, r.Int32("max rows"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 Flush.
absl::StatusOr<Flush> ParseFlush(absl::string_view body) {
  return ParseEmpty<Flush>(body, "pg: flush");
}

// 55.7 FunctionCall.
absl::StatusOr<FunctionCall> ParseFunctionCall(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: function call"));
  FunctionCall out;
  INTERLOCK_ASSIGN_OR_RETURN(out.function_oid, r.Uint32("function oid"));
  INTERLOCK_ASSIGN_OR_RETURN(out.arg_formats,
                             ReadInt16Array(r, "argument format count", "argument format"));
  INTERLOCK_ASSIGN_OR_RETURN(out.args, ReadValues(r, "argument count", "argument"));
  INTERLOCK_ASSIGN_OR_RETURN(out.result_format, r.Int16("result format"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 Parse.
absl::StatusOr<Parse> ParseParse(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: parse"));
  Parse out;
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view statement, r.String("statement"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view query, r.String("query"));
  out.statement = std::string(statement);
  out.query = std::string(query);
  INTERLOCK_ASSIGN_OR_RETURN(out.param_type_oids,
                             ReadOidArray(r, "parameter type count", "parameter type"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 PasswordMessage.
absl::StatusOr<PasswordMessage> ParsePasswordMessage(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: password message"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view password, r.String("password"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return PasswordMessage{std::string(password)};
}

// 55.7 SASLInitialResponse.
absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: sasl initial response"));
  SaslInitialResponse out;
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view mechanism, r.String("mechanism"));
  out.mechanism = std::string(mechanism);
  INTERLOCK_ASSIGN_OR_RETURN(out.data, r.NullableBytes("initial response"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 SASLResponse.
absl::StatusOr<SaslResponse> ParseSaslResponse(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: sasl response"));
  return SaslResponse{r.Rest()};
}

// 55.7 GSSResponse.
absl::StatusOr<GssResponse> ParseGssResponse(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: gss response"));
  return GssResponse{r.Rest()};
}

// 55.7 Query.
absl::StatusOr<Query> ParseQuery(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: query"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view query, r.String("query"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return Query{std::string(query)};
}

// 55.7 Sync.
absl::StatusOr<Sync> ParseSync(absl::string_view body) {
  return ParseEmpty<Sync>(body, "pg: sync");
}

// 55.7 Terminate.
absl::StatusOr<Terminate> ParseTerminate(absl::string_view body) {
  return ParseEmpty<Terminate>(body, "pg: terminate");
}

namespace {
template <typename T>
absl::StatusOr<FrontendMessage> Decoded(char type, absl::StatusOr<T> parsed) {
  if (!parsed.ok()) return parsed.status();
  return FrontendMessage{type, *std::move(parsed)};
}
}  // namespace

absl::StatusOr<FrontendMessage> DecodeFrontend(char type, absl::string_view body) {
  switch (type) {
    case frontend::kQuery: return Decoded(type, ParseQuery(body));
    case frontend::kParse: return Decoded(type, ParseParse(body));
    case frontend::kBind: return Decoded(type, ParseBind(body));
    case frontend::kExecute: return Decoded(type, ParseExecute(body));
    case frontend::kDescribe: return Decoded(type, ParseDescribe(body));
    case frontend::kClose: return Decoded(type, ParseClose(body));
    case frontend::kFunctionCall: return Decoded(type, ParseFunctionCall(body));
    case frontend::kSync: return Decoded(type, ParseSync(body));
    case frontend::kFlush: return Decoded(type, ParseFlush(body));
    case frontend::kCopyDone: return Decoded(type, ParseCopyDone(body));
    case frontend::kCopyFail: return Decoded(type, ParseCopyFail(body));
    case frontend::kTerminate: return Decoded(type, ParseTerminate(body));
    default: return FrontendMessage{type, std::monostate{}};
  }
}

// ---------------------------------------------------------------------------------------------
// Backend messages. PostgreSQL 15 docs, 55.7; flows in 55.2.

// 55.7 Authentication* (all 'R'); the exchange is 55.2.2 and 55.3 "SASL Authentication".
absl::StatusOr<Authentication> ParseAuthentication(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: authentication"));
  Authentication out;
  INTERLOCK_ASSIGN_OR_RETURN(int32_t code, r.Int32("code"));
  switch (code) {
    case static_cast<int32_t>(AuthCode::kOk):
    case static_cast<int32_t>(AuthCode::kKerberosV5):
    case static_cast<int32_t>(AuthCode::kCleartextPassword):
    case static_cast<int32_t>(AuthCode::kGss):
    case static_cast<int32_t>(AuthCode::kSspi):
      break;
    case static_cast<int32_t>(AuthCode::kMd5Password): {
      INTERLOCK_ASSIGN_OR_RETURN(absl::string_view salt, r.Bytes(4, "md5 salt"));
      for (size_t i = 0; i < 4; ++i) out.md5_salt[i] = salt[i];
      break;
    }
    case static_cast<int32_t>(AuthCode::kGssContinue):
    case static_cast<int32_t>(AuthCode::kSaslContinue):
    case static_cast<int32_t>(AuthCode::kSaslFinal):
      out.data = r.Rest();
      break;
    case static_cast<int32_t>(AuthCode::kSasl):
      // Mechanism names, then an empty String; bounded by the body like any String list.
      for (int i = 0;; ++i) {
        INTERLOCK_ASSIGN_OR_RETURN(absl::string_view mechanism, r.String("sasl mechanism", i));
        if (mechanism.empty()) break;
        out.sasl_mechanisms.emplace_back(mechanism);
      }
      break;
    default:
      return r.Error(absl::StrCat("unknown code ", code));
  }
  out.code = static_cast<AuthCode>(code);
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 BackendKeyData.
absl::StatusOr<BackendKeyData> ParseBackendKeyData(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: backend key data"));
  BackendKeyData out;
  INTERLOCK_ASSIGN_OR_RETURN(out.process_id, r.Int32("process id"));
  INTERLOCK_ASSIGN_OR_RETURN(out.secret_key, r.Int32("secret key"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 BindComplete.
absl::StatusOr<BindComplete> ParseBindComplete(absl::string_view body) {
  return ParseEmpty<BindComplete>(body, "pg: bind complete");
}

// 55.7 CloseComplete.
absl::StatusOr<CloseComplete> ParseCloseComplete(absl::string_view body) {
  return ParseEmpty<CloseComplete>(body, "pg: close complete");
}

// 55.7 CommandComplete.
absl::StatusOr<CommandComplete> ParseCommandComplete(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: command complete"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view tag, r.String("tag"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return CommandComplete{std::string(tag)};
}

// Tag shapes from 55.7 CommandComplete: "INSERT oid rows"; "SELECT|UPDATE|DELETE|MERGE|MOVE|
// FETCH|COPY rows". CREATE TABLE AS and SELECT INTO also report "SELECT rows".
std::optional<uint64_t> CommandTagRowCount(absl::string_view tag) {
  std::vector<absl::string_view> words = absl::StrSplit(tag, ' ');
  auto number = [](absl::string_view w) -> std::optional<uint64_t> {
    if (w.empty() || w.size() > 20) return std::nullopt;
    for (char c : w) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    }
    uint64_t v = 0;
    if (!absl::SimpleAtoi(w, &v)) return std::nullopt;
    return v;
  };
  if (words.size() == 3 && words[0] == "INSERT") {
    if (!number(words[1])) return std::nullopt;
    return number(words[2]);
  }
  if (words.size() != 2) return std::nullopt;
  static constexpr absl::string_view kCounted[] = {"SELECT", "UPDATE", "DELETE", "MERGE",
                                                   "MOVE",   "FETCH",  "COPY"};
  for (absl::string_view command : kCounted) {
    if (words[0] == command) return number(words[1]);
  }
  return std::nullopt;
}

// 55.7 CopyInResponse.
absl::StatusOr<CopyInResponse> ParseCopyInResponse(absl::string_view body) {
  return ParseCopyResponse<CopyInResponse>(body, "pg: copy in response");
}

// 55.7 CopyOutResponse.
absl::StatusOr<CopyOutResponse> ParseCopyOutResponse(absl::string_view body) {
  return ParseCopyResponse<CopyOutResponse>(body, "pg: copy out response");
}

// 55.7 CopyBothResponse (streaming replication, 55.4).
absl::StatusOr<CopyBothResponse> ParseCopyBothResponse(absl::string_view body) {
  return ParseCopyResponse<CopyBothResponse>(body, "pg: copy both response");
}

// 55.7 DataRow.
absl::StatusOr<DataRow> ParseDataRow(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: data row"));
  DataRow out;
  INTERLOCK_ASSIGN_OR_RETURN(out.columns, ReadValues(r, "column count", "column"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 EmptyQueryResponse.
absl::StatusOr<EmptyQueryResponse> ParseEmptyQueryResponse(absl::string_view body) {
  return ParseEmpty<EmptyQueryResponse>(body, "pg: empty query response");
}

std::optional<absl::string_view> ResponseFields::Find(char code) const {
  for (const auto& [c, v] : fields) {
    if (c == code) return absl::string_view(v);
  }
  return std::nullopt;
}
absl::string_view ResponseFields::severity() const { return Find(field::kSeverity).value_or(""); }
absl::string_view ResponseFields::sqlstate() const { return Find(field::kSqlState).value_or(""); }
absl::string_view ResponseFields::message() const { return Find(field::kMessage).value_or(""); }
absl::string_view ResponseFields::detail() const { return Find(field::kDetail).value_or(""); }
absl::string_view ResponseFields::hint() const { return Find(field::kHint).value_or(""); }

// 55.7 ErrorResponse; fields in 55.8.
absl::StatusOr<ErrorResponse> ParseErrorResponse(absl::string_view body) {
  return ParseResponseFields<ErrorResponse>(body, "pg: error response");
}

// 55.7 NoticeResponse; fields in 55.8.
absl::StatusOr<NoticeResponse> ParseNoticeResponse(absl::string_view body) {
  return ParseResponseFields<NoticeResponse>(body, "pg: notice response");
}

// 55.7 FunctionCallResponse.
absl::StatusOr<FunctionCallResponse> ParseFunctionCallResponse(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: function call response"));
  FunctionCallResponse out;
  INTERLOCK_ASSIGN_OR_RETURN(out.result, r.NullableBytes("result"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 NegotiateProtocolVersion; flow in 55.2.1.
absl::StatusOr<NegotiateProtocolVersion> ParseNegotiateProtocolVersion(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: negotiate protocol version"));
  NegotiateProtocolVersion out;
  INTERLOCK_ASSIGN_OR_RETURN(out.newest_minor, r.Int32("newest minor version"));
  INTERLOCK_ASSIGN_OR_RETURN(int32_t n, r.Int32("option count"));
  // Each option is at least its terminator: n must fit in what is left before reserving.
  if (n < 0 || static_cast<size_t>(n) > r.remaining()) {
    return r.Error(
        absl::StrCat("option count ", n, " does not fit in ", r.remaining(), " bytes left"));
  }
  out.unrecognized_options.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(absl::string_view option, r.String("option", i));
    out.unrecognized_options.emplace_back(option);
  }
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 NoData.
absl::StatusOr<NoData> ParseNoData(absl::string_view body) {
  return ParseEmpty<NoData>(body, "pg: no data");
}

// 55.7 NotificationResponse; flow in 55.2.8.
absl::StatusOr<NotificationResponse> ParseNotificationResponse(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: notification response"));
  NotificationResponse out;
  INTERLOCK_ASSIGN_OR_RETURN(out.process_id, r.Int32("process id"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view channel, r.String("channel"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view payload, r.String("payload"));
  out.channel = std::string(channel);
  out.payload = std::string(payload);
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 ParameterDescription.
absl::StatusOr<ParameterDescription> ParseParameterDescription(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: parameter description"));
  ParameterDescription out;
  INTERLOCK_ASSIGN_OR_RETURN(out.type_oids,
                             ReadOidArray(r, "parameter type count", "parameter type"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

// 55.7 ParameterStatus; flow in 55.2.9.
absl::StatusOr<ParameterStatus> ParseParameterStatus(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: parameter status"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view name, r.String("name"));
  INTERLOCK_ASSIGN_OR_RETURN(absl::string_view value, r.String("value"));
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return ParameterStatus{std::string(name), std::string(value)};
}

// 55.7 ParseComplete.
absl::StatusOr<ParseComplete> ParseParseComplete(absl::string_view body) {
  return ParseEmpty<ParseComplete>(body, "pg: parse complete");
}

// 55.7 PortalSuspended.
absl::StatusOr<PortalSuspended> ParsePortalSuspended(absl::string_view body) {
  return ParseEmpty<PortalSuspended>(body, "pg: portal suspended");
}

// 55.7 ReadyForQuery.
absl::StatusOr<ReadyForQuery> ParseReadyForQuery(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: ready for query"));
  INTERLOCK_ASSIGN_OR_RETURN(uint8_t status, r.Byte("status"));
  if (status != 'I' && status != 'T' && status != 'E') {
    return r.Error(absl::StrCat("status ", internal::TypeForDisplay(static_cast<char>(status)),
                                " not one of I, T, E"));
  }
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return ReadyForQuery{static_cast<TransactionStatus>(status)};
}

// 55.7 RowDescription.
absl::StatusOr<RowDescription> ParseRowDescription(absl::string_view body) {
  INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: row description"));
  RowDescription out;
  INTERLOCK_ASSIGN_OR_RETURN(uint16_t n, r.Count16("field count", kFieldDescriptionMinBytes));
  out.fields.reserve(n);
  for (int i = 0; i < n; ++i) {
    FieldDescription f;
    INTERLOCK_ASSIGN_OR_RETURN(absl::string_view name, r.String("field name", i));
    f.name = std::string(name);
    INTERLOCK_ASSIGN_OR_RETURN(f.table_oid, r.Uint32("table oid", i));
    INTERLOCK_ASSIGN_OR_RETURN(f.column_attr, r.Int16("column attribute", i));
    INTERLOCK_ASSIGN_OR_RETURN(f.type_oid, r.Uint32("type oid", i));
    INTERLOCK_ASSIGN_OR_RETURN(f.type_size, r.Int16("type size", i));
    INTERLOCK_ASSIGN_OR_RETURN(f.type_modifier, r.Int32("type modifier", i));
    INTERLOCK_ASSIGN_OR_RETURN(f.format, r.Int16("format", i));
    out.fields.push_back(std::move(f));
  }
  INTERLOCK_RETURN_IF_ERROR(r.End());
  return out;
}

}  // namespace interlock::codec::pg
