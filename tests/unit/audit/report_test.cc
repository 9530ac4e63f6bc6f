#include "userspace/audit/report.h"

#include <deque>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "userspace/audit/json_writer.h"

namespace interlock::audit {
namespace {

// Audit lines as interlockd writes them (json_writer), at minute `min` of 2026-12-06 10:00Z.
class Trail {
 public:
  v1::AuditEvent& Add(v1::AuditKind kind, int min, const std::string& workload, const std::string& protocol = "postgres") {
    events_.emplace_back();
    v1::AuditEvent& e = events_.back();
    e.set_id(absl::StrCat("ev", events_.size()));
    e.set_kind(kind);
    e.set_time(absl::StrFormat("2026-12-06T10:%02d:00.000000001Z", min));
    e.mutable_identity()->set_workload(workload);
    e.set_resource(protocol == "http" ? "crm" : "bank");
    e.set_protocol(protocol);
    e.set_session_id(absl::StrCat("s-", workload));
    return e;
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    for (const v1::AuditEvent& e : events_) out.push_back(EventToJsonLine(e));
    return out;
  }

 private:
  std::deque<v1::AuditEvent> events_;
};

absl::Time At(int min) { return absl::FromCivil(absl::CivilMinute(2026, 12, 6, 10, min), absl::UTCTimeZone()); }

uint64_t Decisions(const v1::EvidenceReport& r, const std::string& workload, const std::string& decision) {
  uint64_t n = 0;
  for (const auto& d : r.decisions()) {
    if (d.workload() == workload && d.decision() == decision) n += d.count();
  }
  return n;
}

Trail Sample() {
  Trail t;
  t.Add(v1::AUDIT_KIND_SESSION_START, 1, "billing");
  t.Add(v1::AUDIT_KIND_STATEMENT, 2, "billing");  // no policy: ran, allowed
  t.Add(v1::AUDIT_KIND_STATEMENT, 3, "billing").mutable_statement()->mutable_decision()->set_action("MASK");
  v1::AuditEvent& approved = t.Add(v1::AUDIT_KIND_STATEMENT, 9, "billing");
  approved.mutable_statement()->mutable_decision()->set_action("REVIEW");
  approved.mutable_statement()->mutable_decision()->set_source("approved");
  t.Add(v1::AUDIT_KIND_POLICY_DECISION, 4, "billing").set_outcome("denied");
  t.Add(v1::AUDIT_KIND_POLICY_DECISION, 5, "billing").set_outcome("held");
  v1::AuditEvent& m = t.Add(v1::AUDIT_KIND_MASKING, 3, "billing");
  m.mutable_masking()->set_profile("pci");
  m.mutable_masking()->set_values_masked(7);
  (*m.mutable_masking()->mutable_column_counts())["public.cards.pan"] = 5;
  (*m.mutable_masking()->mutable_detector_counts())["card"] = 2;
  for (const char* state : {"APPROVAL_STATE_PENDING", "APPROVAL_STATE_APPROVED"}) {
    v1::AuditEvent& a = t.Add(v1::AUDIT_KIND_APPROVAL, 5, "billing");
    v1::ApprovalRequest* r = a.mutable_approval();
    r->set_id("apr-1");
    v1::ApprovalState s = v1::APPROVAL_STATE_UNSPECIFIED;
    v1::ApprovalState_Parse(state, &s);
    r->set_state(s);
    *r->mutable_requester() = a.identity();
    r->set_resource("bank");
    r->set_statement("DELETE FROM cards WHERE id = $1");
    r->set_rule_id("review-deletes");
    r->set_created_us(absl::ToUnixMicros(At(5)));
    if (s == v1::APPROVAL_STATE_APPROVED) {
      r->set_decided_us(absl::ToUnixMicros(At(8)));
      r->mutable_approver()->set_user("alice");
      r->mutable_approver()->set_uid(1001);
      r->set_decision_reason("ticket CHG-42");
    }
  }
  t.Add(v1::AUDIT_KIND_SESSION_START, 10, "crawler", "http");
  v1::AuditEvent& ok = t.Add(v1::AUDIT_KIND_HTTP_REQUEST, 11, "crawler", "http");
  ok.mutable_http()->set_answered_by("upstream");
  ok.mutable_decision()->set_action("ALLOW");
  v1::AuditEvent& masked = t.Add(v1::AUDIT_KIND_HTTP_REQUEST, 12, "crawler", "http");
  masked.mutable_http()->set_answered_by("upstream");
  masked.mutable_decision()->set_action("ALLOW");
  masked.mutable_decision()->set_mask_profile("pii");
  masked.mutable_http()->mutable_masking()->set_values_masked(3);
  (*masked.mutable_http()->mutable_masking()->mutable_detector_counts())["email"] = 3;
  v1::AuditEvent& denied = t.Add(v1::AUDIT_KIND_HTTP_REQUEST, 13, "crawler", "http");
  denied.mutable_http()->set_answered_by("interlockd");
  denied.mutable_decision()->set_action("DENY");
  t.Add(v1::AUDIT_KIND_CONNECT_DENIED, 14, "crawler", "").set_reason("default_deny");
  v1::AuditEvent& g = t.Add(v1::AUDIT_KIND_GRANT, 15, "", "");
  g.set_outcome("granted");
  g.mutable_grant()->set_id("grt-1");
  g.mutable_grant()->set_workload("billing");
  g.mutable_grant()->set_resource("bank");
  g.mutable_grant()->mutable_granted_by()->set_user("bob");
  t.Add(v1::AUDIT_KIND_STATEMENT, 59, "billing");  // outside a 10:00-10:30 period
  return t;
}

TEST(ReportBuilderTest, CountsWhatTheTrailSays) {
  ReportBuilder b({.from = At(0), .to = At(30)});
  for (const std::string& l : Sample().Lines()) b.AddLine(l);
  b.AddLine("{not json");
  b.AddLine("");
  v1::EvidenceReport r = b.Finish(At(45));
  EXPECT_EQ(r.unreadable_lines(), 1u);
  EXPECT_EQ(r.events_in_period(), r.events_read() - 1);  // the 10:59 statement
  EXPECT_EQ(Decisions(r, "billing", "allowed"), 1u);
  EXPECT_EQ(Decisions(r, "billing", "masked"), 1u);
  EXPECT_EQ(Decisions(r, "billing", "approved"), 1u);
  EXPECT_EQ(Decisions(r, "billing", "denied"), 1u);
  EXPECT_EQ(Decisions(r, "crawler", "allowed"), 1u);
  EXPECT_EQ(Decisions(r, "crawler", "masked"), 1u);
  EXPECT_EQ(Decisions(r, "crawler", "denied"), 1u);
  ASSERT_EQ(r.sessions_size(), 2);
  ASSERT_EQ(r.holds_size(), 1);
  EXPECT_EQ(r.holds(0).state(), "approved");  // the latest event of the hold
  EXPECT_EQ(r.holds(0).approver(), "alice (uid 1001)");
  EXPECT_EQ(r.holds(0).decision_reason(), "ticket CHG-42");
  EXPECT_EQ(r.holds(0).requested_at(), "2026-12-06T10:05:00.000000000Z");
  EXPECT_EQ(r.holds(0).decided_at(), "2026-12-06T10:08:00.000000000Z");
  ASSERT_EQ(r.masking_size(), 2);
  for (const auto& m : r.masking()) {
    if (m.protocol() == "sql") {
      EXPECT_EQ(m.values_masked(), 7u);
      EXPECT_EQ(m.columns().at("public.cards.pan"), 5u);
    } else {
      EXPECT_EQ(m.profile(), "pii");
      EXPECT_EQ(m.detectors().at("email"), 3u);
    }
  }
  ASSERT_EQ(r.grants_size(), 1);
  EXPECT_EQ(r.grants(0).granted_by(), "bob (uid 0)");
  ASSERT_EQ(r.refusals_size(), 1);
  EXPECT_EQ(r.refusals(0).reason(), "default_deny");
  // 30 minutes in one-minute buckets; every decision lands in one.
  ASSERT_EQ(r.timeline_size(), 30);
  uint64_t total = 0, held = 0;
  for (const auto& x : r.timeline()) {
    total += x.allowed() + x.masked() + x.approved() + x.denied() + x.held();
    held += x.held();
  }
  EXPECT_EQ(total, 8u);
  EXPECT_EQ(held, 1u);
  EXPECT_EQ(b.sessions_started().size(), 2u);
}

TEST(ReportBuilderTest, WorkloadFilterKeepsItsGrantsToo) {
  ReportBuilder b({.workload = "billing"});
  for (const std::string& l : Sample().Lines()) b.AddLine(l);
  v1::EvidenceReport r = b.Finish(At(45));
  EXPECT_EQ(Decisions(r, "crawler", "allowed"), 0u);
  EXPECT_EQ(Decisions(r, "billing", "allowed"), 2u);  // the 10:59 one counts without a period
  EXPECT_EQ(r.grants_size(), 1);
  EXPECT_EQ(r.refusals_size(), 0);
}

// SSH requests as userspace/proxy/ssh audits them.
v1::AuditEvent& SshRequest(Trail& t, int min, const std::string& request, const std::string& command,
                           const std::string& outcome, bool forwarded, int exit_status) {
  v1::AuditEvent& e = t.Add(v1::AUDIT_KIND_SSH_REQUEST, min, "ops", "ssh");
  e.set_outcome(outcome);
  v1::SshExchange* x = e.mutable_ssh();
  x->set_request(request);
  x->set_command(command);
  x->set_agent_user("agent");
  x->set_upstream_user("deploy");
  x->set_forwarded(forwarded);
  x->set_exit_status(exit_status);
  return e;
}

Trail SshSample() {
  Trail t;
  t.Add(v1::AUDIT_KIND_SESSION_START, 1, "ops", "ssh");
  v1::AuditEvent& ran = SshRequest(t, 2, "exec", "make test", "allowed", true, 3);
  ran.mutable_decision()->set_action("ALLOW");
  ran.mutable_decision()->set_rule_id("builds");
  v1::AuditEvent& denied = SshRequest(t, 3, "exec", "rm -rf /srv/* && echo done", "denied", false, -1);
  denied.mutable_decision()->set_action("DENY");
  denied.mutable_decision()->set_rule_id("no-rm");
  SshRequest(t, 4, "direct-tcpip", "10.1.2.3:5432", "refused", false, -1).mutable_decision()->set_action("DENY");
  v1::AuditEvent& login = t.Add(v1::AUDIT_KIND_AUTH, 5, "ops", "ssh");
  login.set_outcome("denied");
  login.set_reason("upstream_login_failed");
  login.mutable_ssh()->set_request("userauth");
  v1::AuditEvent& held = t.Add(v1::AUDIT_KIND_POLICY_DECISION, 6, "ops", "ssh");
  held.set_outcome("held");
  held.mutable_decision()->set_action("REVIEW");
  held.mutable_ssh()->set_command("systemctl restart billing");
  for (v1::ApprovalState s : {v1::APPROVAL_STATE_PENDING, v1::APPROVAL_STATE_APPROVED}) {
    v1::AuditEvent& a = t.Add(v1::AUDIT_KIND_APPROVAL, s == v1::APPROVAL_STATE_PENDING ? 6 : 7, "ops", "ssh");
    v1::ApprovalRequest* r = a.mutable_approval();
    r->set_id("apr-ssh");
    r->set_state(s);
    *r->mutable_requester() = a.identity();
    r->set_protocol("ssh");
    r->set_statement("systemctl restart billing");
    r->set_db_user("deploy");
    r->set_rule_id("review-restarts");
    r->set_created_us(absl::ToUnixMicros(At(6)));
  }
  v1::AuditEvent& approved = SshRequest(t, 8, "exec", "systemctl restart billing", "allowed", true, 0);
  approved.mutable_decision()->set_action("REVIEW");
  approved.mutable_decision()->set_source("approved");
  SshRequest(t, 9, "shell", "", "interrupted", true, -1).mutable_ssh()->set_exit_signal("KILL");
  return t;
}

TEST(ReportBuilderTest, SshRequestsAreCountedListedAndHeld) {
  ReportBuilder b({});
  for (const std::string& l : SshSample().Lines()) b.AddLine(l);
  v1::EvidenceReport r = b.Finish(At(30));
  EXPECT_EQ(Decisions(r, "ops", "allowed"), 2u);   // make test, the shell
  EXPECT_EQ(Decisions(r, "ops", "denied"), 2u);    // rm, the port forwarding
  EXPECT_EQ(Decisions(r, "ops", "approved"), 1u);  // systemctl, once released
  for (const auto& d : r.decisions()) EXPECT_EQ(d.protocol(), "ssh");
  ASSERT_EQ(r.ssh_requests_size(), 5);
  const v1::ReportSshRequest& ran = r.ssh_requests(0);
  EXPECT_EQ(ran.command(), "make test");
  EXPECT_EQ(ran.decision(), "allowed");
  EXPECT_EQ(ran.rule_id(), "builds");
  EXPECT_EQ(ran.exit_status(), 3);
  EXPECT_EQ(ran.agent_user(), "agent");
  EXPECT_EQ(ran.upstream_user(), "deploy");
  EXPECT_EQ(ran.time(), "2026-12-06T10:02:00.000000001Z");
  EXPECT_EQ(r.ssh_requests(1).decision(), "denied");
  EXPECT_EQ(r.ssh_requests(1).rule_id(), "no-rm");
  EXPECT_EQ(r.ssh_requests(1).exit_status(), -1);
  EXPECT_EQ(r.ssh_requests(2).request(), "direct-tcpip");
  EXPECT_EQ(r.ssh_requests(2).outcome(), "refused");
  EXPECT_EQ(r.ssh_requests(3).decision(), "approved");
  EXPECT_EQ(r.ssh_requests(3).exit_status(), 0);
  EXPECT_EQ(r.ssh_requests(4).exit_signal(), "KILL");
  ASSERT_EQ(r.holds_size(), 1);
  EXPECT_EQ(r.holds(0).protocol(), "ssh");
  EXPECT_EQ(r.holds(0).operation(), "systemctl restart billing");
  EXPECT_EQ(r.holds(0).state(), "approved");
  ASSERT_EQ(r.refusals_size(), 1);
  EXPECT_EQ(r.refusals(0).kind(), "upstream_login");
  EXPECT_EQ(r.refusals(0).reason(), "upstream_login_failed");
  uint64_t total = 0, held = 0;
  for (const auto& x : r.timeline()) {
    total += x.allowed() + x.masked() + x.approved() + x.denied() + x.held();
    held += x.held();
  }
  EXPECT_EQ(total, 6u);  // five requests and the hold
  EXPECT_EQ(held, 1u);

  const std::string md = RenderMarkdown(r);
  EXPECT_TRUE(absl::StrContains(md, "## SSH requests")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| ops | bank | ssh requests | denied | 2 |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| exec | make test | agent as deploy | allowed | allowed | builds | 3 |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| shell |  | agent as deploy | allowed | interrupted |  | signal KILL |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| systemctl restart billing | review-restarts | approved |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| ops | upstream_login | upstream_login_failed | 1 |")) << md;
  EXPECT_TRUE(absl::StrContains(RenderHtml(r), "<td>rm -rf /srv/* &amp;&amp; echo done</td>"));
}

TEST(ReportRenderTest, AgentTextIsEscapedInEveryFormat) {
  Trail t;
  t.Add(v1::AUDIT_KIND_SESSION_START, 1, "<script>alert(1)</script>|x\x1b[31m");
  v1::AuditEvent& a = t.Add(v1::AUDIT_KIND_APPROVAL, 2, "w");
  a.mutable_approval()->set_id("apr-2");
  a.mutable_approval()->set_statement("SELECT '</td><img src=x onerror=alert(1)>' | `rm`");
  ReportBuilder b({});
  for (const std::string& l : t.Lines()) b.AddLine(l);
  v1::EvidenceReport r = b.Finish(At(3));
  const std::string html = RenderHtml(r);
  EXPECT_FALSE(absl::StrContains(html, "<script>"));
  EXPECT_FALSE(absl::StrContains(html, "<img"));
  EXPECT_TRUE(absl::StrContains(html, "&lt;script&gt;"));
  EXPECT_FALSE(absl::StrContains(html, "\x1b"));
  EXPECT_TRUE(absl::StrContains(html, "Content-Security-Policy"));
  const std::string md = RenderMarkdown(r);
  EXPECT_FALSE(absl::StrContains(md, "\x1b"));
  EXPECT_TRUE(absl::StrContains(md, "\\|x")) << md;  // a pipe cannot add a column
  EXPECT_TRUE(absl::StrContains(md, "\\`rm\\`"));
  EXPECT_TRUE(absl::StrContains(md, "## Holds"));
}

}  // namespace
}  // namespace interlock::audit
