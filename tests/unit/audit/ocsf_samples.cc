#include "tests/unit/audit/ocsf_samples.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace interlock::audit::testing {
namespace {

v1::AuditEvent Base(v1::AuditKind kind, int n) {
  v1::AuditEvent e;
  e.set_id("0123456789abcdef0123456789abcd" + std::to_string(10 + n));
  e.set_kind(kind);
  e.set_time("2026-12-06T19:30:00.123456789Z");
  e.set_host("agents-1.example");
  return e;
}

// A session's event: identity (with a token), resource, destination, protocol.
v1::AuditEvent Session(v1::AuditKind kind, int n, const std::string& protocol = "postgres") {
  v1::AuditEvent e = Base(kind, n);
  e.set_session_id("ses-00000000000000" + std::to_string(10 + n));
  v1::WorkloadIdentity* id = e.mutable_identity();
  id->set_workload("billing-agent");
  id->set_cgroup_id(4242);
  id->set_cgroup_path("/interlock/workloads/billing-agent.3");
  id->set_pid(31337);
  id->set_tid(31338);
  id->set_uid(1000);
  id->set_gid(1000);
  id->set_user("agent");
  id->set_login_uid(4294967295u);
  id->set_comm("python3");
  id->set_exe("/usr/bin/python3.11");
  id->set_token_issuer("https://idp.example");
  id->set_token_subject("agent:billing");
  id->add_token_groups("agents");
  id->add_token_groups("billing");
  e.set_resource(protocol == "http" ? "crm-api" : protocol == "ssh" ? "build-host" : "billing-db");
  e.mutable_original_destination()->set_address(protocol == "http"  ? "10.0.0.8"
                                                : protocol == "ssh" ? "10.0.0.9"
                                                                    : "10.0.0.7");
  e.mutable_original_destination()->set_port(protocol == "http" ? 443 : protocol == "ssh" ? 22 : 5432);
  e.mutable_upstream()->set_address("10.0.0.7");
  e.mutable_upstream()->set_port(5432);
  e.set_protocol(protocol);
  return e;
}

v1::PolicyDecision Decision(const std::string& action, const std::string& source) {
  v1::PolicyDecision d;
  d.set_action(action);
  d.set_rule_id("no-unbounded-delete");
  d.set_reason("DELETE without WHERE");
  d.set_source(source);
  d.add_statements("DELETE w:public.customers no_where");
  d.set_fingerprint("5e3f0b0c0d0e0f10");
  return d;
}

// An SSH policy decision (no SQL summary).
v1::PolicyDecision SshDecision(const std::string& action, const std::string& rule, const std::string& reason) {
  v1::PolicyDecision d;
  d.set_action(action);
  d.set_rule_id(rule);
  d.set_reason(reason);
  d.set_source("rule");
  d.set_fingerprint("5e3f0b0c0d0e0f10");
  return d;
}

// An exec request from the agent's user "agent", run upstream as "deploy".
v1::SshExchange SshExec(const std::string& command, char sha, uint32_t channel) {
  v1::SshExchange x;
  x.set_request("exec");
  x.set_command(command);
  x.set_command_sha256(std::string(64, sha));
  x.set_agent_user("agent");
  x.set_upstream_user("deploy");
  x.set_channel(channel);
  return x;
}

v1::ApprovalRequest Approval(v1::ApprovalState state, const std::string& protocol) {
  v1::ApprovalRequest r;
  r.set_id("apr-0123456789abcdef");
  r.set_state(state);
  r.set_created_us(1796585400000000);
  r.set_deadline_us(1796585700000000);
  r.set_session_id("ses-0000000000000042");
  r.set_resource(protocol == "http" ? "crm-api" : protocol == "ssh" ? "build-host" : "billing-db");
  r.set_protocol(protocol);
  if (protocol == "http") {
    r.set_statement("POST crm.example/v1/customers/7/erase");
  } else if (protocol == "ssh") {
    // As userspace/proxy/ssh holds a command: the line exactly, the upstream user.
    r.set_db_user("deploy");
    r.set_statement("systemctl restart billing");
    r.set_classification("ssh exec");
  } else {
    r.set_database("billing");
    r.set_db_user("billing_rw");
    r.set_statement("DELETE FROM customers WHERE id = $1");
  }
  r.set_statement_sha256(std::string(64, 'a'));
  r.set_rule_id("review-deletes");
  r.set_reason("deletes need a human");
  if (state != v1::APPROVAL_STATE_PENDING) {
    r.set_decided_us(1796585500000000);
    r.mutable_approver()->set_uid(1001);
    r.mutable_approver()->set_user("alice");
    r.set_decision_reason("INC-7");
  }
  return r;
}

}  // namespace

