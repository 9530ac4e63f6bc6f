#include "userspace/control/metrics_text.h"

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace interlock::control {

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// Builds one family at a time: HELP, TYPE, then its samples.
class Writer {
 public:
  void Family(absl::string_view name, absl::string_view type, absl::string_view help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    name_ = std::string(name);
  }
  void Sample(uint64_t value, const std::vector<std::pair<absl::string_view, absl::string_view>>& labels = {}) {
    out_ += name_;
    if (!labels.empty()) {
      out_ += "{";
      for (size_t i = 0; i < labels.size(); ++i) {
        absl::StrAppend(&out_, i > 0 ? "," : "", labels[i].first, "=\"", EscapeLabelValue(labels[i].second), "\"");
      }
      out_ += "}";
    }
    absl::StrAppend(&out_, " ", value, "\n");
  }
  // A family with one unlabelled sample.
  void One(absl::string_view name, absl::string_view type, absl::string_view help, uint64_t value) {
    Family(name, type, help);
    Sample(value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

// Map fields in a stable (sorted) order.
template <typename Map>
std::vector<std::pair<std::string, uint64_t>> Sorted(const Map& m) {
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

std::string PrometheusText(const v1::StatusResponse& s) {
  Writer w;
  w.Family("interlock_sessions_active", "gauge", "Sessions interlockd relays now, by protocol.");
  for (const auto& [protocol, n] : Sorted(s.sessions_by_protocol())) w.Sample(n, {{"protocol", protocol}});
  w.Family("interlock_sessions_active_by_resource", "gauge", "Sessions interlockd relays now, by resource.");
  for (const auto& [resource, n] : Sorted(s.sessions_by_resource())) w.Sample(n, {{"resource", resource}});
  w.Family("interlock_sessions_total", "counter", "Sessions started since interlockd started, by resource.");
  for (const auto& [resource, n] : Sorted(s.sessions_total_by_resource())) w.Sample(n, {{"resource", resource}});
  w.One("interlock_sessions_refused_disk_full_total", "counter",
        "New sessions refused because the recordings' disk was below its free-space floor.",
        s.recordings().refused_disk_full());
  w.Family("interlock_audit_events_total", "counter",
           "Audit events emitted since interlockd started, by kind and outcome (policy decisions: "
           "kind AUDIT_KIND_POLICY_DECISION).");
  std::vector<std::tuple<std::string, std::string, uint64_t>> events;
  for (const v1::AuditEventCount& c : s.audit_events()) events.emplace_back(c.kind(), c.outcome(), c.count());
  std::sort(events.begin(), events.end());
  for (const auto& [kind, outcome, n] : events) w.Sample(n, {{"kind", kind}, {"outcome", outcome}});
  w.One("interlock_audit_errors_total", "counter", "Audit events the local file or a sink failed to take.",
        s.audit_errors());
  w.One("interlock_holds_pending", "gauge", "Statements held for approval on this instance.", s.held_approvals());
  w.One("interlock_connects_denied_total", "counter",
        "Connects the kernel refused (EPERM) that interlockd was told about.", s.denied_connects());
  w.One("interlock_kernel_redirected_total", "counter", "Connects the kernel hook redirected to interlockd.",
        s.kernel_redirected());
  w.One("interlock_kernel_denied_total", "counter", "Connects the kernel hook refused.", s.kernel_denied());
  w.One("interlock_kernel_events_dropped_total", "counter", "Kernel events the ring buffer could not take.",
        s.events_dropped());
  w.Family("interlock_audit_sink_queued_events", "gauge", "Audit events waiting in memory for a sink.");
  for (const v1::AuditSinkStatus& a : s.audit_sinks()) w.Sample(a.queued_events(), {{"sink", a.name()}});
  w.Family("interlock_audit_sink_spooled_bytes", "gauge", "Bytes waiting in a sink's spool on disk.");
  for (const v1::AuditSinkStatus& a : s.audit_sinks()) w.Sample(a.spooled_bytes(), {{"sink", a.name()}});
  w.Family("interlock_audit_sink_dropped_events_total", "counter", "Audit events a sink lost.");
  for (const v1::AuditSinkStatus& a : s.audit_sinks()) w.Sample(a.dropped_events(), {{"sink", a.name()}});
  const v1::RecordingsStatus& r = s.recordings();
  w.One("interlock_recordings_files", "gauge", "Recording files, live and finished.", r.files());
  w.One("interlock_recordings_bytes", "gauge", "Bytes of all recording files.", r.bytes());
  w.One("interlock_recordings_free_bytes", "gauge", "Free bytes of the recordings' file system.", r.free_bytes());
  w.One("interlock_recordings_min_free_bytes", "gauge", "Free-space floor below which new sessions are refused.",
        r.min_free_bytes());
  w.One("interlock_recordings_deleted_total", "counter", "Recordings deleted by retention.", r.deleted());
  w.One("interlock_recordings_spare_files_taken_total", "counter", "Recordings made from a file created ahead of time.",
        r.spare_files_taken());
  w.One("interlock_recordings_spare_files_missed_total", "counter",
        "Recordings created on the session's start because no file was ready.", r.spare_files_missed());
  return w.Take();
}

}  // namespace interlock::control
