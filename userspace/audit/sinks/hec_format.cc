#include "userspace/audit/sinks/hec_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "userspace/audit/json_writer.h"
#include "userspace/audit/sinks/event_body.h"
#include "userspace/common/json_text.h"

namespace interlock::audit::sinks {
namespace {

void AppendStringField(absl::string_view name, absl::string_view value, std::string* out) {
  if (value.empty()) return;
  absl::StrAppend(out, ",\"", name, "\":");
  AppendJsonQuoted(value, out);
}

}  // namespace

void AppendHecEvent(const v1::AuditEvent& event, const HecMetadata& meta, std::string* out) {
  out->append("{");
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, event.time(), &t, &err)) {
    const int64_t us = absl::ToUnixMicros(t);
    // Seconds with 6 decimals; floor division keeps pre-1970 times right too.
    const int64_t sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    absl::StrAppend(out, "\"time\":", absl::StrFormat("%d.%06d", sec, us - sec * 1000000));
  } else {
    // No usable time: HEC stamps the event on arrival.
    absl::StrAppend(out, "\"time\":null");
  }
  AppendStringField("host", event.host(), out);
  AppendStringField("source", meta.source, out);
  AppendStringField("sourcetype", meta.sourcetype, out);
  AppendStringField("index", meta.index, out);
  out->append(",\"event\":");
  AppendEventBody(meta.format, event, out);
  out->append("}\n");
}

std::vector<std::string> BuildHecBodies(const std::vector<v1::AuditEvent>& events,
                                        const HecMetadata& meta, size_t max_bytes) {
  std::vector<std::string> bodies;
  std::string current;
  std::string one;
  for (const v1::AuditEvent& e : events) {
    one.clear();
    AppendHecEvent(e, meta, &one);
    if (!current.empty() && current.size() + one.size() > max_bytes) {
      bodies.push_back(std::move(current));
      current.clear();
    }
    current += one;
  }
  if (!current.empty()) bodies.push_back(std::move(current));
  return bodies;
}

std::string BuildHecRequest(absl::string_view host_header, absl::string_view path,
                            absl::string_view token, absl::string_view body) {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: ", host_header,
                      "\r\nAuthorization: Splunk ", token,
                      "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\nUser-Agent: interlockd\r\n\r\n", body);
}

HecVerdict ClassifyHecStatus(int status) {
  if (status >= 200 && status <= 299) return HecVerdict::kAcknowledged;
  if (status == 429 || (status >= 500 && status <= 599)) return HecVerdict::kRetry;
  return HecVerdict::kRejected;
}

}  // namespace interlock::audit::sinks
