// The evidence report (`interlock report`): what an auditor asks of a period, computed from
// the audit trail alone — sessions per workload and resource, statements and requests by
// decision, every SSH request with its command and exit status, every hold with
// requester, approver, times and reasons, masking per profile, column and detector,
// grants, refused connections, and decisions over time. The CLI adds the verification of
// each recording and of the audit chain (it reads the files).
//
//   ReportBuilder b({.from = from, .to = to, .workload = "billing-agent"});
//   for (const std::string& line : lines) b.AddLine(line);
//   v1::EvidenceReport r = b.Finish(clock.Now());
//   std::cout << RenderMarkdown(r);          // or RenderHtml, or the message as JSON
//
// Pure: no I/O, no clock (Finish takes the time it stamps).
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/events.pb.h"
#include "interlock/v1/report.pb.h"

namespace interlock::audit {

struct ReportOptions {
  absl::Time from = absl::InfinitePast();  // inclusive
  absl::Time to = absl::InfiniteFuture();  // exclusive
  std::string workload;                    // "": every workload
};

class ReportBuilder {
 public:
  explicit ReportBuilder(ReportOptions options);

  // One line of the audit file (protobuf JSON). A line that does not parse is counted
  // (EvidenceReport.unreadable_lines); chain checkpoints and blank lines are not events.
  void AddLine(absl::string_view line);
  void Add(const v1::AuditEvent& event);

  // Sessions started in the period (of the workload): id -> workload, for the CLI to verify
  // their recordings.
  const std::map<std::string, std::string>& sessions_started() const { return sessions_started_; }

  v1::EvidenceReport Finish(absl::Time now) const;

 private:
  enum Decision { kAllowed, kMasked, kApproved, kDenied, kHeld, kDecisions };
  void Count(const v1::AuditEvent& e, absl::Time t, const std::string& protocol, Decision d);

  ReportOptions options_;
  uint64_t read_ = 0;
  uint64_t in_period_ = 0;
  uint64_t unreadable_ = 0;
  std::map<std::string, std::string> sessions_started_;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> sessions_;  // workload, resource, protocol
  std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> decisions_;
  std::map<std::string, v1::ReportHold> holds_;      // by approval id, the latest state
  std::map<std::pair<std::string, std::string>, v1::ReportMasking> masking_;  // profile, protocol
  std::map<std::string, v1::ReportGrant> grants_;    // by grant id
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> refusals_;
  std::multimap<absl::Time, v1::ReportSshRequest> ssh_requests_;  // in time order, then as read
  std::vector<std::pair<absl::Time, Decision>> timeline_;
  absl::Time first_ = absl::InfiniteFuture();
  absl::Time last_ = absl::InfinitePast();
};

// Markdown for people and tickets; HTML with simple charts (inline SVG, no script, no
// external resource) for people who would rather look than read. Every agent-written string
// is escaped for its format.
std::string RenderMarkdown(const v1::EvidenceReport& report);
std::string RenderHtml(const v1::EvidenceReport& report);

}  // namespace interlock::audit