std::string SampleKey(const v1::AuditEvent& e) {
  const bool marked = e.protocol() == "http" || e.protocol() == "ssh";
  return absl::StrCat(v1::AuditKind_Name(e.kind()), " ", e.outcome(), marked ? " " : "", marked ? e.protocol() : "");
}

v1::AuditEvent SshSampleEvent(v1::AuditKind kind, const std::string& outcome) {
  for (v1::AuditEvent& e : OcsfSampleEvents()) {
    if (e.kind() == kind && e.outcome() == outcome && e.protocol() == "ssh") return e;
  }
  return {};
}

std::vector<v1::AuditEvent> OcsfSampleEvents() {
  std::vector<v1::AuditEvent> out;
  int n = 0;

  v1::AuditEvent start = Session(v1::AUDIT_KIND_SESSION_START, ++n);
  start.set_outcome("allowed");
  out.push_back(start);

  v1::AuditEvent end = Session(v1::AUDIT_KIND_SESSION_END, ++n);
  end.set_outcome("closed");
  end.set_bytes_to_upstream(1234);
  end.set_bytes_to_agent(56789);
  end.set_duration_ms(4500);
  out.push_back(end);

  v1::AuditEvent denied = Base(v1::AUDIT_KIND_CONNECT_DENIED, ++n);
  denied.mutable_identity()->set_pid(4711);
  denied.mutable_identity()->set_uid(1000);
  denied.mutable_identity()->set_comm("curl");
  denied.mutable_identity()->set_cgroup_id(99);
  denied.mutable_original_destination()->set_address("203.0.113.9");
  denied.mutable_original_destination()->set_port(5432);
  denied.set_outcome("denied");
  denied.set_reason("default_deny");
  out.push_back(denied);

  v1::AuditEvent rejected = Session(v1::AUDIT_KIND_SESSION_REJECTED, ++n);
  rejected.set_outcome("rejected");
  rejected.set_reason("no_identity");
  rejected.set_detail("peer tuple unknown");
  out.push_back(rejected);

  v1::AuditEvent started = Base(v1::AUDIT_KIND_DAEMON, ++n);
  started.set_outcome("started");
  started.set_detail("interlockd 0.1.0 pid 1, re-adopted pinned datapath");
  out.push_back(started);

  v1::AuditEvent refused = Base(v1::AUDIT_KIND_DAEMON, ++n);
  refused.set_outcome("denied");
  refused.set_reason("control_refused");
  refused.mutable_identity()->set_pid(777);
  refused.mutable_identity()->set_uid(1002);
  refused.mutable_identity()->set_cgroup_path("/user.slice");
  out.push_back(refused);

  v1::AuditEvent enrolled = Base(v1::AUDIT_KIND_ENROLLMENT, ++n);
  enrolled.set_outcome("enrolled");
  enrolled.mutable_identity()->set_workload("billing-agent");
  enrolled.mutable_identity()->set_cgroup_id(4242);
  enrolled.mutable_identity()->set_cgroup_path("/interlock/workloads/billing-agent.3");
  enrolled.set_detail("default_deny");
  out.push_back(enrolled);

  v1::AuditEvent statement = Session(v1::AUDIT_KIND_STATEMENT, ++n);
  statement.set_outcome("ok");
  statement.set_duration_ms(3);
  v1::StatementInfo* s = statement.mutable_statement();
  s->set_protocol("extended");
  s->set_database("billing");
  s->set_user("billing_ro");
  s->set_text("SELECT name FROM customers WHERE id = $1");
  s->set_text_sha256(std::string(64, 'b'));
  s->set_statement_name("s1");
  s->set_parameter_count(1);
  s->add_parameters("<redacted>");
  s->add_command_tags("SELECT 1");
  s->set_rows(1);
  s->set_duration_us(3100);
  s->set_status("ok");
  *s->mutable_decision() = Decision("ALLOW", "rule");
  s->mutable_decision()->set_rule_id("reads");
  s->mutable_decision()->set_reason("reads are fine");
  s->mutable_decision()->set_statements(0, "SELECT r:public.customers");
  out.push_back(statement);

  v1::AuditEvent failed = Session(v1::AUDIT_KIND_STATEMENT, ++n);
  failed.set_outcome("error");
  failed.mutable_statement()->set_database("billing");
  failed.mutable_statement()->set_text("INSERT INTO t VALUES (1)");
  failed.mutable_statement()->set_sqlstate("23505");
  failed.mutable_statement()->set_error("duplicate key");
  failed.mutable_statement()->set_status("error");
  out.push_back(failed);

  v1::AuditEvent auth = Session(v1::AUDIT_KIND_AUTH, ++n);
  auth.set_outcome("allowed");
  auth.set_reason("token");
  out.push_back(auth);

  v1::AuditEvent upstream = Session(v1::AUDIT_KIND_AUTH, ++n);
  upstream.mutable_identity()->clear_token_subject();
  upstream.mutable_identity()->clear_token_issuer();
  upstream.mutable_identity()->clear_token_groups();
  upstream.set_outcome("allowed");
  upstream.set_reason("upstream_login");
  upstream.set_detail("logged in upstream as billing_ro to billing with scram-sha-256");
  out.push_back(upstream);

  v1::AuditEvent expired = Session(v1::AUDIT_KIND_AUTH, ++n);
  expired.set_outcome("closed");
  expired.set_reason("token_expired");
  out.push_back(expired);

  v1::AuditEvent cancel = Session(v1::AUDIT_KIND_CANCEL, ++n);
  cancel.set_outcome("denied");
  cancel.set_reason("other_workload");
  out.push_back(cancel);

  v1::AuditEvent perr = Session(v1::AUDIT_KIND_PROTOCOL_ERROR, ++n);
  perr.set_outcome("denied");
  perr.set_reason("bad_startup");
  perr.set_detail("pg: startup: length 70000 > max 10000");
  out.push_back(perr);

  v1::AuditEvent deny = Session(v1::AUDIT_KIND_POLICY_DECISION, ++n);
  deny.set_outcome("denied");
  deny.set_reason("no-unbounded-delete");
  deny.set_detail("DELETE without WHERE");
  *deny.mutable_decision() = Decision("DENY", "rule");
  deny.mutable_decision()->mutable_classification();
  out.push_back(deny);

  v1::AuditEvent held = Session(v1::AUDIT_KIND_POLICY_DECISION, ++n);
  held.set_outcome("held");
  *held.mutable_decision() = Decision("REVIEW", "rule");
  held.mutable_decision()->set_approval_id("apr-0123456789abcdef");
  out.push_back(held);

  v1::AuditEvent http_held = Session(v1::AUDIT_KIND_POLICY_DECISION, ++n, "http");
  http_held.set_outcome("held");
  *http_held.mutable_decision() = Decision("REVIEW", "rule");
  http_held.mutable_decision()->clear_statements();
  http_held.mutable_http()->set_method("POST");
  http_held.mutable_http()->set_target("/v1/customers/7/erase?token=<elided>");
  http_held.mutable_http()->set_host("crm.example");
  http_held.mutable_http()->set_path("/v1/customers/7/erase");
  http_held.mutable_http()->set_scheme("https");
  out.push_back(http_held);

  const struct {
    v1::ApprovalState state;
    const char* outcome;
  } kApprovals[] = {{v1::APPROVAL_STATE_PENDING, "requested"},   {v1::APPROVAL_STATE_APPROVED, "approved"},
                    {v1::APPROVAL_STATE_DENIED, "denied"},       {v1::APPROVAL_STATE_TIMED_OUT, "timed_out"},
                    {v1::APPROVAL_STATE_EXPIRED, "expired"},     {v1::APPROVAL_STATE_PENDING, "approver_refused"}};
  for (const auto& a : kApprovals) {
    v1::AuditEvent e = Session(v1::AUDIT_KIND_APPROVAL, ++n);
    e.clear_original_destination();
    e.clear_upstream();
    e.set_outcome(a.outcome);
    e.set_reason("review-deletes");
    *e.mutable_approval() = Approval(a.state, "postgres");
    out.push_back(e);
  }
  v1::AuditEvent http_approval = Session(v1::AUDIT_KIND_APPROVAL, ++n, "http");
  http_approval.set_outcome("approved");
  *http_approval.mutable_approval() = Approval(v1::APPROVAL_STATE_APPROVED, "http");
  out.push_back(http_approval);

  for (const char* outcome : {"granted", "revoked", "expired", "granter_refused"}) {
    v1::AuditEvent g = Base(v1::AUDIT_KIND_GRANT, ++n);
    g.mutable_identity()->set_workload("billing-agent");
    g.set_resource("billing-db");
    g.set_outcome(outcome);
    g.set_reason("grt-0123456789abcdef");
    v1::Grant* grant = g.mutable_grant();
    grant->set_id("grt-0123456789abcdef");
    grant->set_workload("billing-agent");
    grant->set_resource("billing-db");
    grant->set_created_us(1796585400000000);
    grant->set_expires_us(1796589000000000);
    grant->set_reason("INC-7");
    grant->mutable_granted_by()->set_uid(1001);
    grant->mutable_granted_by()->set_user("alice");
    if (std::string(outcome) == "revoked") {
      grant->set_revoked_us(1796586000000000);
      grant->mutable_revoked_by()->set_uid(0);
      grant->mutable_revoked_by()->set_user("root");
      grant->mutable_revoked_by()->set_pid(900);
    }
    out.push_back(g);
  }
  v1::AuditEvent no_grant = Session(v1::AUDIT_KIND_GRANT, ++n);
  no_grant.set_outcome("denied");
  no_grant.set_reason("no_grant");
  out.push_back(no_grant);

  v1::AuditEvent policy = Base(v1::AUDIT_KIND_POLICY, ++n);
  policy.set_outcome("loaded");
  policy.set_reason("inotify");
  policy.set_detail("/etc/interlock/policy.yaml: 12 rules in force");
  out.push_back(policy);

  v1::AuditEvent policy_bad = Base(v1::AUDIT_KIND_POLICY, ++n);
  policy_bad.set_outcome("rejected");
  policy_bad.set_reason("sighup");
  policy_bad.set_detail("policy.yaml:3: rules[0].action: unknown; the previous policy stays in force");
  out.push_back(policy_bad);

  v1::AuditEvent checkpoint = Base(v1::AUDIT_KIND_AUDIT_CHECKPOINT, ++n);
  checkpoint.set_outcome("signed");
  checkpoint.set_reason("rotate");
  checkpoint.set_seq(4242);
  checkpoint.set_prev_sha256(std::string(64, 'a'));
  checkpoint.mutable_checkpoint()->set_reason("rotate");
  checkpoint.mutable_checkpoint()->set_signature(std::string(64, '\x01'));
  checkpoint.mutable_checkpoint()->set_key_fingerprint(std::string(64, 'b'));
  out.push_back(checkpoint);

  v1::AuditEvent masking = Session(v1::AUDIT_KIND_MASKING, ++n);
  masking.clear_original_destination();
  masking.clear_upstream();
  masking.set_outcome("masked");
  masking.set_reason("pii");
  v1::MaskingInfo* m = masking.mutable_masking();
  m->set_profile("pii");
  m->set_protocol("simple");
  m->set_rows(10);
  m->set_values_masked(12);
  m->add_columns("public.customers.ssn as ssn");
  (*m->mutable_detector_counts())["card"] = 2;
  (*m->mutable_column_counts())["public.customers.ssn as ssn"] = 10;
  out.push_back(masking);

  v1::AuditEvent http = Session(v1::AUDIT_KIND_HTTP_REQUEST, ++n, "http");
  http.set_outcome("allowed");
  http.set_duration_ms(42);
  *http.mutable_decision() = Decision("ALLOW", "rule");
  http.mutable_decision()->clear_statements();
  v1::HttpExchange* h = http.mutable_http();
  h->set_method("GET");
  h->set_target("/v1/customers?limit=10&api_key=<elided>");
  h->set_host("crm.example");
  h->set_path("/v1/customers");
  h->set_scheme("https");
  h->set_status(200);
  h->set_request_body_bytes(0);
  h->set_response_body_bytes(5120);
  h->set_duration_us(42000);
  h->set_answered_by("upstream");
  h->set_credential_injected("bearer");
  h->add_agent_credentials_removed("authorization");
  h->set_response_content_type("application/json");
  h->set_forwarded(true);
  h->set_body_masking("json");
  h->mutable_masking()->set_values_masked(3);
  out.push_back(http);

  v1::AuditEvent http_denied = Session(v1::AUDIT_KIND_HTTP_REQUEST, ++n, "http");
  http_denied.set_outcome("denied");
  *http_denied.mutable_decision() = Decision("DENY", "rule");
  http_denied.mutable_decision()->clear_statements();
  http_denied.mutable_http()->set_method("PATCH");
  http_denied.mutable_http()->set_target("/admin");
  http_denied.mutable_http()->set_host("crm.example");
  http_denied.mutable_http()->set_scheme("https");
  http_denied.mutable_http()->set_status(403);
  http_denied.mutable_http()->set_answered_by("interlockd");
  out.push_back(http_denied);

  // SSH, as userspace/proxy/ssh writes it: a command that ran and exited 3, a shell line
  // the policy denied, a refused port forwarding, a failed upstream login, a held command
  // and its approval.
  v1::AuditEvent ssh_exec = Session(v1::AUDIT_KIND_SSH_REQUEST, ++n, "ssh");
  ssh_exec.set_outcome("allowed");
  ssh_exec.set_bytes_to_upstream(12);
  ssh_exec.set_bytes_to_agent(3456);
  *ssh_exec.mutable_decision() = SshDecision("ALLOW", "builds", "make is fine");
  v1::SshExchange* x = ssh_exec.mutable_ssh();
  *x = SshExec("/usr/bin/make -C /srv/billing test", 'c', 1);
  for (const char* arg : {"/usr/bin/make", "-C", "/srv/billing", "test"}) x->add_argv(arg);
  x->set_exit_status(3);
  x->set_bytes_in(12);
  x->set_bytes_out(3456);
  x->set_duration_us(2500000);
  x->set_forwarded(true);
  out.push_back(ssh_exec);

  v1::AuditEvent ssh_denied = Session(v1::AUDIT_KIND_SSH_REQUEST, ++n, "ssh");
  ssh_denied.set_outcome("denied");
  *ssh_denied.mutable_decision() = SshDecision("DENY", "no-rm", "no recursive deletes");
  *ssh_denied.mutable_ssh() = SshExec("rm -rf /srv/billing/* && echo done", 'd', 2);
  ssh_denied.mutable_ssh()->set_shell("and-list");
  ssh_denied.mutable_ssh()->set_exit_status(-1);
  out.push_back(ssh_denied);

  v1::AuditEvent ssh_forward = Session(v1::AUDIT_KIND_SSH_REQUEST, ++n, "ssh");
  ssh_forward.set_outcome("refused");
  ssh_forward.set_reason("ssh_direct-tcpip_refused");
  ssh_forward.mutable_decision()->set_action("DENY");
  ssh_forward.mutable_decision()->set_source("not_supported");
  v1::SshExchange* forward = ssh_forward.mutable_ssh();
  forward->set_request("direct-tcpip");
  forward->set_command("10.1.2.3:5432");
  forward->set_agent_user("agent");
  forward->set_upstream_user("deploy");
  forward->set_exit_status(-1);
  out.push_back(ssh_forward);

  v1::AuditEvent ssh_login = Session(v1::AUDIT_KIND_AUTH, ++n, "ssh");
  ssh_login.set_outcome("denied");
  ssh_login.set_reason("upstream_login_failed");
  ssh_login.set_detail("ssh: upstream: publickey refused for deploy");
  ssh_login.mutable_ssh()->set_request("userauth");
  ssh_login.mutable_ssh()->set_agent_user("agent");
  ssh_login.mutable_ssh()->set_upstream_user("deploy");
  out.push_back(ssh_login);

  v1::AuditEvent ssh_held = Session(v1::AUDIT_KIND_POLICY_DECISION, ++n, "ssh");
  ssh_held.set_outcome("held");
  *ssh_held.mutable_decision() = SshDecision("REVIEW", "review-restarts", "restarts need a human");
  ssh_held.mutable_decision()->set_approval_id("apr-0123456789abcdef");
  *ssh_held.mutable_ssh() = SshExec("systemctl restart billing", 'e', 3);
  out.push_back(ssh_held);

  v1::AuditEvent ssh_approval = Session(v1::AUDIT_KIND_APPROVAL, ++n, "ssh");
  ssh_approval.set_outcome("approved");
  *ssh_approval.mutable_approval() = Approval(v1::APPROVAL_STATE_APPROVED, "ssh");
  ssh_approval.mutable_approval()->set_rule_id("review-restarts");
  ssh_approval.mutable_approval()->set_reason("restarts need a human");
  out.push_back(ssh_approval);

  // A kind this build does not name, and none at all: the base event.
  v1::AuditEvent unknown = Base(static_cast<v1::AuditKind>(99), ++n);
  unknown.set_outcome("allowed");
  out.push_back(unknown);
  out.push_back(Base(v1::AUDIT_KIND_UNSPECIFIED, ++n));
  return out;
}

}  // namespace interlock::audit::testing
