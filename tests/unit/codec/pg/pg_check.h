// Property checks over interlock_codec_pg, shared by the garbage unit test and the libFuzzer
// target (tests/fuzz/pg/pg_codec_fuzz.cc), so both hold the codec to the same contract. No
// gtest here: a violated property prints what broke and aborts, which both harnesses report.
//
//   CheckEveryParser(bytes);            // every parse function on `bytes` as a body
//   CheckTypedStream(bytes, max_len);   // PeekFrame/PeekHeader over a stream, parse each frame
//   CheckStartupStream(bytes);          // PeekStartupFrame + ParseStartupPacket
//   CheckStartupBody(bytes);            // ParseStartupPacket on `bytes` as a body
//
// The contract: a parse function either fails with INVALID_ARGUMENT "pg: ..." or returns a
// value whose encoding reproduces the body byte for byte (the parsers accept only canonical
// bodies: no trailing bytes, validated enums) and parses back to an equal value.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::codec::pg::testing {

[[noreturn]] inline void PropertyFailed(absl::string_view what, absl::string_view bytes) {
  std::fprintf(stderr, "pg codec property failed: %.*s (%zu input bytes)\n",
               static_cast<int>(what.size()), what.data(), bytes.size());
  std::abort();
}

inline void CheckError(const absl::Status& status, absl::string_view bytes) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    PropertyFailed("error is not INVALID_ARGUMENT", bytes);
  }
  if (!absl::StartsWith(status.message(), "pg: ")) PropertyFailed("error lacks context", bytes);
}

// Parses `body` with P; on success checks Encode(parsed) == type + length + body and that it
// parses back to an equal value. Returns whether P accepted the body.
template <typename T, absl::StatusOr<T> (*P)(absl::string_view)>
bool CheckParser(char type, absl::string_view body) {
  absl::StatusOr<T> parsed = P(body);
  if (!parsed.ok()) {
    CheckError(parsed.status(), body);
    return false;
  }
  const std::string wire = Encode(*parsed);
  absl::StatusOr<std::optional<Frame>> frame = PeekFrame(wire, kMaxMessageBytes);
  if (!frame.ok() || !frame->has_value()) PropertyFailed("encoding does not frame", body);
  if ((*frame)->type != type) PropertyFailed("encoding has the wrong type byte", body);
  if ((*frame)->total_bytes != wire.size()) PropertyFailed("encoding has extra bytes", body);
  if ((*frame)->body != body) PropertyFailed("encoding differs from the parsed body", body);
  absl::StatusOr<T> again = P((*frame)->body);
  if (!again.ok() || !(*again == *parsed)) PropertyFailed("round trip differs", body);
  return true;
}

struct ParserEntry {
  char type;
  bool from_frontend;
  bool (*check)(char type, absl::string_view body);
};

