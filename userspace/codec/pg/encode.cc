#include "userspace/codec/pg/encode.h"

#include <cstdio>
#include <cstdlib>

#include "userspace/codec/pg/wire.h"

namespace interlock::codec::pg {
namespace {

using internal::Writer;

std::string Empty(char type) { return Writer(type).Finish(); }

void Int16Array(Writer& w, const std::vector<int16_t>& values) {
  w.Count16(values.size());
  for (int16_t v : values) w.Int16(v);
}

void OidArray(Writer& w, const std::vector<uint32_t>& values) {
  w.Count16(values.size());
  for (uint32_t v : values) w.Uint32(v);
}

void Values(Writer& w, const std::vector<std::optional<absl::string_view>>& values) {
  w.Count16(values.size());
  for (const auto& v : values) w.NullableBytes(v);
}

std::string Fields(char type, const ResponseFields& m) {
  Writer w(type);
  for (const auto& [code, value] : m.fields) {
    // A zero code would end the field list early on the receiving side.
    if (code == 0) {
      std::fprintf(stderr, "interlock: pg codec: zero error field code\n");
      std::abort();
    }
    w.Byte(static_cast<uint8_t>(code));
    w.String(value);
  }
  w.Byte(0);
  return std::move(w).Finish();
}

std::string CopyResponse(char type, const CopyResponseFields& m) {
  Writer w(type);
  w.Byte(static_cast<uint8_t>(m.format));
  Int16Array(w, m.column_formats);
  return std::move(w).Finish();
}

}  // namespace

std::string EncodeMessage(char type, absl::string_view body) {
  if (type == 0) {
    std::fprintf(stderr, "interlock: pg codec: EncodeMessage with type 0\n");
    std::abort();
  }
  Writer w(type);
  w.Bytes(body);
  return std::move(w).Finish();
}

// ---- Startup phase: 55.7 StartupMessage, SSLRequest, GSSENCRequest, CancelRequest ----------

std::string Encode(const StartupMessage& m) {
  Writer w(0);
  w.Uint32((uint32_t{m.major_version} << 16) | m.minor_version);
  for (const auto& [name, value] : m.params) {
    // An empty name would read as the terminator.
    if (name.empty()) {
      std::fprintf(stderr, "interlock: pg codec: empty startup parameter name\n");
      std::abort();
    }
    w.String(name);
    w.String(value);
  }
  w.Byte(0);
  return std::move(w).Finish();
}

std::string Encode(const SslRequest&) {
  Writer w(0);
  w.Uint32(kSslRequestCode);
  return std::move(w).Finish();
}

std::string Encode(const GssEncRequest&) {
  Writer w(0);
  w.Uint32(kGssEncRequestCode);
  return std::move(w).Finish();
}

std::string Encode(const CancelRequest& m) {
  Writer w(0);
  w.Uint32(kCancelRequestCode);
  w.Int32(m.process_id);
  w.Int32(m.secret_key);
  return std::move(w).Finish();
}

std::string EncodeStartupMessage(const std::vector<std::pair<std::string, std::string>>& params) {
  return Encode(StartupMessage{.params = params});
}
std::string EncodeSslRequest() { return Encode(SslRequest{}); }
std::string EncodeGssEncRequest() { return Encode(GssEncRequest{}); }
std::string EncodeCancelRequest(int32_t process_id, int32_t secret_key) {
  return Encode(CancelRequest{.process_id = process_id, .secret_key = secret_key});
}

// ---- Frontend: 55.7 ---------------------------------------------------------------------------

// 55.7 Bind.
std::string Encode(const Bind& m) {
  Writer w(frontend::kBind);
  w.String(m.portal);
  w.String(m.statement);
  Int16Array(w, m.param_formats);
  Values(w, m.params);
  Int16Array(w, m.result_formats);
  return std::move(w).Finish();
}

// 55.7 Close.
std::string Encode(const Close& m) {
  Writer w(frontend::kClose);
  w.Byte(static_cast<uint8_t>(m.kind));
  w.String(m.name);
  return std::move(w).Finish();
}

// 55.7 CopyData.
std::string Encode(const CopyData& m) { return EncodeMessage(frontend::kCopyData, m.data); }

// 55.7 CopyDone.
std::string Encode(const CopyDone&) { return Empty(frontend::kCopyDone); }

// 55.7 CopyFail.
std::string Encode(const CopyFail& m) {
  Writer w(frontend::kCopyFail);
  w.String(m.message);
  return std::move(w).Finish();
}

// 55.7 Describe.
std::string Encode(const Describe& m) {
  Writer w(frontend::kDescribe);
  w.Byte(static_cast<uint8_t>(m.kind));
  w.String(m.name);
  return std::move(w).Finish();
}

// 55.7 Execute.
std::string Encode(const Execute& m) {
  Writer w(frontend::kExecute);
  w.String(m.portal);
  w.Int32(m.max_rows);
  return std::move(w).Finish();
}

// 55.7 Flush.
std::string Encode(const Flush&) { return Empty(frontend::kFlush); }

// 55.7 FunctionCall.
std::string Encode(const FunctionCall& m) {
  Writer w(frontend::kFunctionCall);
  w.Uint32(m.function_oid);
  Int16Array(w, m.arg_formats);
  Values(w, m.args);
  w.Int16(m.result_format);
  return std::move(w).Finish();
}

// 55.7 Parse.
std::string Encode(const Parse& m) {
  Writer w(frontend::kParse);
  w.String(m.statement);
  w.String(m.query);
  OidArray(w, m.param_type_oids);
  return std::move(w).Finish();
}

// 55.7 PasswordMessage.
std::string Encode(const PasswordMessage& m) {
  Writer w(frontend::kPasswordMessage);
  w.String(m.password);
  return std::move(w).Finish();
}

// 55.7 SASLInitialResponse.
std::string Encode(const SaslInitialResponse& m) {
  Writer w(frontend::kPasswordMessage);
  w.String(m.mechanism);
  w.NullableBytes(m.data);
  return std::move(w).Finish();
}

// 55.7 SASLResponse.
std::string Encode(const SaslResponse& m) {
  return EncodeMessage(frontend::kPasswordMessage, m.data);
}

// 55.7 GSSResponse.
std::string Encode(const GssResponse& m) {
  return EncodeMessage(frontend::kPasswordMessage, m.data);
}

// 55.7 Query.
std::string Encode(const Query& m) {
  Writer w(frontend::kQuery);
  w.String(m.query);
  return std::move(w).Finish();
}

// 55.7 Sync.
std::string Encode(const Sync&) { return Empty(frontend::kSync); }

// 55.7 Terminate.
std::string Encode(const Terminate&) { return Empty(frontend::kTerminate); }

std::string EncodePasswordMessage(absl::string_view password) {
  return Encode(PasswordMessage{std::string(password)});
}
std::string EncodeSaslInitialResponse(absl::string_view mechanism,
                                      std::optional<absl::string_view> data) {
  return Encode(SaslInitialResponse{std::string(mechanism), data});
}
std::string EncodeSaslResponse(absl::string_view data) { return Encode(SaslResponse{data}); }
std::string EncodeQuery(absl::string_view query) { return Encode(Query{std::string(query)}); }
std::string EncodeTerminate() { return Encode(Terminate{}); }

// ---- Backend: 55.7 ----------------------------------------------------------------------------

// 55.7 Authentication*.
std::string Encode(const Authentication& m) {
  Writer w(backend::kAuthentication);
  w.Int32(static_cast<int32_t>(m.code));
  switch (m.code) {
    case AuthCode::kMd5Password:
      for (char c : m.md5_salt) w.Byte(static_cast<uint8_t>(c));
      break;
    case AuthCode::kGssContinue:
    case AuthCode::kSaslContinue:
    case AuthCode::kSaslFinal:
      w.Bytes(m.data);
      break;
    case AuthCode::kSasl:
      for (const std::string& mechanism : m.sasl_mechanisms) {
        // An empty name would read as the end of the list.
        if (mechanism.empty()) {
          std::fprintf(stderr, "interlock: pg codec: empty sasl mechanism name\n");
          std::abort();
        }
        w.String(mechanism);
      }
      w.Byte(0);
      break;
    default:
      break;
  }
  return std::move(w).Finish();
}

// 55.7 BackendKeyData.
std::string Encode(const BackendKeyData& m) {
  Writer w(backend::kBackendKeyData);
  w.Int32(m.process_id);
  w.Int32(m.secret_key);
  return std::move(w).Finish();
}

// 55.7 BindComplete.
std::string Encode(const BindComplete&) { return Empty(backend::kBindComplete); }

// 55.7 CloseComplete.
std::string Encode(const CloseComplete&) { return Empty(backend::kCloseComplete); }

// 55.7 CommandComplete.
std::string Encode(const CommandComplete& m) {
  Writer w(backend::kCommandComplete);
  w.String(m.tag);
  return std::move(w).Finish();
}

// 55.7 CopyInResponse, CopyOutResponse, CopyBothResponse.
std::string Encode(const CopyInResponse& m) { return CopyResponse(backend::kCopyInResponse, m); }
std::string Encode(const CopyOutResponse& m) { return CopyResponse(backend::kCopyOutResponse, m); }
std::string Encode(const CopyBothResponse& m) {
  return CopyResponse(backend::kCopyBothResponse, m);
}

// 55.7 DataRow.
std::string Encode(const DataRow& m) {
  Writer w(backend::kDataRow);
  Values(w, m.columns);
  return std::move(w).Finish();
}

// 55.7 EmptyQueryResponse.
std::string Encode(const EmptyQueryResponse&) { return Empty(backend::kEmptyQueryResponse); }

// 55.7 ErrorResponse, NoticeResponse.
std::string Encode(const ErrorResponse& m) { return Fields(backend::kErrorResponse, m); }
std::string Encode(const NoticeResponse& m) { return Fields(backend::kNoticeResponse, m); }

// 55.7 FunctionCallResponse.
std::string Encode(const FunctionCallResponse& m) {
  Writer w(backend::kFunctionCallResponse);
  w.NullableBytes(m.result);
  return std::move(w).Finish();
}

// 55.7 NegotiateProtocolVersion.
std::string Encode(const NegotiateProtocolVersion& m) {
  Writer w(backend::kNegotiateProtocolVersion);
  w.Int32(m.newest_minor);
  w.Int32(static_cast<int32_t>(m.unrecognized_options.size()));
  for (const std::string& option : m.unrecognized_options) w.String(option);
  return std::move(w).Finish();
}

// 55.7 NoData.
std::string Encode(const NoData&) { return Empty(backend::kNoData); }

// 55.7 NotificationResponse.
std::string Encode(const NotificationResponse& m) {
  Writer w(backend::kNotificationResponse);
  w.Int32(m.process_id);
  w.String(m.channel);
  w.String(m.payload);
  return std::move(w).Finish();
}

// 55.7 ParameterDescription.
std::string Encode(const ParameterDescription& m) {
  Writer w(backend::kParameterDescription);
  OidArray(w, m.type_oids);
  return std::move(w).Finish();
}

// 55.7 ParameterStatus.
std::string Encode(const ParameterStatus& m) {
  Writer w(backend::kParameterStatus);
  w.String(m.name);
  w.String(m.value);
  return std::move(w).Finish();
}

// 55.7 ParseComplete.
std::string Encode(const ParseComplete&) { return Empty(backend::kParseComplete); }

// 55.7 PortalSuspended.
std::string Encode(const PortalSuspended&) { return Empty(backend::kPortalSuspended); }

// 55.7 ReadyForQuery.
std::string Encode(const ReadyForQuery& m) {
  Writer w(backend::kReadyForQuery);
  w.Byte(static_cast<uint8_t>(m.status));
  return std::move(w).Finish();
}

// 55.7 RowDescription.
std::string Encode(const RowDescription& m) {
  Writer w(backend::kRowDescription);
  w.Count16(m.fields.size());
  for (const FieldDescription& f : m.fields) {
    w.String(f.name);
    w.Uint32(f.table_oid);
    w.Int16(f.column_attr);
    w.Uint32(f.type_oid);
    w.Int16(f.type_size);
    w.Int32(f.type_modifier);
    w.Int16(f.format);
  }
  return std::move(w).Finish();
}

std::string EncodeError(absl::string_view severity, absl::string_view sqlstate,
                        absl::string_view message, absl::string_view detail) {
  ErrorResponse e;
  e.fields = {
      {field::kSeverity, std::string(severity)},
      {field::kSeverityNonLocalized, std::string(severity)},
      {field::kSqlState, std::string(sqlstate)},
      {field::kMessage, std::string(message)},
  };
  if (!detail.empty()) e.fields.emplace_back(field::kDetail, std::string(detail));
  return Encode(e);
}

std::string EncodeAuthenticationOk() { return Encode(Authentication{.code = AuthCode::kOk}); }
std::string EncodeAuthenticationCleartextPassword() {
  return Encode(Authentication{.code = AuthCode::kCleartextPassword});
}
std::string EncodeAuthenticationMd5Password(const std::array<char, 4>& salt) {
  return Encode(Authentication{.code = AuthCode::kMd5Password, .md5_salt = salt});
}
std::string EncodeAuthenticationSasl(const std::vector<std::string>& mechanisms) {
  return Encode(Authentication{.code = AuthCode::kSasl, .sasl_mechanisms = mechanisms});
}
std::string EncodeAuthenticationSaslContinue(absl::string_view data) {
  return Encode(Authentication{.code = AuthCode::kSaslContinue, .data = data});
}
std::string EncodeAuthenticationSaslFinal(absl::string_view data) {
  return Encode(Authentication{.code = AuthCode::kSaslFinal, .data = data});
}
std::string EncodeParameterStatus(absl::string_view name, absl::string_view value) {
  return Encode(ParameterStatus{std::string(name), std::string(value)});
}
std::string EncodeBackendKeyData(int32_t process_id, int32_t secret_key) {
  return Encode(BackendKeyData{.process_id = process_id, .secret_key = secret_key});
}
std::string EncodeReadyForQuery(TransactionStatus status) { return Encode(ReadyForQuery{status}); }
std::string EncodeNegotiateProtocolVersion(int32_t newest_minor,
                                           const std::vector<std::string>& unrecognized_options) {
  return Encode(NegotiateProtocolVersion{newest_minor, unrecognized_options});
}

}  // namespace interlock::codec::pg
