#include "userspace/audit/sinks/syslog_format.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/audit/json_writer.h"
#include "userspace/audit/sinks/event_body.h"

namespace interlock::audit::sinks {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629 table: no
// overlong forms, no surrogates, at most U+10FFFF), or 0 when it is not one.
size_t Utf8Length(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

// PRINTUSASCII (%d33-126) only, at most `max` characters; "-" (NILVALUE) when empty.
std::string HeaderField(absl::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 33 && c <= 126 ? c : '_');
  return out.empty() ? "-" : out;
}

// RFC 3339 from the event ("2026-11-26T01:36:20.123456789Z") with the fraction cut to 6
// digits (section 6.2.3); "-" when it does not look like our own stamp.
std::string Timestamp(absl::string_view t) {
  if (t.size() < 20 || t[4] != '-' || t[10] != 'T' || !absl::EndsWith(t, "Z")) return "-";
  for (char c : t) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == ':' || c == 'T' || c == '.' || c == 'Z'))
      return "-";
  }
  size_t dot = t.find('.');
  if (dot == absl::string_view::npos) return std::string(t);
  absl::string_view frac = t.substr(dot + 1, t.size() - dot - 2);
  if (frac.empty()) return "-";
  return absl::StrCat(t.substr(0, dot + 1), frac.substr(0, 6), "Z");
}

int Severity(const v1::AuditEvent& e) {
  switch (e.kind()) {
    case v1::AUDIT_KIND_CONNECT_DENIED:
    case v1::AUDIT_KIND_SESSION_REJECTED:
    case v1::AUDIT_KIND_PROTOCOL_ERROR:
    case v1::AUDIT_KIND_POLICY_DECISION:
      return 4;
    default:
      return e.outcome() == "denied" ? 4 : 5;
  }
}

void AppendParam(absl::string_view name, absl::string_view value, std::string* out) {
  if (value.empty()) return;
  absl::StrAppend(out, " ", name, "=\"");
  AppendSdParamValue(value, kMaxSdValueBytes, out);
  out->push_back('"');
}

}  // namespace

std::string KindName(v1::AuditKind kind) {
  const std::string& full = v1::AuditKind_Name(kind);
  if (full.empty()) return "UNKNOWN";
  constexpr absl::string_view kPrefix = "AUDIT_KIND_";
  absl::string_view name = full;
  if (absl::StartsWith(name, kPrefix)) name.remove_prefix(kPrefix.size());
  return std::string(name.substr(0, 32));
}

void AppendSdParamValue(absl::string_view value, size_t max_bytes, std::string* out) {
  size_t used = 0;
  while (!value.empty()) {
    size_t n = Utf8Length(value);
    const size_t take = n == 0 ? 1 : n;
    const bool special = n == 1 && (value[0] == '"' || value[0] == '\\' || value[0] == ']');
    const size_t written = n == 0 ? 3 : special ? 2 : n;
    if (used + written > max_bytes) break;
    used += written;
    if (n == 0) {
      out->append("\xEF\xBF\xBD");  // U+FFFD for the bad byte
    } else if (n == 1) {
      const char c = value[0];
      if (c == '"' || c == '\\' || c == ']') {
        out->push_back('\\');
        out->push_back(c);
      } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        out->push_back('?');
      } else {
        out->push_back(c);
      }
    } else {
      out->append(value.data(), n);
    }
    value.remove_prefix(take);
  }
}

std::string FormatSyslogMessage(const v1::AuditEvent& event, const SyslogFormatOptions& options) {
  std::string out;
  out.reserve(1024);
  const int pri = static_cast<int>(std::min<uint32_t>(options.facility, 23)) * 8 + Severity(event);
  absl::StrAppend(&out, "<", pri, ">1 ", Timestamp(event.time()), " ",
                  HeaderField(event.host(), 255), " ", HeaderField(options.app_name, 48), " ",
                  options.procid > 0 ? absl::StrCat(options.procid) : std::string("-"), " ",
                  HeaderField(KindName(event.kind()), 32), " [", kSdId);
  AppendParam("id", event.id(), &out);
  AppendParam("kind", KindName(event.kind()), &out);
  AppendParam("session", event.session_id(), &out);
  AppendParam("workload", event.identity().workload(), &out);
  AppendParam("resource", event.resource(), &out);
  absl::string_view decision = event.decision().action();
  if (decision.empty()) decision = event.statement().decision().action();
  AppendParam("decision", decision, &out);
  AppendParam("outcome", event.outcome(), &out);
  out.append("] \xEF\xBB\xBF");  // BOM: MSG is UTF-8 (section 6.4)
  AppendEventBody(options.format, event, &out);
  return out;
}

void AppendOctetCountedFrame(absl::string_view msg, std::string* out) {
  absl::StrAppend(out, msg.size(), " ", msg);
}

std::string OctetCountedFrame(absl::string_view msg) {
  std::string out;
  AppendOctetCountedFrame(msg, &out);
  return out;
}

std::string TruncateForDatagram(absl::string_view msg, size_t max_bytes) {
  if (msg.size() <= max_bytes) return std::string(msg);
  size_t cut = max_bytes;
  // Back up over continuation bytes (10xxxxxx) so the lead byte of a cut sequence goes too.
  while (cut > 0 && (static_cast<unsigned char>(msg[cut]) & 0xC0) == 0x80) --cut;
  return std::string(msg.substr(0, cut));
}

}  // namespace interlock::audit::sinks