// Every parse function, with the type byte and direction it belongs to.
inline constexpr ParserEntry kParsers[] = {
    {frontend::kBind, true, &CheckParser<Bind, &ParseBind>},
    {frontend::kClose, true, &CheckParser<Close, &ParseClose>},
    {frontend::kCopyData, true, &CheckParser<CopyData, &ParseCopyData>},
    {frontend::kCopyDone, true, &CheckParser<CopyDone, &ParseCopyDone>},
    {frontend::kCopyFail, true, &CheckParser<CopyFail, &ParseCopyFail>},
    {frontend::kDescribe, true, &CheckParser<Describe, &ParseDescribe>},
    {frontend::kExecute, true, &CheckParser<Execute, &ParseExecute>},
    {frontend::kFlush, true, &CheckParser<Flush, &ParseFlush>},
    {frontend::kFunctionCall, true, &CheckParser<FunctionCall, &ParseFunctionCall>},
    {frontend::kParse, true, &CheckParser<Parse, &ParseParse>},
    {frontend::kPasswordMessage, true, &CheckParser<PasswordMessage, &ParsePasswordMessage>},
    {frontend::kPasswordMessage, true,
     &CheckParser<SaslInitialResponse, &ParseSaslInitialResponse>},
    {frontend::kPasswordMessage, true, &CheckParser<SaslResponse, &ParseSaslResponse>},
    {frontend::kPasswordMessage, true, &CheckParser<GssResponse, &ParseGssResponse>},
    {frontend::kQuery, true, &CheckParser<Query, &ParseQuery>},
    {frontend::kSync, true, &CheckParser<Sync, &ParseSync>},
    {frontend::kTerminate, true, &CheckParser<Terminate, &ParseTerminate>},
    {backend::kCopyData, false, &CheckParser<CopyData, &ParseCopyData>},
    {backend::kCopyDone, false, &CheckParser<CopyDone, &ParseCopyDone>},
    {backend::kAuthentication, false, &CheckParser<Authentication, &ParseAuthentication>},
    {backend::kBackendKeyData, false, &CheckParser<BackendKeyData, &ParseBackendKeyData>},
    {backend::kBindComplete, false, &CheckParser<BindComplete, &ParseBindComplete>},
    {backend::kCloseComplete, false, &CheckParser<CloseComplete, &ParseCloseComplete>},
    {backend::kCommandComplete, false, &CheckParser<CommandComplete, &ParseCommandComplete>},
    {backend::kCopyInResponse, false, &CheckParser<CopyInResponse, &ParseCopyInResponse>},
    {backend::kCopyOutResponse, false, &CheckParser<CopyOutResponse, &ParseCopyOutResponse>},
    {backend::kCopyBothResponse, false, &CheckParser<CopyBothResponse, &ParseCopyBothResponse>},
    {backend::kDataRow, false, &CheckParser<DataRow, &ParseDataRow>},
    {backend::kEmptyQueryResponse, false,
     &CheckParser<EmptyQueryResponse, &ParseEmptyQueryResponse>},
    {backend::kErrorResponse, false, &CheckParser<ErrorResponse, &ParseErrorResponse>},
    {backend::kFunctionCallResponse, false,
     &CheckParser<FunctionCallResponse, &ParseFunctionCallResponse>},
    {backend::kNegotiateProtocolVersion, false,
     &CheckParser<NegotiateProtocolVersion, &ParseNegotiateProtocolVersion>},
    {backend::kNoData, false, &CheckParser<NoData, &ParseNoData>},
    {backend::kNoticeResponse, false, &CheckParser<NoticeResponse, &ParseNoticeResponse>},
    {backend::kNotificationResponse, false,
     &CheckParser<NotificationResponse, &ParseNotificationResponse>},
    {backend::kParameterDescription, false,
     &CheckParser<ParameterDescription, &ParseParameterDescription>},
    {backend::kParameterStatus, false, &CheckParser<ParameterStatus, &ParseParameterStatus>},
    {backend::kParseComplete, false, &CheckParser<ParseComplete, &ParseParseComplete>},
    {backend::kPortalSuspended, false, &CheckParser<PortalSuspended, &ParsePortalSuspended>},
    {backend::kReadyForQuery, false, &CheckParser<ReadyForQuery, &ParseReadyForQuery>},
    {backend::kRowDescription, false, &CheckParser<RowDescription, &ParseRowDescription>},
};

// Every parse function on `body`. Returns how many accepted it.
inline int CheckEveryParser(absl::string_view body) {
  int accepted = 0;
  for (const ParserEntry& p : kParsers) accepted += p.check(p.type, body) ? 1 : 0;
  return accepted;
}

// The parse functions that a message of `type` may need, in either direction.
inline int CheckTypedBody(char type, absl::string_view body) {
  int accepted = 0;
  for (const ParserEntry& p : kParsers) {
    if (p.type == type) accepted += p.check(p.type, body) ? 1 : 0;
  }
  return accepted;
}

