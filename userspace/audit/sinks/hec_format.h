// Splunk HTTP Event Collector requests for audit events. Pure: events in, bytes out.
//
//   HecMetadata m{.source = "interlockd", .sourcetype = "interlock:audit"};
//   for (const std::string& body : BuildHecBodies(events, m, 1 << 20)) {
//     std::string req = BuildHecRequest("splunk:8088", "/services/collector/event", token, body);
//     ... write req; read the answer; ClassifyHecStatus(status) ...
//   }
//
// A body is HEC's batch form: event objects concatenated, one per line,
//   {"time":1764121000.123456,"host":"h","source":"interlockd","sourcetype":"interlock:audit",
//    "index":"main","event":{...the protobuf-JSON event of the local file...}}
// with "time" the event's own time (epoch seconds, microseconds) and empty fields left out.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "interlock/v1/events.pb.h"
#include "userspace/config/config.h"

namespace interlock::audit::sinks {

struct HecMetadata {
  std::string index;       // empty: not sent
  std::string source;      // empty: not sent
  std::string sourcetype;  // empty: not sent
  // "event" as the audit JSON line, OCSF or ECS (event_body.h).
  config::AuditSinkFormat format = config::AuditSinkFormat::kJson;
};

// Appends one event object (and a '\n') to `out`.
void AppendHecEvent(const v1::AuditEvent& event, const HecMetadata& meta, std::string* out);

// The events as request bodies of at most `max_bytes` each, in order; an event bigger than
// that on its own gets a body of its own (HEC's limit is the server's to enforce).
std::vector<std::string> BuildHecBodies(const std::vector<v1::AuditEvent>& events,
                                        const HecMetadata& meta, size_t max_bytes);

// An HTTP/1.1 POST of `body` with Authorization: Splunk <token>, keep-alive.
// `host_header` is the URL's authority ("splunk.example:8088").
std::string BuildHecRequest(absl::string_view host_header, absl::string_view path,
                            absl::string_view token, absl::string_view body);

enum class HecVerdict {
  kAcknowledged,  // 2xx
  kRetry,         // 429, 5xx (and connection errors, decided by the caller)
  kRejected,      // any other status: 4xx, and 1xx/3xx as final answers (misconfiguration)
};
HecVerdict ClassifyHecStatus(int status);

}  // namespace interlock::audit::sinks
