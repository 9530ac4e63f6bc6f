// Encoders for PostgreSQL protocol 3.0 messages: struct or arguments in, the whole wire
// message out (type byte, length word, body). The inverse of messages.h: for every message
// struct x, Parse<X>(body of Encode(x)) == x, and for every body a parse function accepts,
// Encode(parsed) reproduces the original bytes.
//
//   conn.Send(EncodeError("FATAL", "28000", "interlock: access denied"));
//   conn.Send(EncodeReadyForQuery(TransactionStatus::kIdle));
//   conn.Send(Encode(rewritten_bind));   // any struct from messages.h
//
// Preconditions, whose violation is a caller bug and aborts (STYLE.md convention 4): String
// fields (names, SQL, tags, error fields, startup parameters) contain no NUL byte, because the
// peer would read a shorter string than the one policy saw; repeated elements number at most
// 65535; a message is at most kMaxMessageBytes (startup packets kMaxStartupPacketBytes).
// Values produced by the parse functions always satisfy them; a caller copying outside data
// (configuration, identity) into a String field must reject NULs first.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::codec::pg {

// Any typed message: `type`, length, `body`. `type` must not be 0.
std::string EncodeMessage(char type, absl::string_view body);

// ---- Startup phase (PostgreSQL 15 docs, 55.7; untyped) --------------------------------------
std::string Encode(const StartupMessage& m);
std::string Encode(const SslRequest& m);
std::string Encode(const GssEncRequest& m);
std::string Encode(const CancelRequest& m);
// Protocol 3.0 with `params` in order (e.g. {{"user", "alice"}, {"database", "app"}}).
std::string EncodeStartupMessage(const std::vector<std::pair<std::string, std::string>>& params);
std::string EncodeSslRequest();
std::string EncodeGssEncRequest();
std::string EncodeCancelRequest(int32_t process_id, int32_t secret_key);

// ---- Frontend (55.7) -------------------------------------------------------------------------
std::string Encode(const Bind& m);
std::string Encode(const Close& m);
std::string Encode(const CopyData& m);  // also the backend's
std::string Encode(const CopyDone& m);  // also the backend's
std::string Encode(const CopyFail& m);
std::string Encode(const Describe& m);
std::string Encode(const Execute& m);
std::string Encode(const Flush& m);
std::string Encode(const FunctionCall& m);
std::string Encode(const Parse& m);
std::string Encode(const PasswordMessage& m);
std::string Encode(const SaslInitialResponse& m);
std::string Encode(const SaslResponse& m);
std::string Encode(const GssResponse& m);
std::string Encode(const Query& m);
std::string Encode(const Sync& m);
std::string Encode(const Terminate& m);
std::string EncodePasswordMessage(absl::string_view password);
// `data` nullopt sends length -1 (no initial response).
std::string EncodeSaslInitialResponse(absl::string_view mechanism,
                                      std::optional<absl::string_view> data);
std::string EncodeSaslResponse(absl::string_view data);
std::string EncodeQuery(absl::string_view query);
std::string EncodeTerminate();

// ---- Backend (55.7) --------------------------------------------------------------------------
std::string Encode(const Authentication& m);
std::string Encode(const BackendKeyData& m);
std::string Encode(const BindComplete& m);
std::string Encode(const CloseComplete& m);
std::string Encode(const CommandComplete& m);
std::string Encode(const CopyInResponse& m);
std::string Encode(const CopyOutResponse& m);
std::string Encode(const CopyBothResponse& m);
std::string Encode(const DataRow& m);
std::string Encode(const EmptyQueryResponse& m);
std::string Encode(const ErrorResponse& m);
std::string Encode(const NoticeResponse& m);
std::string Encode(const FunctionCallResponse& m);
std::string Encode(const NegotiateProtocolVersion& m);
std::string Encode(const NoData& m);
std::string Encode(const NotificationResponse& m);
std::string Encode(const ParameterDescription& m);
std::string Encode(const ParameterStatus& m);
std::string Encode(const ParseComplete& m);
std::string Encode(const PortalSuspended& m);
std::string Encode(const ReadyForQuery& m);
std::string Encode(const RowDescription& m);

// An ErrorResponse with S and V = `severity` ("ERROR", "FATAL"), C = `sqlstate` ("42501"),
// M = `message`, and D = `detail` when not empty.
std::string EncodeError(absl::string_view severity, absl::string_view sqlstate,
                        absl::string_view message, absl::string_view detail = "");
std::string EncodeAuthenticationOk();
std::string EncodeAuthenticationCleartextPassword();
std::string EncodeAuthenticationMd5Password(const std::array<char, 4>& salt);
std::string EncodeAuthenticationSasl(const std::vector<std::string>& mechanisms);
std::string EncodeAuthenticationSaslContinue(absl::string_view data);
std::string EncodeAuthenticationSaslFinal(absl::string_view data);
std::string EncodeParameterStatus(absl::string_view name, absl::string_view value);
std::string EncodeBackendKeyData(int32_t process_id, int32_t secret_key);
std::string EncodeReadyForQuery(TransactionStatus status);
// `newest_minor` is the newest 3.x minor version we support (0); `unrecognized_options` the
// "_pq_." startup parameters we do not.
std::string EncodeNegotiateProtocolVersion(int32_t newest_minor,
                                           const std::vector<std::string>& unrecognized_options);

}  // namespace interlock::codec::pg
