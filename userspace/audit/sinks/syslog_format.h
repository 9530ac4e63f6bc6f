// RFC 5424 syslog messages for audit events, and their framings. Pure: an event in, bytes
// out; no sockets (syslog_sink.h sends them).
//
//   SyslogFormatOptions o{.app_name = "interlockd", .facility = 13, .procid = getpid()};
//   std::string msg = FormatSyslogMessage(event, o);     // "<109>1 2026-... host interlockd ..."
//   std::string framed = OctetCountedFrame(msg);         // RFC 6587 3.4.1: "LEN SP MSG"
//   std::string datagram = TruncateForDatagram(msg, 8192);
//
// A message (RFC 5424 section 6):
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [interlock@32473 ...] BOM{json}
// - PRI: facility * 8 + severity; severity 4 (warning) for refusals (CONNECT_DENIED,
//   SESSION_REJECTED, PROTOCOL_ERROR, POLICY_DECISION, outcome "denied"), 5 (notice) else.
// - TIMESTAMP: the event's own time (not the send time), cut to microseconds (section
//   6.2.3 allows at most 6 fraction digits); "-" when the event has none.
// - HOSTNAME: the event's host, printable US-ASCII, at most 255; "-" when empty.
// - MSGID: the audit kind without its prefix ("SESSION_START"), at most 32 characters.
// - STRUCTURED-DATA: one element, SD-ID kSdId, with id, kind, session, workload, resource,
//   decision, outcome — each present only when non-empty, values escaped per section
//   6.3.3 ('"', '\' and ']' get a backslash), invalid UTF-8 and control characters
//   replaced, and cut on a character boundary to at most kMaxSdValueBytes once escaped.
//   The header and SD together stay below kMaxHeaderAndSdBytes, so a datagram of at least
//   that size always carries them whole.
// - MSG: UTF-8 BOM then the event as the same protobuf-JSON object as the local file line.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/strings/string_view.h"
#include "interlock/v1/events.pb.h"
#include "userspace/config/config.h"

namespace interlock::audit::sinks {

// SD-ID of our element: "name@<private enterprise number>" (section 7.2.2).
inline constexpr absl::string_view kSdId = "interlock@32473";
// Longest SD-PARAM value as written (escaped), bytes.
inline constexpr size_t kMaxSdValueBytes = 192;
// Upper bound of HEADER + SP + STRUCTURED-DATA + SP + BOM (see above).
inline constexpr size_t kMaxHeaderAndSdBytes = 2048;

struct SyslogFormatOptions {
  std::string app_name = "interlockd";  // 1..48 PRINTUSASCII (validated by config)
  uint32_t facility = 13;               // 0..23
  pid_t procid = 0;                     // 0: "-"
  // MSG as the audit JSON line, OCSF or ECS (event_body.h).
  config::AuditSinkFormat format = config::AuditSinkFormat::kJson;
};

// The whole RFC 5424 message, without framing or trailing newline.
std::string FormatSyslogMessage(const v1::AuditEvent& event, const SyslogFormatOptions& options);

// RFC 6587 section 3.4.1 octet counting: the decimal length of `msg`, SP, `msg`.
std::string OctetCountedFrame(absl::string_view msg);
void AppendOctetCountedFrame(absl::string_view msg, std::string* out);

// `msg` cut to at most `max_bytes` without splitting a UTF-8 sequence (RFC 5426 section
// 3.2 lets a sender truncate; the JSON in MSG is then incomplete).
std::string TruncateForDatagram(absl::string_view msg, size_t max_bytes);

// Section 6.3.3: PARAM-VALUE escaping ('"', '\', ']'), UTF-8 repaired (U+FFFD per bad
// byte), control characters as '?'; stops before the character that would make the appended
// text longer than `max_bytes`.
void AppendSdParamValue(absl::string_view value, size_t max_bytes, std::string* out);

// The audit kind as MSGID: "SESSION_START"; "UNKNOWN" for values the schema does not name.
std::string KindName(v1::AuditKind kind);

}  // namespace interlock::audit::sinks
