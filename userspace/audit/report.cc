#include "userspace/audit/report.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/printable.h"

namespace interlock::audit {

namespace {

constexpr const char* kDecisionNames[] = {"allowed", "masked", "approved", "denied", "held"};

std::string Us(int64_t us) { return us == 0 ? "" : FormatRfc3339(absl::FromUnixMicros(us)); }

std::string ApproverText(const v1::Approver& a) {
  if (a.user().empty() && a.uid() == 0 && a.pid() == 0) return "";
  // With a shared approval store the approver may have decided on another host.
  return absl::StrCat(a.user().empty() ? "uid" : a.user(), " (uid ", a.uid(), ")",
                      a.host().empty() ? "" : absl::StrCat(" on ", a.host()));
}

std::string Lower(absl::string_view enum_name, absl::string_view prefix) {
  return absl::AsciiStrToLower(absl::StripPrefix(enum_name, prefix));
}

}  // namespace

ReportBuilder::ReportBuilder(ReportOptions options) : options_(std::move(options)) {}

void ReportBuilder::AddLine(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty()) return;
  v1::AuditEvent e;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;  // lines written by a newer interlockd
  if (!google::protobuf::util::JsonStringToMessage(std::string(line), &e, o).ok()) {
    ++unreadable_;
    return;
  }
  Add(e);
}

void ReportBuilder::Count(const v1::AuditEvent& e, absl::Time t, const std::string& protocol, Decision d) {
  ++decisions_[{e.identity().workload(), e.resource(), protocol, kDecisionNames[d]}];
  timeline_.emplace_back(t, d);
}