// Walks `buf` as a stream of typed messages until it ends, is incomplete or fails. Returns the
// number of whole frames seen.
inline int CheckTypedStream(absl::string_view buf, uint32_t max_len) {
  int frames = 0;
  while (true) {
    absl::StatusOr<std::optional<FrameHeader>> header = PeekHeader(buf, max_len);
    absl::StatusOr<std::optional<Frame>> frame = PeekFrame(buf, max_len);
    if (header.ok() != frame.ok()) PropertyFailed("PeekHeader and PeekFrame disagree", buf);
    if (!frame.ok()) {
      CheckError(frame.status(), buf);
      return frames;
    }
    if (!frame->has_value()) {
      if (header->has_value() && buf.size() >= (*header)->total_bytes) {
        PropertyFailed("complete message not framed", buf);
      }
      return frames;
    }
    const Frame& f = **frame;
    if (!header->has_value() || (*header)->type != f.type || (*header)->length != f.length ||
        (*header)->total_bytes != f.total_bytes) {
      PropertyFailed("PeekHeader and PeekFrame disagree", buf);
    }
    if (f.length < kMinMessageLength || f.length > max_len || f.length > kMaxMessageBytes ||
        f.total_bytes != f.length + 1 || f.total_bytes > buf.size() ||
        f.body.size() != f.length - 4 || f.body.data() != buf.data() + kMessageHeaderBytes) {
      PropertyFailed("frame out of bounds", buf);
    }
    CheckTypedBody(f.type, f.body);
    if (f.type == backend::kCommandComplete) {
      absl::StatusOr<CommandComplete> cc = ParseCommandComplete(f.body);
      if (cc.ok()) (void)CommandTagRowCount(cc->tag);
    }
    ++frames;
    buf.remove_prefix(f.total_bytes);
  }
}

// ParseStartupPacket on a startup-packet body; on success checks the round trip.
inline void CheckStartupBody(absl::string_view body) {
  absl::StatusOr<StartupPacket> packet = ParseStartupPacket(body);
  if (!packet.ok()) {
    CheckError(packet.status(), body);
    return;
  }
  const std::string wire = std::visit([](const auto& m) { return Encode(m); }, *packet);
  absl::StatusOr<std::optional<Frame>> again = PeekStartupFrame(wire);
  if (!again.ok() || !again->has_value() || (*again)->total_bytes != wire.size()) {
    PropertyFailed("startup encoding does not frame", body);
  }
  // Only 3.x bodies are parsed in full; other versions are reported, not kept.
  const auto* startup = std::get_if<StartupMessage>(&*packet);
  if ((startup == nullptr || startup->major_version == kProtocolMajor) && (*again)->body != body) {
    PropertyFailed("startup encoding differs from the parsed body", body);
  }
  absl::StatusOr<StartupPacket> reparsed = ParseStartupPacket((*again)->body);
  if (!reparsed.ok() || !(*reparsed == *packet)) {
    PropertyFailed("startup round trip differs", body);
  }
  if (startup != nullptr) (void)startup->Find("user");
}

// PeekStartupFrame on the first bytes of a connection, then CheckStartupBody.
inline void CheckStartupStream(absl::string_view buf) {
  absl::StatusOr<std::optional<Frame>> frame = PeekStartupFrame(buf);
  if (!frame.ok()) {
    CheckError(frame.status(), buf);
    return;
  }
  if (!frame->has_value()) return;
  const Frame& f = **frame;
  if (f.type != 0 || f.length < kMinStartupPacketBytes || f.length > kMaxStartupPacketBytes ||
      f.total_bytes != f.length || f.total_bytes > buf.size() || f.body.size() != f.length - 4 ||
      f.body.data() != buf.data() + kStartupHeaderBytes) {
    PropertyFailed("startup frame out of bounds", buf);
  }
  CheckStartupBody(f.body);
}

}  // namespace interlock::codec::pg::testing
