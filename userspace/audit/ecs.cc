#include "userspace/audit/ecs.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/audit/json_object.h"
#include "userspace/audit/json_writer.h"
#include "userspace/audit/ssh_command.h"
#include "userspace/common/json_text.h"
#include "userspace/common/version.h"


namespace interlock::audit {
namespace {

using Obj = internal::JsonObject;

bool IsFailure(absl::string_view o) {
  return o == "denied" || o == "error" || o == "rejected" || o == "refused" || o == "failed" ||
         o == "granter_refused" || o == "approver_refused" || o == "timed_out" || o == "timeout" ||
         o == "memory_budget" || o == "estimate_failed" || o == "cancelled" || o == "incomplete" ||
         o == "held";
}

bool IsDenial(absl::string_view o) {
  return o == "denied" || o == "rejected" || o == "refused" || o == "granter_refused" ||
         o == "approver_refused" || o == "timed_out";
}

void Strings(Obj& o, absl::string_view key, const std::vector<absl::string_view>& values) {
  if (values.empty()) return;
  std::string* out = o.Key(key);
  out->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonQuoted(values[i], out);
  }
  out->push_back(']');
}

// A write by the SQL verb (policy summary, command tag or text).
bool IsSqlWrite(absl::string_view s) {
  s = absl::StripLeadingAsciiWhitespace(s);
  for (absl::string_view verb : {"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "COPY", "CREATE", "ALTER",
                                 "DROP", "GRANT", "REVOKE"}) {
    if (absl::StartsWithIgnoreCase(s, verb)) return true;
  }
  return false;
}

}  // namespace