void ReportBuilder::Add(const v1::AuditEvent& e) {
  ++read_;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, e.time(), &t, &err)) {
    ++unreadable_;
    return;
  }
  if (t < options_.from || t >= options_.to) return;
  // Grants name their workload in the grant; everything else in the identity.
  const std::string& workload = e.kind() == v1::AUDIT_KIND_GRANT ? e.grant().workload() : e.identity().workload();
  if (!options_.workload.empty() && workload != options_.workload) return;
  ++in_period_;
  first_ = std::min(first_, t);
  last_ = std::max(last_, t);
  const std::string protocol = e.protocol().empty() ? "tcp" : e.protocol();
  switch (e.kind()) {
    case v1::AUDIT_KIND_SESSION_START:
      ++sessions_[{workload, e.resource(), protocol}];
      if (!e.session_id().empty()) sessions_started_[e.session_id()] = workload;
      break;
    case v1::AUDIT_KIND_CONNECT_DENIED:
    case v1::AUDIT_KIND_SESSION_REJECTED:
      ++refusals_[{workload, e.kind() == v1::AUDIT_KIND_CONNECT_DENIED ? "connect_denied" : "session_rejected",
                   e.reason()}];
      break;
    case v1::AUDIT_KIND_STATEMENT: {
      // A statement event means it ran (denied statements never do: POLICY_DECISION below).
      const v1::PolicyDecision& d = e.statement().decision();
      Count(e, t, "sql",
            d.source() == "approved" || d.source() == "approval_window" ? kApproved
            : d.action() == "MASK"                                     ? kMasked
                                                                       : kAllowed);
      break;
    }
    case v1::AUDIT_KIND_POLICY_DECISION:
      // PostgreSQL: a refused statement has only this event. HTTP exchanges and SSH
      // requests are counted from their HTTP_REQUEST / SSH_REQUEST event, held ones included.
      if (e.protocol() == "http" || e.protocol() == "ssh") {
        if (e.outcome() == "held") timeline_.emplace_back(t, kHeld);
        break;
      }
      if (e.outcome() == "denied") Count(e, t, "sql", kDenied);
      if (e.outcome() == "held") timeline_.emplace_back(t, kHeld);
      break;
    case v1::AUDIT_KIND_HTTP_REQUEST: {
      const v1::PolicyDecision& d = e.decision();
      const bool forwarded = e.http().answered_by() == "upstream";
      Decision k = !forwarded                                                      ? kDenied
                   : d.source() == "approved" || d.source() == "approval_window" ? kApproved
                   : d.action() == "MASK" || e.http().masking().values_masked() > 0 ? kMasked
                                                                                    : kAllowed;
      Count(e, t, "http", k);
      if (e.http().has_masking()) {
        v1::ReportMasking& m = masking_[{d.mask_profile(), "http"}];
        m.set_profile(d.mask_profile());
        m.set_protocol("http");
        m.set_operations(m.operations() + 1);
        m.set_values_masked(m.values_masked() + e.http().masking().values_masked());
        for (const auto& [k2, n] : e.http().masking().detector_counts()) (*m.mutable_detectors())[k2] += n;
        for (const auto& [k2, n] : e.http().masking().column_counts()) (*m.mutable_columns())[k2] += n;
      }
      break;
    }
    case v1::AUDIT_KIND_SSH_REQUEST: {
      const v1::PolicyDecision& d = e.decision();
      const v1::SshExchange& x = e.ssh();
      const Decision k = !x.forwarded()                                               ? kDenied
                         : d.source() == "approved" || d.source() == "approval_window" ? kApproved
                                                                                        : kAllowed;
      Count(e, t, "ssh", k);
      v1::ReportSshRequest& r = ssh_requests_.emplace(t, v1::ReportSshRequest())->second;
      r.set_time(e.time());
      r.set_workload(workload);
      r.set_resource(e.resource());
      r.set_session_id(e.session_id());
      r.set_request(x.request());
      r.set_command(x.command());
      r.set_agent_user(x.agent_user());
      r.set_upstream_user(x.upstream_user());
      r.set_decision(kDecisionNames[k]);
      r.set_outcome(e.outcome());
      r.set_rule_id(d.rule_id());
      r.set_exit_status(x.forwarded() ? x.exit_status() : -1);
      r.set_exit_signal(x.exit_signal());
      break;
    }
    case v1::AUDIT_KIND_AUTH:
      // An upstream login interlockd could not make (SSH): the session never opened.
      if (e.has_ssh() && e.outcome() == "denied") ++refusals_[{workload, "upstream_login", e.reason()}];
      break;
    case v1::AUDIT_KIND_MASKING: {
      const v1::MaskingInfo& mi = e.masking();
      v1::ReportMasking& m = masking_[{mi.profile(), "sql"}];
      m.set_profile(mi.profile());
      m.set_protocol("sql");
      m.set_operations(m.operations() + 1);
      m.set_values_masked(m.values_masked() + mi.values_masked());
      for (const auto& [k, n] : mi.detector_counts()) (*m.mutable_detectors())[k] += n;
      for (const auto& [k, n] : mi.column_counts()) (*m.mutable_columns())[k] += n;
      break;
    }
    case v1::AUDIT_KIND_APPROVAL: {
      const v1::ApprovalRequest& a = e.approval();
      if (a.id().empty()) break;
      v1::ReportHold& h = holds_[a.id()];
      h.set_id(a.id());
      h.set_workload(a.requester().workload());
      h.set_resource(a.resource());
      h.set_protocol(a.protocol().empty() ? "postgres" : a.protocol());
      if (!a.statement().empty()) h.set_operation(a.statement());
      h.set_rule_id(a.rule_id());
      h.set_state(Lower(v1::ApprovalState_Name(a.state()), "APPROVAL_STATE_"));
      h.set_requested_at(Us(a.created_us()));
      h.set_decided_at(Us(a.decided_us()));
      h.set_approver(ApproverText(a.approver()));
      h.set_decision_reason(a.decision_reason());
      h.set_token_subject(a.token_subject().empty() ? a.requester().token_subject() : a.token_subject());
      break;
    }
    case v1::AUDIT_KIND_GRANT: {
      const v1::Grant& g = e.grant();
      if (g.id().empty()) break;
      v1::ReportGrant& r = grants_[g.id()];
      r.set_id(g.id());
      r.set_workload(g.workload());
      r.set_resource(g.resource());
      r.set_outcome(e.outcome());
      r.set_created_at(Us(g.created_us()));
      r.set_expires_at(Us(g.expires_us()));
      r.set_granted_by(ApproverText(g.granted_by()));
      r.set_reason(g.reason());
      break;
    }
    default:
      break;
  }
}

