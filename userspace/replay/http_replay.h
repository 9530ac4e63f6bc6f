// HTTP-aware replay: the records of a recording whose SessionOpen.protocol is "http" as a
// timeline of exchanges — request lines, headers and body previews the agent sent, status
// lines, headers and body previews it received (from the upstream, or interlockd's own
// answers) — instead of raw byte previews (record/replay.h FormatTimeline).
//
//        +0.412ms  agent   GET /v1/customers/7 HTTP/1.1
//                            host: crm.demo
//                            authorization: (not shown)
//        +1.903ms  server  200 OK  application/json, 41 bytes
//                            body: {"id": 7, "name": "Ada"}
//
// Bodies are followed by their framing (Content-Length, chunked) and shown as a preview
// (body_preview_chars, escaped). Authorization, Proxy-Authorization and Cookie values are
// never printed. A stream that stops parsing (a request interlockd refused as malformed
// is recorded as the agent sent it) is shown raw from there on, as FormatTimeline shows
// it. Everything printed is escaped. Never fails.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "interlock/v1/record.pb.h"
#include "userspace/record/replay.h"

namespace interlock::replay {

struct HttpTimelineOptions {
  record::TimelineOptions raw;
  size_t body_preview_chars = 160;
};

std::string FormatHttpTimeline(const std::vector<v1::Record>& records, const HttpTimelineOptions& options);

}  // namespace interlock::replay
