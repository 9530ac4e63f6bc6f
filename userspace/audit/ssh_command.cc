#include "userspace/audit/ssh_command.h"

#include "absl/strings/str_cat.h"

namespace interlock::audit::internal {

bool IsSshOperation(const v1::AuditEvent& e) {
  switch (e.kind()) {
    case v1::AUDIT_KIND_SSH_REQUEST: return true;
    case v1::AUDIT_KIND_POLICY_DECISION: return e.has_ssh() && !e.has_http();
    case v1::AUDIT_KIND_APPROVAL: return e.approval().protocol() == "ssh";
    default: return false;
  }
}

SshCommand SshCommandOf(const v1::AuditEvent& e) {
  SshCommand c;
  if (e.kind() == v1::AUDIT_KIND_APPROVAL) {
    const v1::ApprovalRequest& a = e.approval();
    // Only commands are held; the classification says which request.
    c.runs_process = true;
    c.exec = a.classification() != "ssh shell" && a.classification() != "ssh subsystem";
    c.command = a.statement();
    if (!c.exec) c.name = a.classification() == "ssh shell" ? "shell" : absl::string_view(a.statement());
    c.upstream_user = a.db_user();
    c.uid = absl::StrCat(e.session_id(), "/", a.id());
    return c;
  }
  const v1::SshExchange& x = e.ssh();
  c.runs_process = x.request() == "exec" || x.request() == "shell" || x.request() == "subsystem";
  c.exec = x.request() == "exec";
  c.command = x.command();
  if (c.exec) {
    if (x.argv_size() > 0) {
      absl::string_view argv0 = x.argv(0);
      const size_t slash = argv0.rfind('/');
      c.name = slash == absl::string_view::npos ? argv0 : argv0.substr(slash + 1);
    }
  } else if (x.request() == "shell") {
    c.name = "shell";
  } else if (c.runs_process) {
    c.name = x.command();
  }
  c.upstream_user = x.upstream_user();
  if (x.forwarded() && x.exit_status() >= 0 && x.exit_signal().empty()) c.exit_code = x.exit_status();
  c.uid = absl::StrCat(e.session_id(), "/", x.channel());
  return c;
}

}  // namespace interlock::audit::internal