v1::EvidenceReport ReportBuilder::Finish(absl::Time now) const {
  v1::EvidenceReport r;
  if (options_.from != absl::InfinitePast()) r.set_from(FormatRfc3339(options_.from));
  if (options_.to != absl::InfiniteFuture()) r.set_to(FormatRfc3339(options_.to));
  r.set_workload(options_.workload);
  r.set_generated_at(FormatRfc3339(now));
  r.set_events_read(read_);
  r.set_events_in_period(in_period_);
  r.set_unreadable_lines(unreadable_);
  for (const auto& [k, n] : sessions_) {
    v1::ReportSessions* s = r.add_sessions();
    s->set_workload(std::get<0>(k));
    s->set_resource(std::get<1>(k));
    s->set_protocol(std::get<2>(k));
    s->set_sessions(n);
  }
  for (const auto& [k, n] : decisions_) {
    v1::ReportDecisions* d = r.add_decisions();
    d->set_workload(std::get<0>(k));
    d->set_resource(std::get<1>(k));
    d->set_protocol(std::get<2>(k));
    d->set_decision(std::get<3>(k));
    d->set_count(n);
  }
  std::vector<const v1::ReportHold*> holds;
  for (const auto& [id, h] : holds_) holds.push_back(&h);
  std::sort(holds.begin(), holds.end(), [](const v1::ReportHold* a, const v1::ReportHold* b) {
    return std::tie(a->requested_at(), a->id()) < std::tie(b->requested_at(), b->id());
  });
  for (const v1::ReportHold* h : holds) *r.add_holds() = *h;
  for (const auto& [k, m] : masking_) *r.add_masking() = m;
  for (const auto& [id, g] : grants_) *r.add_grants() = g;
  for (const auto& [t, x] : ssh_requests_) *r.add_ssh_requests() = x;
  for (const auto& [k, n] : refusals_) {
    v1::ReportRefusal* f = r.add_refusals();
    f->set_workload(std::get<0>(k));
    f->set_kind(std::get<1>(k));
    f->set_reason(std::get<2>(k));
    f->set_count(n);
  }
  // Buckets: the period (or the events' span) in at most 48, on whole minutes, hours or days.
  if (!timeline_.empty()) {
    absl::Time start = options_.from != absl::InfinitePast() ? options_.from : first_;
    absl::Time end = options_.to != absl::InfiniteFuture() ? options_.to : last_ + absl::Seconds(1);
    absl::Duration span = std::max(end - start, absl::Minutes(1));
    absl::Duration bucket = absl::Minutes(1);
    for (absl::Duration d : {absl::Minutes(1), absl::Minutes(5), absl::Minutes(15), absl::Hours(1), absl::Hours(6),
                             absl::Hours(24), absl::Hours(24 * 7)}) {
      bucket = d;
      if (span / d <= 48) break;
    }
    start = absl::FromUnixSeconds(absl::ToUnixSeconds(start) / absl::ToInt64Seconds(bucket) *
                                  absl::ToInt64Seconds(bucket));
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(std::ceil(absl::FDivDuration(end - start, bucket))), 400);
    std::vector<v1::ReportBucket> b(static_cast<size_t>(std::max<int64_t>(n, 1)));
    for (size_t i = 0; i < b.size(); ++i) b[i].set_start(FormatRfc3339(start + bucket * static_cast<int64_t>(i)));
    for (const auto& [t, d] : timeline_) {
      int64_t i = std::clamp<int64_t>((t - start) / bucket, 0,
                                      static_cast<int64_t>(b.size()) - 1);
      v1::ReportBucket& x = b[static_cast<size_t>(i)];
      switch (d) {
        case kAllowed: x.set_allowed(x.allowed() + 1); break;
        case kMasked: x.set_masked(x.masked() + 1); break;
        case kApproved: x.set_approved(x.approved() + 1); break;
        case kDenied: x.set_denied(x.denied() + 1); break;
        default: x.set_held(x.held() + 1); break;
      }
    }
    for (v1::ReportBucket& x : b) *r.add_timeline() = std::move(x);
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// Rendering

namespace {

// Markdown table cell: escaped for the terminal (Printable) and for the table.
std::string Md(absl::string_view s) {
  return absl::StrReplaceAll(common::Printable(s, 0).text, {{"|", "\\|"}, {"<", "&lt;"}, {"`", "\\`"}});
}

std::string Html(absl::string_view s) {
  return absl::StrReplaceAll(common::Printable(s, 0).text,
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
};

std::string MdTable(const Table& t) {
  if (t.rows.empty()) return "_none_\n";
  std::string out = "|";
  for (const std::string& h : t.head) absl::StrAppend(&out, " ", h, " |");
  out += "\n|";
  for (size_t i = 0; i < t.head.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (const std::string& c : row) absl::StrAppend(&out, " ", Md(c), " |");
    out += "\n";
  }
  return out;
}

std::string HtmlTable(const Table& t) {
  if (t.rows.empty()) return "<p class=none>none</p>\n";
  std::string out = "<table><tr>";
  for (const std::string& h : t.head) absl::StrAppend(&out, "<th>", Html(h), "</th>");
  out += "</tr>\n";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (const std::string& c : row) absl::StrAppend(&out, "<td>", Html(c), "</td>");
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

std::string Counts(const google::protobuf::Map<std::string, uint64_t>& m) {
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end());
  std::string out;
  for (const auto& [k, n] : v) absl::StrAppend(&out, out.empty() ? "" : ", ", k, " ", n);
  return out;
}

struct Section {
  std::string title;
  Table table;
};

std::vector<Section> Sections(const v1::EvidenceReport& r) {
  std::vector<Section> s;
  Table sessions{{"workload", "resource", "protocol", "sessions"}, {}};
  for (const auto& x : r.sessions()) sessions.rows.push_back({x.workload(), x.resource(), x.protocol(), absl::StrCat(x.sessions())});
  s.push_back({"Sessions", std::move(sessions)});
  Table decisions{{"workload", "resource", "kind", "decision", "count"}, {}};
  for (const auto& x : r.decisions()) {
    decisions.rows.push_back({x.workload(), x.resource(),
                              x.protocol() == "sql"   ? "statements"
                              : x.protocol() == "ssh" ? "ssh requests"
                                                      : "requests",
                              x.decision(), absl::StrCat(x.count())});
  }
  s.push_back({"Statements and requests by decision", std::move(decisions)});
  Table ssh{{"time", "workload", "resource", "request", "command", "user", "decision", "outcome", "rule", "exit"}, {}};
  for (const auto& x : r.ssh_requests()) {
    ssh.rows.push_back({x.time(), x.workload(), x.resource(), x.request(), x.command(),
                        x.agent_user() == x.upstream_user() || x.upstream_user().empty()
                            ? x.agent_user()
                            : absl::StrCat(x.agent_user(), " as ", x.upstream_user()),
                        x.decision(), x.outcome(), x.rule_id(),
                        !x.exit_signal().empty() ? absl::StrCat("signal ", x.exit_signal())
                        : x.exit_status() >= 0   ? absl::StrCat(x.exit_status())
                                                 : ""});
  }
  s.push_back({"SSH requests", std::move(ssh)});
  Table holds{{"hold", "requester", "resource", "operation", "rule", "state", "requested", "decided", "approver", "reason"}, {}};
  for (const auto& h : r.holds()) {
    holds.rows.push_back({h.id(), h.token_subject().empty() ? h.workload() : absl::StrCat(h.workload(), " / ", h.token_subject()),
                          h.resource(), h.operation(), h.rule_id(), h.state(), h.requested_at(), h.decided_at(),
                          h.approver(), h.decision_reason()});
  }
  s.push_back({"Holds", std::move(holds)});
  Table masking{{"profile", "kind", "masked operations", "values masked", "columns", "detectors"}, {}};
  for (const auto& m : r.masking()) {
    masking.rows.push_back({m.profile(), m.protocol() == "sql" ? "statements" : "responses", absl::StrCat(m.operations()),
                            absl::StrCat(m.values_masked()), Counts(m.columns()), Counts(m.detectors())});
  }
  s.push_back({"Masking", std::move(masking)});
  Table grants{{"grant", "workload", "resource", "last event", "created", "expires", "granted by", "reason"}, {}};
  for (const auto& g : r.grants()) {
    grants.rows.push_back({g.id(), g.workload(), g.resource(), g.outcome(), g.created_at(), g.expires_at(), g.granted_by(), g.reason()});
  }
  s.push_back({"Grants", std::move(grants)});
  Table refusals{{"workload", "refused at", "reason", "count"}, {}};
  for (const auto& f : r.refusals()) refusals.rows.push_back({f.workload(), f.kind(), f.reason(), absl::StrCat(f.count())});
  s.push_back({"Refused connections", std::move(refusals)});
  Table recordings{{"session", "workload", "verification", "detail"}, {}};
  for (const auto& x : r.recordings()) recordings.rows.push_back({x.session_id(), x.workload(), x.verdict(), x.detail()});
  s.push_back({"Recordings", std::move(recordings)});
  return s;
}

std::string Period(const v1::EvidenceReport& r) {
  return absl::StrCat(r.from().empty() ? "the beginning" : r.from(), " to ", r.to().empty() ? "now" : r.to(),
                      r.workload().empty() ? "" : absl::StrCat(", workload ", r.workload()));
}

std::string ChainLine(const v1::EvidenceReport& r) {
  if (r.audit_chain().empty()) return "not checked";
  return absl::StrCat(r.audit_chain(), r.audit_chain_detail().empty() ? "" : absl::StrCat(": ", r.audit_chain_detail()));
}

}  // namespace

std::string RenderMarkdown(const v1::EvidenceReport& r) {
  std::string out = absl::StrCat("# Interlock evidence report\n\nPeriod: ", Md(Period(r)), "  \nGenerated: ",
                                 r.generated_at(), "  \nAudit events in the period: ", r.events_in_period(), " (of ",
                                 r.events_read(), " read", r.unreadable_lines() > 0
                                                               ? absl::StrCat(", ", r.unreadable_lines(), " unreadable lines")
                                                               : "",
                                 ")  \nAudit chain: ", Md(ChainLine(r)), "\n");
  for (const Section& s : Sections(r)) absl::StrAppend(&out, "\n## ", s.title, "\n\n", MdTable(s.table));
  if (!r.timeline().empty()) {
    Table t{{"from", "allowed", "masked", "approved", "held", "denied"}, {}};
    for (const auto& b : r.timeline()) {
      if (b.allowed() + b.masked() + b.approved() + b.held() + b.denied() == 0) continue;
      t.rows.push_back({b.start(), absl::StrCat(b.allowed()), absl::StrCat(b.masked()), absl::StrCat(b.approved()),
                        absl::StrCat(b.held()), absl::StrCat(b.denied())});
    }
    absl::StrAppend(&out, "\n## Decisions over time\n\n", MdTable(t));
  }
  return out;
}

namespace {

constexpr const char* kColors[] = {"#2e7d32", "#1565c0", "#00897b", "#c62828", "#ef6c00"};  // allowed masked approved denied held

// Stacked bars, one per bucket (decisions over time).
std::string TimelineSvg(const v1::EvidenceReport& r) {
  const int n = r.timeline_size();
  if (n == 0) return "";
  uint64_t max = 1;
  for (const auto& b : r.timeline()) max = std::max<uint64_t>(max, b.allowed() + b.masked() + b.approved() + b.denied() + b.held());
  const int w = 720, h = 200, bar = std::max(2, w / n - 2);
  std::string out = absl::StrFormat("<svg class=timeline width=%d height=%d role=img aria-label=\"decisions over time\">\n", w, h + 20);
  for (int i = 0; i < n; ++i) {
    const v1::ReportBucket& b = r.timeline(i);
    const uint64_t v[] = {b.allowed(), b.masked(), b.approved(), b.denied(), b.held()};
    double y = h;
    for (int k = 0; k < 5; ++k) {
      if (v[k] == 0) continue;
      const double bh = static_cast<double>(v[k]) * h / static_cast<double>(max);
      y -= bh;
      absl::StrAppendFormat(&out, "<rect x=%d y=%.1f width=%d height=%.1f fill=\"%s\"><title>%s %s: %d</title></rect>\n",
                            i * (w / n), y, bar, bh, kColors[k], Html(b.start()), kDecisionNames[k], v[k]);
    }
  }
  absl::StrAppendFormat(&out, "<text x=0 y=%d font-size=11>%s</text><text x=%d y=%d font-size=11 text-anchor=end>max %d per bucket</text>\n",
                        h + 15, Html(r.timeline(0).start()), w, h + 15, max);
  return out + "</svg>\n";
}

// Horizontal bars: decisions per workload.
std::string WorkloadSvg(const v1::EvidenceReport& r) {
  std::map<std::string, std::map<std::string, uint64_t>> per;
  for (const auto& d : r.decisions()) per[d.workload()][d.decision()] += d.count();
  if (per.empty()) return "";
  uint64_t max = 1;
  for (const auto& [w, m] : per) {
    uint64_t t = 0;
    for (const auto& [k, n] : m) t += n;
    max = std::max(max, t);
  }
  const int row = 22, label = 160, width = 560;
  std::string out = absl::StrFormat("<svg class=workloads width=%d height=%d role=img aria-label=\"decisions per workload\">\n",
                                    label + width + 60, static_cast<int>(per.size()) * row + 4);
  int y = 0;
  for (const auto& [w, m] : per) {
    absl::StrAppendFormat(&out, "<text x=0 y=%d font-size=12>%s</text>\n", y + 15, Html(w));
    double x = label;
    uint64_t total = 0;
    for (int k = 0; k < 5; ++k) {
      auto it = m.find(kDecisionNames[k]);
      if (it == m.end()) continue;
      const double bw = static_cast<double>(it->second) * width / static_cast<double>(max);
      absl::StrAppendFormat(&out, "<rect x=%.1f y=%d width=%.1f height=%d fill=\"%s\"><title>%s: %d</title></rect>\n", x,
                            y + 3, bw, row - 6, kColors[k], kDecisionNames[k], it->second);
      x += bw;
      total += it->second;
    }
    absl::StrAppendFormat(&out, "<text x=%.1f y=%d font-size=12 class=total>%d</text>\n", x + 4, y + 15, total);
    y += row;
  }
  return out + "</svg>\n";
}

}  // namespace

std::string RenderHtml(const v1::EvidenceReport& r) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
      "<title>Interlock evidence report</title>\n<style>body{font:14px sans-serif;margin:2em}"
      "table{border-collapse:collapse;margin:.5em 0;max-width:100%}"
      "td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;overflow-wrap:anywhere}"
      "@media print{body{margin:0;font-size:10px}svg{max-width:100%;height:auto}}"
      "th{background:#eee}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}</style>\n"
      "</head><body>\n<h1>Interlock evidence report</h1>\n<p>Period: ",
      Html(Period(r)), "<br>Generated: ", Html(r.generated_at()), "<br>Audit events in the period: <span id=events>",
      r.events_in_period(), "</span> (of ", r.events_read(), " read",
      r.unreadable_lines() > 0 ? absl::StrCat(", ", r.unreadable_lines(), " unreadable lines") : "",
      ")<br>Audit chain: <span id=chain>", Html(ChainLine(r)), "</span></p>\n<p class=legend>");
  for (int k = 0; k < 5; ++k) absl::StrAppend(&out, "<span style=\"background:", kColors[k], "\"></span>", kDecisionNames[k]);
  absl::StrAppend(&out, "</p>\n<h2>Decisions per workload</h2>\n", WorkloadSvg(r), "<h2>Decisions over time</h2>\n",
                  TimelineSvg(r));
  for (const Section& s : Sections(r)) absl::StrAppend(&out, "<h2>", Html(s.title), "</h2>\n", HtmlTable(s.table));
  return out + "</body></html>\n";
}

}  // namespace interlock::audit
