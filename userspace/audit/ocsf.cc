#include "userspace/audit/ocsf.h"

#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/audit/json_object.h"
#include "userspace/audit/json_writer.h"
#include "userspace/audit/ssh_command.h"
#include "userspace/common/json_text.h"
#include "userspace/common/version.h"


namespace interlock::audit {
namespace {

using Obj = internal::JsonObject;

// OCSF ids used below (names as in the 1.3.0 dictionary and classes).
constexpr int kCategorySystem = 1;
constexpr int kCategoryIam = 3;
constexpr int kCategoryNetwork = 4;
constexpr int kCategoryApplication = 6;

constexpr int kClassBaseEvent = 0;
constexpr int kClassProcessActivity = 1007;
constexpr int kClassAuthentication = 3002;
constexpr int kClassAuthorizeSession = 3003;
constexpr int kClassEntityManagement = 3004;
constexpr int kClassNetworkActivity = 4001;
constexpr int kClassHttpActivity = 4002;
constexpr int kClassSshActivity = 4007;
constexpr int kClassApplicationLifecycle = 6002;
constexpr int kClassDatastoreActivity = 6005;

constexpr int kActivityUnknown = 0;
constexpr int kActivityOther = 99;

constexpr int kSeverityInformational = 1;
constexpr int kSeverityLow = 2;
constexpr int kSeverityMedium = 3;

constexpr int kStatusUnknown = 0;
constexpr int kStatusSuccess = 1;
constexpr int kStatusFailure = 2;

constexpr int kActionAllowed = 1;
constexpr int kActionDenied = 2;
constexpr int kActionOther = 99;

constexpr int kDispositionAllowed = 1;
constexpr int kDispositionBlocked = 2;
constexpr int kDispositionApproved = 8;
constexpr int kDispositionDelayed = 14;
constexpr int kDispositionRejected = 25;
constexpr int kDispositionUnauthorized = 26;
constexpr int kDispositionError = 27;
constexpr int kDispositionOther = 99;

// ---------------------------------------------------------------------------------------
// Outcome, severity, status.

bool IsFailureOutcome(absl::string_view o) {
  return o == "denied" || o == "error" || o == "rejected" || o == "refused" || o == "failed" ||
         o == "granter_refused" || o == "approver_refused" || o == "timed_out" || o == "timeout" ||
         o == "memory_budget" || o == "estimate_failed" || o == "cancelled" || o == "incomplete";
}

bool IsDenial(absl::string_view o) {
  return o == "denied" || o == "rejected" || o == "refused" || o == "granter_refused" ||
         o == "approver_refused";
}

int StatusId(absl::string_view outcome) {
  if (outcome.empty()) return kStatusUnknown;
  return IsFailureOutcome(outcome) ? kStatusFailure : kStatusSuccess;
}

absl::string_view StatusCaption(int id) {
  switch (id) {
    case kStatusSuccess: return "Success";
    case kStatusFailure: return "Failure";
    default: return "Unknown";
  }
}

int SeverityId(const v1::AuditEvent& e) {
  const std::string& o = e.outcome();
  if (IsDenial(o) || e.kind() == v1::AUDIT_KIND_CONNECT_DENIED) return kSeverityMedium;
  if (o == "error" || o == "failed" || o == "memory_budget" || e.kind() == v1::AUDIT_KIND_PROTOCOL_ERROR) {
    return kSeverityLow;
  }
  return kSeverityInformational;
}

absl::string_view SeverityCaption(int id) {
  switch (id) {
    case kSeverityInformational: return "Informational";
    case kSeverityLow: return "Low";
    case kSeverityMedium: return "Medium";
    default: return "Unknown";
  }
}

// security_control: what happened to the operation. A decision (when the event has one)
// says more than the outcome.
struct Disposition {
  int action_id = 0;
  absl::string_view action;
  int disposition_id = 0;
  absl::string_view disposition;
};

Disposition Allowed() { return {kActionAllowed, "Allowed", kDispositionAllowed, "Allowed"}; }
Disposition Blocked() { return {kActionDenied, "Denied", kDispositionBlocked, "Blocked"}; }
Disposition Held() { return {kActionOther, "Held", kDispositionDelayed, "Delayed"}; }

Disposition FromDecision(const v1::PolicyDecision& d, absl::string_view outcome) {
  if (d.source() == "approved") return {kActionAllowed, "Allowed", kDispositionApproved, "Approved"};
  if (d.source() == "review_denied" || d.source() == "review_timeout") return Blocked();
  if (d.action() == "DENY") return Blocked();
  if (d.action() == "REVIEW") return outcome == "held" || outcome.empty() ? Held() : Blocked();
  if (d.action() == "MASK") return {kActionAllowed, "Allowed", kDispositionOther, "Masked"};
  if (d.action() == "ALLOW") return Allowed();
  return {};
}

Disposition FromOutcome(absl::string_view outcome) {
  if (outcome == "allowed" || outcome == "ok" || outcome == "forwarded") return Allowed();
  if (outcome == "held") return Held();
  if (IsDenial(outcome)) return Blocked();
  if (outcome == "error") return {0, "", kDispositionError, "Error"};
  return {};
}

Disposition FromApproval(absl::string_view outcome) {
  if (outcome == "requested") return Held();
  if (outcome == "approved" || outcome == "approved_by_window") {
    return {kActionAllowed, "Allowed", kDispositionApproved, "Approved"};
  }
  if (outcome == "approver_refused") return {kActionDenied, "Denied", kDispositionUnauthorized, "Unauthorized"};
  if (outcome.empty()) return {};
  return Blocked();  // denied, timed_out, expired: the held operation never ran
}

// ---------------------------------------------------------------------------------------
// Activities.

struct Activity {
  int id;
  absl::string_view name;
};

// Datastore Activity by the SQL verb: the policy's summary ("DELETE w:public.t no_where"),
// else the first command tag ("INSERT 0 1"), else the statement's first word.
Activity SqlActivity(absl::string_view summary_or_text) {
  absl::string_view s = absl::StripLeadingAsciiWhitespace(summary_or_text);
  size_t end = 0;
  while (end < s.size() && absl::ascii_isalpha(static_cast<unsigned char>(s[end]))) ++end;
  const std::string verb = absl::AsciiStrToUpper(s.substr(0, end));
  if (verb.empty()) return {kActivityUnknown, "Unknown"};
  if (verb == "SELECT" || verb == "WITH" || verb == "VALUES" || verb == "TABLE" || verb == "SHOW" ||
      verb == "EXPLAIN" || verb == "FETCH") {
    return {4, "Query"};
  }
  if (verb == "INSERT" || verb == "COPY") return {5, "Write"};
  if (verb == "UPDATE" || verb == "MERGE" || verb == "ALTER") return {2, "Update"};
  if (verb == "DELETE" || verb == "TRUNCATE" || verb == "DROP") return {7, "Delete"};
  if (verb == "CREATE") return {6, "Create"};
  return {kActivityOther, "Other"};
}

Activity HttpActivity(absl::string_view method) {
  static constexpr std::pair<absl::string_view, int> kMethods[] = {
      {"CONNECT", 1}, {"DELETE", 2}, {"GET", 3}, {"HEAD", 4}, {"OPTIONS", 5}, {"POST", 6}, {"PUT", 7}, {"TRACE", 8}};
  for (const auto& [name, id] : kMethods) {
    if (method == name) return {id, name};
  }
  return method.empty() ? Activity{kActivityUnknown, "Unknown"} : Activity{kActivityOther, "Other"};
}

// ---------------------------------------------------------------------------------------
// Shared pieces.

int64_t TimeMs(const std::string& rfc3339) {
  absl::Time t;
  std::string err;
  if (rfc3339.empty() || !absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) return 0;
  return absl::ToUnixMillis(t);
}

absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// A Unix account: OCSF user {uid (string), name}.
void AppendUnixUser(Obj& o, const v1::WorkloadIdentity& id) {
  o.Object("user", [&](Obj& u) {
    u.Str("name", id.user());
    u.Str("uid", absl::StrCat(id.uid()));
  });
}

// The principal a policy sees: the token's subject when one was shown, else the Unix user.
void AppendPrincipal(Obj& o, absl::string_view key, const v1::WorkloadIdentity& id) {
  o.Object(key, [&](Obj& u) {
    if (!id.token_subject().empty()) {
      u.Str("uid", id.token_subject());
      if (id.token_groups_size() > 0) {
        std::string* g = u.Key("groups");
        g->push_back('[');
        for (int i = 0; i < id.token_groups_size(); ++i) {
          if (i > 0) g->push_back(',');
          Obj group(g);
          group.Str("name", id.token_groups(i));
        }
        g->push_back(']');
      }
    } else {
      u.Str("name", id.user());
      u.Str("uid", absl::StrCat(id.uid()));
    }
  });
}

// OCSF process needs a pid: without one, exe/comm/tid/cgroup stay in unmapped.
bool HasProcess(const v1::WorkloadIdentity& id) { return id.pid() != 0; }

bool HasPrincipal(const v1::WorkloadIdentity& id) {
  return !id.token_subject().empty() || HasProcess(id) || !id.user().empty() || id.uid() != 0;
}

void AppendActor(Obj& o, const v1::AuditEvent& e) {
  const v1::WorkloadIdentity& id = e.identity();
  o.Object("actor", [&](Obj& a) {
    a.Str("app_name", id.workload());
    if (HasPrincipal(id)) AppendPrincipal(a, "user", id);
    if (!id.token_issuer().empty()) a.Object("idp", [&](Obj& i) { i.Str("name", id.token_issuer()); });
    if (HasProcess(id)) {
      a.Object("process", [&](Obj& p) {
        if (id.pid() != 0) p.Uint("pid", id.pid());
        if (id.tid() != 0) p.Uint("tid", id.tid());
        p.Str("name", id.comm());
        if (!id.exe().empty()) {
          p.Object("file", [&](Obj& f) {
            f.Str("name", Basename(id.exe()));
            f.Str("path", id.exe());
            f.Int("type_id", 1);  // Regular File: /proc/<pid>/exe
            f.Str("type", "Regular File");
          });
        }
        AppendUnixUser(p, id);
        if (id.cgroup_id() != 0 || !id.cgroup_path().empty()) {
          // OCSF 1.3 has no cgroup slot: the process's extended attributes.
          p.Object("xattributes", [&](Obj& x) {
            if (id.cgroup_id() != 0) x.Str("cgroup_id", absl::StrCat(id.cgroup_id()));
            x.Str("cgroup_path", id.cgroup_path());
          });
        }
      });
    }
    if (!e.session_id().empty()) a.Object("session", [&](Obj& s) { s.Str("uid", e.session_id()); });
    if (!HasPrincipal(id) && id.workload().empty() && e.session_id().empty()) {
      // actor needs one of process/user/session/app_name: interlockd itself acted.
      a.Str("app_name", "interlockd");
    }
  });
}

void ClearActorFields(v1::AuditEvent* rest) {
  if (!rest->has_identity()) {
    rest->clear_session_id();
    return;
  }
  v1::WorkloadIdentity* id = rest->mutable_identity();
  const bool process = HasProcess(*id);
  const bool unix_principal = id->token_subject().empty() && HasPrincipal(*id);
  id->clear_workload();
  id->clear_token_subject();
  id->clear_token_groups();
  id->clear_token_issuer();
  if (process) {  // process {pid, tid, name, file, xattributes}
    id->clear_pid();
    id->clear_tid();
    id->clear_comm();
    id->clear_exe();
    id->clear_cgroup_id();
    id->clear_cgroup_path();
  }
  if (process || unix_principal) {  // process.user or actor.user
    id->clear_user();
    id->clear_uid();
  }
  if (id->ByteSizeLong() == 0) rest->clear_identity();
  rest->clear_session_id();
}

void AppendDst(Obj& o, const v1::AuditEvent& e, v1::AuditEvent* rest) {
  const v1::Endpoint& d = e.original_destination();
  if (d.address().empty() && d.port() == 0 && e.resource().empty()) return;
  o.Object("dst_endpoint", [&](Obj& p) {
    p.Str("ip", d.address());
    if (d.port() != 0) p.Uint("port", d.port());
    p.Str("svc_name", e.resource());
  });
  rest->clear_original_destination();
  rest->clear_resource();
}

void AppendHost(Obj& o, const v1::AuditEvent& e, bool src_endpoint, bool device, v1::AuditEvent* rest) {
  if (e.host().empty() || (!src_endpoint && !device)) return;
  rest->clear_host();
  // The agent runs on the host interlockd runs on (redirect by cgroup): its source.
  if (src_endpoint) o.Object("src_endpoint", [&](Obj& s) { s.Str("hostname", e.host()); });
  if (!device) return;
  o.Object("device", [&](Obj& d) {
    d.Str("hostname", e.host());
    d.Int("type_id", 0);
    d.Str("type", "Unknown");
  });
}

void AppendSecurityControl(Obj& o, const Disposition& d) {
  o.Int("action_id", d.action_id);
  o.Str("action", d.action_id == 0 ? absl::string_view("Unknown") : d.action);
  if (d.disposition_id != 0) {
    o.Int("disposition_id", d.disposition_id);
    o.Str("disposition", d.disposition);
  }
}

// The deciding rule: authorizations [{decision, policy {uid, name, desc}}].
void AppendAuthorization(Obj& o, absl::string_view decision, absl::string_view rule_id,
                         absl::string_view reason) {
  if (decision.empty() && rule_id.empty() && reason.empty()) return;
  std::string* out = o.Key("authorizations");
  out->push_back('[');
  {
    Obj a(out);
    a.Str("decision", decision);
    if (!rule_id.empty() || !reason.empty()) {
      a.Object("policy", [&](Obj& p) {
        p.Str("uid", rule_id);
        p.Str("name", rule_id.empty() ? absl::string_view("default") : rule_id);
        p.Str("desc", reason);
      });
    }
  }
  out->push_back(']');
}

// Network traffic, from the agent's side (the source): out = to the resource.
void AppendTraffic(Obj& o, const v1::AuditEvent& e, v1::AuditEvent* rest) {
  if (e.bytes_to_upstream() == 0 && e.bytes_to_agent() == 0) return;
  o.Object("traffic", [&](Obj& t) {
    t.Uint("bytes_out", e.bytes_to_upstream());
    t.Uint("bytes_in", e.bytes_to_agent());
    t.Uint("bytes", e.bytes_to_upstream() + e.bytes_to_agent());
  });
  rest->clear_bytes_to_upstream();
  rest->clear_bytes_to_agent();
}

// ---------------------------------------------------------------------------------------
// Class bodies. Each writes its class-specific members and clears from `rest` what it
// wrote losslessly.

void DatastoreBody(Obj& o, const v1::AuditEvent& e, v1::AuditEvent* rest, Activity* activity,
                   Disposition* disp) {
  const v1::StatementInfo& st = e.statement();
  const v1::PolicyDecision& dec = e.has_decision() ? e.decision() : st.decision();
  const v1::ApprovalRequest& apr = e.approval();
  absl::string_view database = !st.database().empty() ? st.database() : apr.database();
  absl::string_view text = e.has_statement() ? st.text() : apr.statement();

  if (e.kind() == v1::AUDIT_KIND_MASKING) {
    *activity = {1, "Read"};
  } else if (dec.statements_size() > 0) {
    *activity = SqlActivity(dec.statements(0));
  } else if (st.command_tags_size() > 0) {
    *activity = SqlActivity(st.command_tags(0));
  } else {
    *activity = SqlActivity(text);
  }

  if (e.kind() == v1::AUDIT_KIND_APPROVAL) {
    *disp = FromApproval(e.outcome());
  } else if (e.kind() == v1::AUDIT_KIND_MASKING) {
    *disp = e.outcome() == "masked" ? Disposition{kActionAllowed, "Allowed", kDispositionOther, "Masked"}
                                    : FromOutcome(e.outcome());
  } else if (e.has_decision() || st.has_decision()) {
    *disp = FromDecision(dec, e.outcome());
  } else if (e.kind() == v1::AUDIT_KIND_STATEMENT) {
    // Statement events are for statements sent upstream: an SQL error or a cancel is the
    // statement's status (status_id), not what interlockd did with it.
    *disp = Allowed();
  } else {
    *disp = FromOutcome(e.outcome());
  }

  o.Object("database", [&](Obj& d) {
    d.Str("name", database);
    d.Str("uid", e.resource());
    d.Int("type_id", 1);
    d.Str("type", "Relational");
  });
  o.Int("type_id", 1);
  o.Str("type", "Database");
  if (!text.empty()) {
    // query_info needs a name or uid: the prepared statement's name, the text's SHA-256.
    absl::string_view name = e.has_statement() ? absl::string_view(st.statement_name()) : absl::string_view();
    absl::string_view sha = e.has_statement() ? st.text_sha256() : apr.statement_sha256();
    o.Object("query_info", [&](Obj& q) {
      q.Str("query_string", text);
      q.Str("name", name.empty() && sha.empty() ? absl::string_view("statement") : name);
      q.Str("uid", sha);
    });
    if (e.has_statement()) {
      rest->mutable_statement()->clear_text();
      rest->mutable_statement()->clear_statement_name();
      rest->mutable_statement()->clear_text_sha256();
    } else {
      rest->mutable_approval()->clear_statement();
      rest->mutable_approval()->clear_statement_sha256();
    }
  }
  if (!st.database().empty()) {
    rest->mutable_statement()->clear_database();
  } else if (!apr.database().empty()) {
    rest->mutable_approval()->clear_database();
  }
}

void HttpBody(Obj& o, const v1::AuditEvent& e, v1::AuditEvent* rest, Activity* activity, Disposition* disp) {
  const v1::HttpExchange& h = e.http();
  std::string method = h.method();
  std::string url_string;
  if (!e.has_http() && e.has_approval()) {
    // A held request's approval: "METHOD host/target".
    absl::string_view s = e.approval().statement();
    size_t sp = s.find(' ');
    method = std::string(s.substr(0, sp));
    if (sp != absl::string_view::npos) url_string = std::string(s.substr(sp + 1));
  }
  *activity = HttpActivity(method);
  if (e.kind() == v1::AUDIT_KIND_APPROVAL) {
    *disp = FromApproval(e.outcome());
  } else if (e.has_decision()) {
    *disp = FromDecision(e.decision(), e.outcome());
  } else if (e.has_http()) {
    *disp = h.answered_by() == "interlockd" && !h.forwarded() ? Blocked() : Allowed();
    if (!e.outcome().empty() && e.outcome() != "allowed" && e.outcome() != "ok") {
      Disposition by_outcome = FromOutcome(e.outcome());
      if (by_outcome.action_id != 0 || by_outcome.disposition_id != 0) *disp = by_outcome;
    }
  } else {
    *disp = FromOutcome(e.outcome());
  }

  o.Object("http_request", [&](Obj& r) {
    r.Str("http_method", method);
    if (e.has_http()) {
      absl::string_view target = h.target();
      size_t q = target.find('?');
      r.Object("url", [&](Obj& u) {
        if (!h.scheme().empty() && !h.host().empty()) {
          u.Str("url_string", absl::StrCat(h.scheme(), "://", h.host(), target));
        } else {
          u.Str("url_string", target);
        }
        u.Str("scheme", h.scheme());
        u.Str("hostname", h.host());
        u.Str("path", h.path().empty() ? target.substr(0, q) : absl::string_view(h.path()));
        if (q != absl::string_view::npos) u.Str("query_string", target.substr(q + 1));
      });
      if (h.request_body_bytes() != 0) r.Uint("length", h.request_body_bytes());
    } else if (!url_string.empty()) {
      r.Object("url", [&](Obj& u) { u.Str("url_string", url_string); });
    }
  });
  // Required by the class; code 0: no response was sent (or not yet: a hold).
  o.Object("http_response", [&](Obj& r) {
    r.Uint("code", h.status());
    if (e.has_http()) {
      r.Str("content_type", h.response_content_type());
      if (h.response_body_bytes() != 0) r.Uint("length", h.response_body_bytes());
    }
  });
  if (h.status() != 0) o.Uint("http_status", h.status());
  if (e.has_http()) {
    v1::HttpExchange* rh = rest->mutable_http();
    rh->clear_method();
    rh->clear_target();
    rh->clear_host();
    rh->clear_scheme();
    rh->clear_status();
    rh->clear_request_body_bytes();
    rh->clear_response_body_bytes();
    rh->clear_response_content_type();
  }
}

// Process Activity (1007) for an SSH command: the process is the one the command runs on
// the upstream host, as the upstream user; the device is that host (the resource).
void SshProcessBody(Obj& o, const v1::AuditEvent& e, v1::AuditEvent* rest, Activity* activity,
                    Disposition* disp) {
  const internal::SshCommand c = internal::SshCommandOf(e);
  const bool approval = e.kind() == v1::AUDIT_KIND_APPROVAL;
  *activity = {1, "Launch"};
  if (approval) {
    *disp = FromApproval(e.outcome());
  } else if (e.has_decision()) {
    *disp = FromDecision(e.decision(), e.outcome());
  } else {
    *disp = FromOutcome(e.outcome());
  }
  o.Object("process", [&](Obj& p) {
    p.Str("uid", c.uid);
    if (c.exec) p.Str("cmd_line", c.command);
    p.Str("name", c.name);
    if (!c.upstream_user.empty()) p.Object("user", [&](Obj& u) { u.Str("name", c.upstream_user); });
  });
  if (c.exit_code.has_value()) {
    o.Int("exit_code", *c.exit_code);
    rest->mutable_ssh()->clear_exit_status();
  }
  // The upstream host is where the process ran.
  const v1::Endpoint& d = e.original_destination();
  const std::string& resource = !e.resource().empty() ? e.resource() : e.approval().resource();
  if (!d.address().empty() || !resource.empty()) {
    o.Object("device", [&](Obj& dev) {
      dev.Str("ip", d.address());
      dev.Str("name", resource);
      dev.Int("type_id", 1);
      dev.Str("type", "Server");
    });
    rest->mutable_original_destination()->clear_address();
    if (rest->original_destination().ByteSizeLong() == 0) rest->clear_original_destination();
    if (!e.resource().empty()) rest->clear_resource();
  }
  if (approval) {
    if (c.exec) rest->mutable_approval()->clear_statement();
    rest->mutable_approval()->clear_db_user();
  } else if (e.has_ssh()) {
    if (c.exec) rest->mutable_ssh()->clear_command();
    rest->mutable_ssh()->clear_upstream_user();
  }
}

// SSH Activity (4007) for a request that opens no process: interlockd refuses forwarding.
void SshActivityBody(Obj& o, const v1::AuditEvent& e, Activity* activity, Disposition* disp) {
  const std::string& outcome = e.outcome();
  *activity = IsDenial(outcome) ? Activity{5, "Refuse"} : Activity{kActivityOther, e.ssh().request()};
  *disp = e.has_decision() ? FromDecision(e.decision(), outcome) : FromOutcome(outcome);
  o.Str("app_name", "ssh");
}

}  // namespace

void AppendOcsfJson(std::string* out, const v1::AuditEvent& e) {
  // What OCSF has no slot for stays in `unmapped`: the event minus what is written above.
  v1::AuditEvent rest = e;
  rest.clear_id();
  rest.clear_reason();  // status_code
  rest.clear_detail();  // status_detail

  int class_uid = kClassBaseEvent;
  int category_uid = 0;
  absl::string_view class_name = "Base Event";
  absl::string_view category_name = "Uncategorized";
  Activity activity{kActivityOther, "Other"};
  Disposition disp;
  bool security_control = false;  // profiles: action, disposition, authorizations
  bool host_profile = true;       // device (and actor where the class lacks it)
  bool src_endpoint = true;
  bool actor_from_identity = true;
  // `body` is written into after the common members; built first so that the activity
  // and disposition it chooses are known.
  std::string body;
  {
    Obj o(&body);
    const bool http = e.has_http() || (e.kind() == v1::AUDIT_KIND_APPROVAL && e.approval().protocol() == "http");
    const bool ssh = internal::IsSshOperation(e);
    switch (e.kind()) {
      case v1::AUDIT_KIND_SESSION_START:
      case v1::AUDIT_KIND_SESSION_END:
      case v1::AUDIT_KIND_CONNECT_DENIED:
      case v1::AUDIT_KIND_SESSION_REJECTED:
      case v1::AUDIT_KIND_CANCEL:
      case v1::AUDIT_KIND_PROTOCOL_ERROR: {
        class_uid = kClassNetworkActivity;
        category_uid = kCategoryNetwork;
        class_name = "Network Activity";
        category_name = "Network Activity";
        security_control = true;
        switch (e.kind()) {
          case v1::AUDIT_KIND_SESSION_START:
            activity = {1, "Open"};
            disp = FromOutcome(e.outcome().empty() ? "allowed" : e.outcome());
            break;
          case v1::AUDIT_KIND_SESSION_END:
            activity = {2, "Close"};
            break;
          case v1::AUDIT_KIND_CONNECT_DENIED:
            activity = {5, "Refuse"};
            disp = Blocked();
            break;
          case v1::AUDIT_KIND_SESSION_REJECTED:
            activity = {5, "Refuse"};
            disp = {kActionDenied, "Denied", kDispositionRejected, "Rejected"};
            break;
          case v1::AUDIT_KIND_CANCEL:
            activity = {kActivityOther, "Cancel"};
            disp = FromOutcome(e.outcome());
            break;
          default:
            activity = {kActivityOther, "Protocol Error"};
            disp = FromOutcome(e.outcome());
        }
        if (!e.protocol().empty()) {
          o.Str("app_name", e.protocol());
          rest.clear_protocol();
        }
        AppendTraffic(o, e, &rest);
        break;
      }
      case v1::AUDIT_KIND_SSH_REQUEST:
      case v1::AUDIT_KIND_HTTP_REQUEST:
      case v1::AUDIT_KIND_POLICY_DECISION:
      case v1::AUDIT_KIND_APPROVAL:
      case v1::AUDIT_KIND_STATEMENT:
      case v1::AUDIT_KIND_MASKING:
        security_control = true;
        if (ssh && !internal::SshCommandOf(e).runs_process) {
          class_uid = kClassSshActivity;
          category_uid = kCategoryNetwork;
          class_name = "SSH Activity";
          category_name = "Network Activity";
          SshActivityBody(o, e, &activity, &disp);
          AppendTraffic(o, e, &rest);
        } else if (ssh) {
          class_uid = kClassProcessActivity;
          category_uid = kCategorySystem;
          class_name = "Process Activity";
          category_name = "System Activity";
          src_endpoint = false;  // the system classes have none; `device` is the upstream host
          SshProcessBody(o, e, &rest, &activity, &disp);
        } else if (http || e.kind() == v1::AUDIT_KIND_HTTP_REQUEST) {
          class_uid = kClassHttpActivity;
          category_uid = kCategoryNetwork;
          class_name = "HTTP Activity";
          category_name = "Network Activity";
          HttpBody(o, e, &rest, &activity, &disp);
        } else {
          class_uid = kClassDatastoreActivity;
          category_uid = kCategoryApplication;
          class_name = "Datastore Activity";
          category_name = "Application Activity";
          host_profile = false;
          DatastoreBody(o, e, &rest, &activity, &disp);
        }
        break;
      case v1::AUDIT_KIND_AUTH: {
        class_uid = kClassAuthentication;
        category_uid = kCategoryIam;
        class_name = "Authentication";
        category_name = "Identity & Access Management";
        activity = e.outcome() == "closed" ? Activity{2, "Logoff"} : Activity{1, "Logon"};
        const v1::WorkloadIdentity& id = e.identity();
        // The identity that logged in (user is required): the token's subject or the
        // workload's Unix user; for the upstream login interlockd made, detail names the
        // database role.
        // An SSH login names the upstream account interlockd logged in as (the principal
        // stays the actor; the user name the agent asked for stays in unmapped).
        if (e.has_ssh() && !e.ssh().upstream_user().empty()) {
          o.Object("user", [&](Obj& u) { u.Str("name", e.ssh().upstream_user()); });
          rest.mutable_ssh()->clear_upstream_user();
        } else if (HasPrincipal(id)) {
          AppendPrincipal(o, "user", id);
        } else {
          o.Object("user", [&](Obj& u) { u.Str("name", id.workload().empty() ? "unknown" : id.workload()); });
        }
        if (!e.resource().empty()) o.Object("service", [&](Obj& s) { s.Str("name", e.resource()); });
        if (!e.session_id().empty()) o.Object("session", [&](Obj& s) { s.Str("uid", e.session_id()); });
        o.Bool("is_remote", false);  // redirected on this host
        break;
      }
      case v1::AUDIT_KIND_GRANT: {
        class_uid = kClassAuthorizeSession;
        category_uid = kCategoryIam;
        class_name = "Authorize Session";
        category_name = "Identity & Access Management";
        activity = e.outcome() == "granted" || e.outcome() == "allowed"
                       ? Activity{1, "Assign Privileges"}
                       : Activity{kActivityOther, e.outcome() == "revoked"   ? "Revoke"
                                                  : e.outcome() == "expired" ? "Expire"
                                                  : e.outcome() == "closed"  ? "End"
                                                                             : "Refuse"};
        const v1::WorkloadIdentity& id = e.identity();
        o.Object("user", [&](Obj& u) {
          u.Str("name", !id.workload().empty() ? id.workload() : e.grant().workload());
          if (id.workload().empty() && e.grant().workload().empty()) u.Str("name", "unknown");
        });
        const std::string& resource = !e.resource().empty() ? e.resource() : e.grant().resource();
        std::string* p = o.Key("privileges");
        p->push_back('[');
        AppendJsonQuoted(resource, p);
        p->push_back(']');
        if (!e.session_id().empty()) o.Object("session", [&](Obj& s) { s.Str("uid", e.session_id()); });
        if (e.session_id().empty()) {
          // Granted, refused, revoked or expired outside a session: the workload is the
          // `user` the grant is for; the actor is the operator who granted or revoked it
          // (control socket peer credentials), or interlockd for an expiry.
          const v1::Approver& by = e.outcome() == "revoked" ? e.grant().revoked_by() : e.grant().granted_by();
          const bool operator_acted = (e.outcome() == "revoked" && e.grant().has_revoked_by()) ||
                                      ((e.outcome() == "granted" || e.outcome() == "granter_refused") &&
                                       e.grant().has_granted_by());
          o.Object("actor", [&](Obj& a) {
            if (!operator_acted) {
              a.Str("app_name", "interlockd");
              return;
            }
            a.Object("user", [&](Obj& u) {
              u.Str("name", by.user());
              u.Str("uid", absl::StrCat(by.uid()));
            });
            if (by.pid() != 0) {
              a.Object("process", [&](Obj& p) {
                p.Uint("pid", by.pid());
                p.Object("user", [&](Obj& u) {
                  u.Str("name", by.user());
                  u.Str("uid", absl::StrCat(by.uid()));
                });
              });
            }
          });
          actor_from_identity = false;
          if (rest.has_identity()) {
            rest.mutable_identity()->clear_workload();  // user.name
            if (rest.identity().ByteSizeLong() == 0) rest.clear_identity();
          }
        }
        break;
      }
      case v1::AUDIT_KIND_ENROLLMENT: {
        class_uid = kClassEntityManagement;
        category_uid = kCategoryIam;
        class_name = "Entity Management";
        category_name = "Identity & Access Management";
        activity = e.outcome() == "enrolled"     ? Activity{6, "Enroll"}
                   : e.outcome() == "unenrolled" ? Activity{7, "Unenroll"}
                                                 : Activity{kActivityOther, "Other"};
        const v1::WorkloadIdentity& id = e.identity();
        // The workload is the entity; interlockd (on the operator's command) the actor.
        o.Object("entity", [&](Obj& en) {
          en.Str("name", id.workload().empty() ? "unknown" : id.workload());
          if (id.cgroup_id() != 0) en.Str("uid", absl::StrCat(id.cgroup_id()));
          en.Str("type", "Workload");
          if (!id.cgroup_path().empty()) {
            std::string* d = en.Key("data");
            Obj data(d);
            data.Str("cgroup_path", id.cgroup_path());
          }
        });
        o.Object("actor", [&](Obj& a) { a.Str("app_name", "interlockd"); });
        actor_from_identity = false;
        if (rest.has_identity()) {
          rest.mutable_identity()->clear_workload();
          rest.mutable_identity()->clear_cgroup_id();
          rest.mutable_identity()->clear_cgroup_path();
          if (rest.identity().ByteSizeLong() == 0) rest.clear_identity();
        }
        src_endpoint = false;
        break;
      }
      case v1::AUDIT_KIND_DAEMON:
      case v1::AUDIT_KIND_POLICY:
      case v1::AUDIT_KIND_AUDIT_CHECKPOINT: {
        class_uid = kClassApplicationLifecycle;
        category_uid = kCategoryApplication;
        class_name = "Application Lifecycle";
        category_name = "Application Activity";
        if (e.kind() == v1::AUDIT_KIND_POLICY) {
          activity = {8, "Update"};
        } else {
          activity = e.outcome() == "started"   ? Activity{3, "Start"}
                     : e.outcome() == "stopped" ? Activity{4, "Stop"}
                                                : Activity{kActivityOther, "Other"};
        }
        o.Object("app", [&](Obj& a) {
          a.Str("name", "interlockd");
          a.Str("vendor_name", "Interlock");
          a.Str("version", InterlockVersion());
        });
        src_endpoint = false;
        break;
      }
      default:
        host_profile = false;
        src_endpoint = false;
        break;
    }
  }
  Obj o(out);
  o.Int("class_uid", class_uid);
  o.Str("class_name", class_name);
  o.Int("category_uid", category_uid);
  o.Str("category_name", category_name);
  o.Int("activity_id", activity.id);
  o.Str("activity_name", activity.name);
  o.Int("type_uid", int64_t{class_uid} * 100 + activity.id);
  o.Str("type_name", absl::StrCat(class_name, ": ", activity.name));
  o.Int("time", TimeMs(e.time()));
  if (e.duration_ms() != 0) {
    o.Uint("duration", e.duration_ms());
    rest.clear_duration_ms();
  } else if (e.ssh().duration_us() >= 1000) {
    o.Uint("duration", e.ssh().duration_us() / 1000);  // ms; the µs stay in unmapped
  }
  const int severity = SeverityId(e);
  o.Int("severity_id", severity);
  o.Str("severity", SeverityCaption(severity));
  const int status = StatusId(e.outcome());
  o.Int("status_id", status);
  o.Str("status", StatusCaption(status));
  o.Str("status_code", e.reason());
  o.Str("status_detail", e.detail());
  o.Str("message", e.detail());
  if (security_control) AppendSecurityControl(o, disp);
  o.Object("metadata", [&](Obj& m) {
    m.Str("version", kOcsfVersion);
    m.Str("uid", e.id());
    m.Object("product", [&](Obj& p) {
      p.Str("name", "Interlock");
      p.Str("vendor_name", "Interlock");
      p.Str("version", InterlockVersion());
    });
    m.Str("log_name", "audit");
    const std::string& kind = v1::AuditKind_Name(e.kind());
    m.Str("event_code", kind);
    if (!kind.empty()) rest.clear_kind();
    m.Raw("profiles", security_control && host_profile ? R"(["host","security_control"])"
                      : security_control                 ? R"(["security_control"])"
                      : host_profile                     ? R"(["host"])"
                                                         : "[]");
  });

  // The rule that decided, on the classes that judge operations.
  if (security_control) {
    const v1::PolicyDecision& dec = e.has_decision() ? e.decision() : e.statement().decision();
    if (e.kind() == v1::AUDIT_KIND_APPROVAL) {
      AppendAuthorization(o, e.outcome(), e.approval().rule_id(), e.approval().reason());
    } else if (e.has_decision() || e.statement().has_decision()) {
      AppendAuthorization(o, dec.action(), dec.rule_id(), dec.reason());
    }
  }

  if (class_uid != kClassBaseEvent && actor_from_identity) {  // the base event has no actor
    AppendActor(o, e);
    ClearActorFields(&rest);
  }
  if (class_uid != kClassEntityManagement && class_uid != kClassApplicationLifecycle && class_uid != kClassBaseEvent &&
      class_uid != kClassProcessActivity) {
    AppendDst(o, e, &rest);
  }
  // Process Activity's device (the upstream host) is written by its body.
  if (class_uid != kClassBaseEvent && class_uid != kClassProcessActivity) {
    AppendHost(o, e, src_endpoint, host_profile, &rest);
  }
  o.Members(body);  // the class's own

  // Unmapped: the rest of the Interlock event, as its JSON line (json_writer.h).
  std::string unmapped;
  AppendEventJsonLine(&unmapped, rest);
  unmapped.pop_back();  // '\n'
  o.Object("unmapped", [&](Obj& u) { u.Raw("interlock", unmapped); });
}

std::string EventToOcsfJson(const v1::AuditEvent& event) {
  std::string out;
  out.reserve(2048);
  AppendOcsfJson(&out, event);
  return out;
}

}  // namespace interlock::audit