void AppendEcsJson(std::string* out, const v1::AuditEvent& e) {
  v1::AuditEvent rest = e;
  const v1::WorkloadIdentity& id = e.identity();
  const v1::HttpExchange& h = e.http();
  const bool http = e.has_http() || (e.kind() == v1::AUDIT_KIND_APPROVAL && e.approval().protocol() == "http");
  const v1::PolicyDecision& dec = e.has_decision() ? e.decision() : e.statement().decision();
  const bool has_decision = e.has_decision() || e.statement().has_decision();
  const bool denied = IsDenial(e.outcome()) || (has_decision && dec.action() == "DENY");
  const bool ssh = internal::IsSshOperation(e);
  const internal::SshCommand command = ssh ? internal::SshCommandOf(e) : internal::SshCommand{};

  std::vector<absl::string_view> category;
  std::vector<absl::string_view> type;
  switch (e.kind()) {
    case v1::AUDIT_KIND_SESSION_START:
      category = {"network", "session"};
      type = {"connection", "start"};
      break;
    case v1::AUDIT_KIND_SESSION_END:
      category = {"network", "session"};
      type = {"connection", "end"};
      break;
    case v1::AUDIT_KIND_CONNECT_DENIED:
    case v1::AUDIT_KIND_SESSION_REJECTED:
      category = {"network"};
      type = {"connection", "denied"};
      break;
    case v1::AUDIT_KIND_CANCEL:
      category = {"database"};
      type = {"change"};
      break;
    case v1::AUDIT_KIND_PROTOCOL_ERROR:
      category = {"network"};
      type = {"protocol"};
      if (denied) type.push_back("denied");
      break;
    case v1::AUDIT_KIND_STATEMENT:
    case v1::AUDIT_KIND_POLICY_DECISION:
    case v1::AUDIT_KIND_APPROVAL:
    case v1::AUDIT_KIND_MASKING:
    case v1::AUDIT_KIND_HTTP_REQUEST:
    case v1::AUDIT_KIND_SSH_REQUEST:
      if (ssh && command.runs_process) {
        // A command run upstream (or refused, or held before it could run).
        category = {"process", "network"};
        type = {"start", denied ? "denied" : "allowed"};
      } else if (ssh) {  // forwarding interlockd refuses
        category = {"network"};
        type = {"connection", denied ? "denied" : "allowed"};
      } else if (http || e.kind() == v1::AUDIT_KIND_HTTP_REQUEST) {
        category = {"web", "network"};
        type = {"access", denied ? "denied" : "allowed"};
      } else {
        category = {"database"};
        type = {"access"};
        absl::string_view verb = dec.statements_size() > 0          ? absl::string_view(dec.statements(0))
                                 : e.statement().command_tags_size() > 0 ? absl::string_view(e.statement().command_tags(0))
                                 : e.has_statement()                     ? absl::string_view(e.statement().text())
                                                                         : absl::string_view(e.approval().statement());
        if (IsSqlWrite(verb)) type.push_back("change");
      }
      break;
    case v1::AUDIT_KIND_AUTH:
      category = {"authentication"};
      type = {e.outcome() == "closed" ? "end" : "start"};
      break;
    case v1::AUDIT_KIND_GRANT:
      category = {"iam"};
      type = {e.outcome() == "granted" ? "creation" : e.outcome() == "revoked" ? "deletion" : "change"};
      break;
    case v1::AUDIT_KIND_ENROLLMENT:
      category = {"iam"};
      type = {e.outcome() == "unenrolled" ? "deletion" : "creation"};
      break;
    case v1::AUDIT_KIND_DAEMON:
      category = {"process"};
      type = {e.outcome() == "started" ? "start" : e.outcome() == "stopped" ? "end" : "info"};
      break;
    case v1::AUDIT_KIND_POLICY:
      category = {"configuration"};
      type = {"change"};
      break;
    case v1::AUDIT_KIND_AUDIT_CHECKPOINT:  // the audit trail's own integrity
      category = {"process"};
      type = {"info"};
      break;
    default:
      break;
  }

  Obj o(out);
  // ECS requires @timestamp; an event without a time (never written by interlockd) gets
  // the epoch rather than the clock.
  o.Str("@timestamp", e.time().empty() ? absl::string_view("1970-01-01T00:00:00Z") : absl::string_view(e.time()));
  rest.clear_time();
  o.Object("ecs", [&](Obj& x) { x.Str("version", kEcsVersion); });
  o.Str("message", e.detail());
  o.Object("event", [&](Obj& ev) {
    ev.Str("kind", "event");
    Strings(ev, "category", category);
    Strings(ev, "type", type);
    std::string action = v1::AuditKind_Name(e.kind());
    if (absl::StartsWith(action, "AUDIT_KIND_")) {
      action = absl::AsciiStrToLower(action.substr(11));
      rest.clear_kind();
    }
    ev.Str("action", action);
    ev.Str("outcome", e.outcome().empty() ? "unknown" : IsFailure(e.outcome()) ? "failure" : "success");
    ev.Str("code", e.reason());
    ev.Str("reason", e.detail());
    ev.Str("id", e.id());
    if (e.duration_ms() != 0) {
      ev.Uint("duration", e.duration_ms() * 1000000);  // ns
    } else if (e.ssh().duration_us() != 0) {
      ev.Uint("duration", e.ssh().duration_us() * 1000);
      rest.mutable_ssh()->clear_duration_us();
    }
    ev.Str("module", "interlock");
    ev.Str("dataset", "interlock.audit");
  });
  rest.clear_id();
  rest.clear_reason();
  rest.clear_detail();
  rest.clear_duration_ms();

  if (!e.host().empty()) {
    o.Object("host", [&](Obj& x) { x.Str("hostname", e.host()); });
    rest.clear_host();
  }
  o.Object("observer", [&](Obj& x) {
    x.Str("hostname", e.host());
    x.Str("product", "Interlock");
    x.Str("vendor", "Interlock");
    x.Str("version", InterlockVersion());
    x.Str("type", "proxy");
  });

  // The principal: the token's subject, else the Unix user; an SSH login or command's
  // upstream account is the target user.
  const absl::string_view upstream_user = ssh ? command.upstream_user : absl::string_view(e.ssh().upstream_user());
  const bool principal = !id.token_subject().empty() || !id.user().empty() || id.pid() != 0;
  if (principal || !upstream_user.empty()) {
    o.Object("user", [&](Obj& u) {
      if (!upstream_user.empty()) u.Object("target", [&](Obj& t) { t.Str("name", upstream_user); });
      if (!principal) return;
      if (!id.token_subject().empty()) {
        u.Str("id", id.token_subject());
        if (id.token_groups_size() > 0) {
          std::vector<absl::string_view> roles(id.token_groups().begin(), id.token_groups().end());
          Strings(u, "roles", roles);
        }
      } else {
        u.Str("id", absl::StrCat(id.uid()));
        u.Str("name", id.user());
      }
    });
  }
  // The agent's process; for an SSH command, the parent of the process it ran upstream.
  const auto local_process = [&](Obj& p) {
    p.Uint("pid", id.pid());
    if (id.tid() != 0) p.Object("thread", [&](Obj& t) { t.Uint("id", id.tid()); });
    p.Str("name", id.comm());
    p.Str("executable", id.exe());
    p.Object("user", [&](Obj& u) {
      u.Str("id", absl::StrCat(id.uid()));
      u.Str("name", id.user());
    });
  };
  if (command.runs_process) {
    o.Object("process", [&](Obj& p) {
      if (command.exec) p.Str("command_line", command.command);
      const auto& argv = e.ssh().argv();
      if (e.kind() != v1::AUDIT_KIND_APPROVAL && !argv.empty()) {
        std::vector<absl::string_view> args(argv.begin(), argv.end());
        Strings(p, "args", args);
        p.Uint("args_count", args.size());
      }
      p.Str("name", command.name);
      if (command.exit_code.has_value()) p.Int("exit_code", *command.exit_code);
      if (!command.upstream_user.empty()) p.Object("user", [&](Obj& u) { u.Str("name", command.upstream_user); });
      if (id.pid() != 0) p.Object("parent", local_process);
    });
    if (e.kind() == v1::AUDIT_KIND_APPROVAL) {
      if (command.exec) rest.mutable_approval()->clear_statement();
      rest.mutable_approval()->clear_db_user();
    } else {
      v1::SshExchange* rx = rest.mutable_ssh();
      if (command.exec) rx->clear_command();
      rx->clear_argv();
      if (command.exit_code.has_value()) rx->clear_exit_status();
      rx->clear_upstream_user();
    }
  } else if (id.pid() != 0) {
    o.Object("process", local_process);
  }
  if (!upstream_user.empty() && !command.runs_process) rest.mutable_ssh()->clear_upstream_user();
  // Both names of an SSH login: the one the agent asked for and the upstream account.
  if (e.has_ssh()) {
    std::vector<absl::string_view> users;
    for (absl::string_view u : {absl::string_view(e.ssh().agent_user()), absl::string_view(e.ssh().upstream_user())}) {
      if (!u.empty() && (users.empty() || users[0] != u)) users.push_back(u);
    }
    if (!users.empty()) o.Object("related", [&](Obj& r) { Strings(r, "user", users); });
  }
  if (e.has_identity()) {
    v1::WorkloadIdentity* r = rest.mutable_identity();
    r->clear_token_subject();
    r->clear_token_groups();
    if (id.pid() != 0 || !id.token_subject().empty() || !id.user().empty()) {
      if (id.pid() != 0 || id.token_subject().empty()) {
        r->clear_user();
        r->clear_uid();
      }
    }
    if (id.pid() != 0) {
      r->clear_pid();
      r->clear_tid();
      r->clear_comm();
      r->clear_exe();
    }
    if (r->ByteSizeLong() == 0) rest.clear_identity();
  }

  const v1::Endpoint& d = e.original_destination();
  if (!d.address().empty() || d.port() != 0 || e.bytes_to_agent() != 0) {
    o.Object("destination", [&](Obj& x) {
      x.Str("ip", d.address());
      x.Str("address", d.address());
      if (d.port() != 0) x.Uint("port", d.port());
      // ECS counts bytes by who sent them: the destination (the resource) sent what
      // reached the agent.
      if (e.bytes_to_agent() != 0) x.Uint("bytes", e.bytes_to_agent());
    });
    rest.clear_original_destination();
  }
  if (e.bytes_to_upstream() != 0) o.Object("source", [&](Obj& x) { x.Uint("bytes", e.bytes_to_upstream()); });
  if (!e.protocol().empty() || e.bytes_to_upstream() != 0 || e.bytes_to_agent() != 0) {
    o.Object("network", [&](Obj& x) {
      x.Str("protocol", e.protocol());
      if (e.bytes_to_upstream() + e.bytes_to_agent() != 0) x.Uint("bytes", e.bytes_to_upstream() + e.bytes_to_agent());
    });
    rest.clear_protocol();
    rest.clear_bytes_to_agent();
    rest.clear_bytes_to_upstream();
  }
  if (!e.resource().empty()) {
    o.Object("service", [&](Obj& x) { x.Str("name", e.resource()); });
    rest.clear_resource();
  }

  if (e.has_http()) {
    absl::string_view target = h.target();
    size_t q = target.find('?');
    o.Object("url", [&](Obj& u) {
      u.Str("original", target);
      if (!h.scheme().empty() && !h.host().empty()) u.Str("full", absl::StrCat(h.scheme(), "://", h.host(), target));
      u.Str("scheme", h.scheme());
      u.Str("domain", h.host());
      u.Str("path", h.path().empty() ? target.substr(0, q) : absl::string_view(h.path()));
      if (q != absl::string_view::npos) u.Str("query", target.substr(q + 1));
    });
    o.Object("http", [&](Obj& x) {
      x.Object("request", [&](Obj& r) {
        r.Str("method", h.method());
        r.Str("mime_type", h.request_content_type());
        if (h.request_body_bytes() != 0) r.Object("body", [&](Obj& b) { b.Uint("bytes", h.request_body_bytes()); });
      });
      if (h.status() != 0 || h.response_body_bytes() != 0 || !h.response_content_type().empty()) {
        x.Object("response", [&](Obj& r) {
          if (h.status() != 0) r.Uint("status_code", h.status());
          r.Str("mime_type", h.response_content_type());
          if (h.response_body_bytes() != 0) r.Object("body", [&](Obj& b) { b.Uint("bytes", h.response_body_bytes()); });
        });
      }
    });
    v1::HttpExchange* rh = rest.mutable_http();
    rh->clear_method();
    rh->clear_target();
    rh->clear_host();
    rh->clear_scheme();
    rh->clear_status();
    rh->clear_request_body_bytes();
    rh->clear_response_body_bytes();
    rh->clear_request_content_type();
    rh->clear_response_content_type();
  }

  // The rule that decided (approvals: the rule that sent it to review).
  const std::string& rule_id = e.kind() == v1::AUDIT_KIND_APPROVAL ? e.approval().rule_id() : dec.rule_id();
  const std::string& rule_reason = e.kind() == v1::AUDIT_KIND_APPROVAL ? e.approval().reason() : dec.reason();
  if ((has_decision || e.kind() == v1::AUDIT_KIND_APPROVAL) && (!rule_id.empty() || !rule_reason.empty())) {
    o.Object("rule", [&](Obj& r) {
      r.Str("id", rule_id);
      r.Str("name", rule_id);
      r.Str("description", rule_reason);
    });
  }

  std::string interlock;
  AppendEventJsonLine(&interlock, rest);
  interlock.pop_back();  // '\n'
  o.Raw("interlock", interlock);
}

std::string EventToEcsJson(const v1::AuditEvent& event) {
  std::string out;
  out.reserve(2048);
  AppendEcsJson(&out, event);
  return out;
}

}  // namespace interlock::audit
