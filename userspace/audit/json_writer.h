// Audit events as JSON lines: the proto3 JSON mapping with original (snake_case) field
// names, one object per line. The hot messages of the statement path (AuditEvent,
// WorkloadIdentity, Endpoint, StatementInfo, PolicyDecision) are written through their
// generated accessors; every other message through reflection. Both give the same bytes
// (tests/unit/audit/json_writer_test.cc checks it field by field, so a field added to the
// schema without the typed writer knowing fails a test instead of going missing).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "interlock/v1/events.pb.h"

namespace interlock::audit {

// Serializes one event as a single JSON line (snake_case field names, no newlines inside,
// a trailing '\n'). Strings that are not valid UTF-8 get U+FFFD per bad byte.
std::string EventToJsonLine(const v1::AuditEvent& event);
// The same line appended to `out` (no temporary string).
void AppendEventJsonLine(std::string* out, const v1::AuditEvent& event);

// The audit chain's fields of one line (events.proto AuditEvent.seq, prev_sha256).
struct ChainLink {
  uint64_t seq = 0;
  std::string prev_sha256;  // 64 lower-case hex digits
};
// The line as if `event` had seq and prev_sha256 set from `link` (whatever it holds): what
// the file sink writes, without copying the event.
void AppendEventJsonLine(std::string* out, const v1::AuditEvent& event, const ChainLink& link);

namespace internal {
// The same line written by reflection only (the reference for the typed writer).
std::string EventToJsonLineByReflection(const v1::AuditEvent& event);
}  // namespace internal

}  // namespace interlock::audit
