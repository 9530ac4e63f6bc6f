// interlock approvals / approve / deny / grant / grants / revoke / reload: the approver's
// side of review holds and just-in-time grants. The approver is whoever runs the command,
// as the control socket's peer credentials tell interlockd (never a process inside an
// enrolled workload, never the requester).
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tools/interlock/cli.h"
#include "userspace/common/printable.h"
#include "userspace/control/client.h"

namespace interlock::cli {

namespace {

std::string Time(int64_t us) {
  if (us == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

std::string StateName(v1::ApprovalState s) {
  switch (s) {
    case v1::APPROVAL_STATE_PENDING: return "pending";
    case v1::APPROVAL_STATE_APPROVED: return "approved";
    case v1::APPROVAL_STATE_DENIED: return "denied";
    case v1::APPROVAL_STATE_TIMED_OUT: return "timed_out";
    case v1::APPROVAL_STATE_EXPIRED: return "expired";
    default: return "?";
  }
}

// "15m", "90s", "2h", "1d" or plain seconds.
std::optional<uint32_t> ParseDurationSeconds(const std::string& s) {
  absl::Duration d;
  uint32_t plain = 0;
  if (absl::SimpleAtoi(s, &plain)) return plain;
  std::string v = s;
  if (!v.empty() && v.back() == 'd') {
    uint32_t days = 0;
    if (!absl::SimpleAtoi(v.substr(0, v.size() - 1), &days)) return std::nullopt;
    return days * 86400;
  }
  if (!absl::ParseDuration(v, &d) || d < absl::ZeroDuration()) return std::nullopt;
  return static_cast<uint32_t>(absl::ToInt64Seconds(d));
}

// Every field an agent, a token or an approver wrote is shown escaped (common::Visible): a
// statement or a process name must not drive the approver's terminal.
void PrintRequest(const v1::ApprovalRequest& r) {
  using common::Visible;
  std::printf("%s  %s\n", Visible(r.id()).c_str(), StateName(r.state()).c_str());
  std::printf("  requested  %s UTC by workload %s (uid %u, pid %u, %s)%s%s\n", Time(r.created_us()).c_str(),
              Visible(r.requester().workload()).c_str(), r.requester().uid(), r.requester().pid(),
              Visible(r.requester().exe().empty() ? r.requester().comm() : r.requester().exe()).c_str(),
              r.token_subject().empty() ? "" : absl::StrCat(", token ", Visible(r.token_subject())).c_str(),
              r.host().empty() ? "" : absl::StrCat(" on ", Visible(r.host())).c_str());
  const bool sql = r.protocol().empty() || r.protocol() == "postgres";  // "": older requests
  if (sql) {
    std::printf("  resource   %s (database %s as %s)\n", Visible(r.resource()).c_str(), Visible(r.database()).c_str(),
                Visible(r.db_user()).c_str());
  } else {
    std::printf("  resource   %s (%s)\n", Visible(r.resource()).c_str(), Visible(r.protocol()).c_str());
  }
  std::printf("  rule       %s%s\n", r.rule_id().empty() ? "(resource default)" : Visible(r.rule_id()).c_str(),
              r.reason().empty() ? "" : absl::StrCat(": ", Visible(r.reason())).c_str());
  std::printf("  what       %s\n", Visible(r.classification()).c_str());
  std::printf("  %-9s  %s\n", sql ? "statement" : "request", Visible(r.statement()).c_str());
  if (!r.parameters_sha256().empty()) std::printf("  params     sha256 %s\n", Visible(r.parameters_sha256()).c_str());
  for (int i = 0; i < r.parameters_size(); ++i) {
    std::printf("  $%-9d %s\n", i + 1, Visible(r.parameters(i)).c_str());
  }
  if (r.state() == v1::APPROVAL_STATE_PENDING) {
    std::printf("  deadline   %s UTC\n", Time(r.deadline_us()).c_str());
  } else {
    std::printf("  decided    %s UTC%s%s\n", Time(r.decided_us()).c_str(),
                r.approver().user().empty() && r.approver().uid() == 0 && r.approver().pid() == 0
                    ? ""
                    : absl::StrCat(" by ", Visible(r.approver().user()), " (uid ", r.approver().uid(), ")",
                                   r.approver().host().empty() ? "" : absl::StrCat(" on ", Visible(r.approver().host())))
                          .c_str(),
                r.decision_reason().empty() ? "" : absl::StrCat(": ", Visible(r.decision_reason())).c_str());
    if (r.window_until_us() != 0) std::printf("  window     until %s UTC\n", Time(r.window_until_us()).c_str());
  }
}

void PrintGrant(const v1::Grant& gr) {
  using common::Visible;
  std::printf("%s  workload %s  resource %s  until %s UTC%s\n  reason: %s (granted by %s uid %u)\n",
              Visible(gr.id()).c_str(), Visible(gr.workload()).c_str(), Visible(gr.resource()).c_str(),
              Time(gr.expires_us()).c_str(),
              gr.revoked_us() != 0 ? absl::StrCat("  REVOKED ", Time(gr.revoked_us())).c_str() : "",
              Visible(gr.reason()).c_str(), Visible(gr.granted_by().user()).c_str(), gr.granted_by().uid());
}

int Approvals(const Globals& g, bool all) {
  v1::ControlRequest req;
  req.mutable_list_approvals()->set_all(all);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("approvals: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("approvals: ", resp->error()));
  for (const auto& r : resp->list_approvals().requests()) {
    if (g.json) {
      std::printf("%s\n", ToJson(r).c_str());
    } else {
      PrintRequest(r);
      std::puts("");
    }
  }
  if (!g.json && resp->list_approvals().requests().empty()) std::puts(all ? "no requests" : "nothing pending");
  return 0;
}

struct DecideOptions {
  std::string id;
  std::string reason;
  std::string window;               // --for
  const CLI::Option* window_flag = nullptr;  // --for given or not
};

int Decide(const Globals& g, const DecideOptions& o, bool approve) {
  v1::ControlRequest req;
  auto* d = req.mutable_decide_approval();
  d->set_id(o.id);
  d->set_approve(approve);
  d->set_reason(o.reason);
  if (o.window_flag != nullptr && o.window_flag->count() > 0) {
    auto secs = ParseDurationSeconds(o.window);
    if (!secs) return Fail(2, absl::StrCat("--for: cannot read \"", o.window, "\" (use 90s, 15m, 2h, 1d)"));
    d->set_window_s(*secs);
  }
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat(approve ? "approve: " : "deny: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat(approve ? "approve: " : "deny: ", resp->error()));
  if (g.json) {
    std::printf("%s\n", ToJson(resp->decide_approval().request()).c_str());
  } else {
    PrintRequest(resp->decide_approval().request());
  }
  return 0;
}

struct GrantOptions {
  std::string workload;
  std::string resource;
  std::string duration;
  std::string reason;
};

int Grant(const Globals& g, const GrantOptions& o) {
  auto secs = ParseDurationSeconds(o.duration);
  if (!secs || *secs == 0) {
    return Fail(2, absl::StrCat("--for: cannot read \"", o.duration, "\" (use 90s, 15m, 2h, 1d)"));
  }
  v1::ControlRequest req;
  auto* c = req.mutable_create_grant();
  c->set_workload(o.workload);
  c->set_resource(o.resource);
  c->set_duration_s(*secs);
  c->set_reason(o.reason);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("grant: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("grant: ", resp->error()));
  if (g.json) std::printf("%s\n", ToJson(resp->create_grant().grant()).c_str());
  else PrintGrant(resp->create_grant().grant());
  return 0;
}

int Grants(const Globals& g, bool all) {
  v1::ControlRequest req;
  req.mutable_list_grants()->set_all(all);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("grants: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("grants: ", resp->error()));
  for (const auto& gr : resp->list_grants().grants()) {
    if (g.json) std::printf("%s\n", ToJson(gr).c_str());
    else PrintGrant(gr);
  }
  if (!g.json && resp->list_grants().grants().empty()) std::puts("no grants");
  return 0;
}

int Revoke(const Globals& g, const std::string& id) {
  v1::ControlRequest req;
  req.mutable_revoke_grant()->set_id(id);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("revoke: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("revoke: ", resp->error()));
  if (g.json) std::printf("%s\n", ToJson(resp->revoke_grant().grant()).c_str());
  else PrintGrant(resp->revoke_grant().grant());
  return 0;
}

int Reload(const Globals& g) {
  v1::ControlRequest req;
  req.mutable_reload_policy();
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("reload: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("reload: ", resp->error()));
  const v1::ReloadPolicyResponse& r = resp->reload_policy();
  if (!r.policy_file().empty()) {
    std::printf("policy %s: %u rules in force\n", r.policy_file().c_str(), r.rules());
  }
  if (!r.config_file().empty()) {
    std::printf("configuration %s: %u resources, %u enrollments in force\n", r.config_file().c_str(),
                r.resources(), r.enrollments());
  }
  if (r.applied_size() > 0) {
    std::printf("changed and applied now (live sessions keep the resource they started with): %s\n",
                absl::StrJoin(r.applied(), ", ").c_str());
  }
  for (const std::string& e : r.not_applied()) std::printf("not applied: %s\n", e.c_str());
  if (r.restart_needed_size() > 0) {
    std::printf("changed, applied at the next start of interlockd: %s\n",
                absl::StrJoin(r.restart_needed(), ", ").c_str());
  }
  return 0;
}

constexpr char kDurations[] = "90s, 15m, 2h, 1d or plain seconds";

}  // namespace

void AddApprovalCommands(CLI::App& root, Globals& g, Commands* commands) {
  auto all = std::make_shared<bool>(false);
  CLI::App* approvals = root.add_subcommand("approvals", "statements held for review");
  approvals->add_flag("--all", *all, "also decided ones (latest 100)");
  AddJsonFlag(approvals, g);
  approvals->footer(
      "Statements held for review, with the requesting workload, rule and exact text.\n"
      "--all also shows decided ones (latest 100).");
  commands->push_back({approvals, [&g, all] { return Approvals(g, *all); }});

  auto approve = std::make_shared<DecideOptions>();
  CLI::App* approve_cmd = root.add_subcommand("approve", "release a held statement");
  approve_cmd->add_option("ID", approve->id, "the request (apr-...)")->required();
  approve_cmd->add_option("--reason", approve->reason, "why, for the audit trail")->option_text("TEXT");
  approve->window_flag = approve_cmd->add_option("--for", approve->window, kDurations)->option_text("DURATION");
  AddJsonFlag(approve_cmd, g);
  approve_cmd->footer(
      "Releases the held statement ID: it runs exactly as held and the session carries on.\n"
      "--for 15m also lets statements of the same shape (fingerprint) from the same\n"
      "workload on the same resource through for that long. You must not be the requester.");
  commands->push_back({approve_cmd, [&g, approve] { return Decide(g, *approve, true); }});

  auto deny = std::make_shared<DecideOptions>();
  CLI::App* deny_cmd = root.add_subcommand("deny", "refuse a held statement (42501)");
  deny_cmd->add_option("ID", deny->id, "the request (apr-...)")->required();
  deny_cmd->add_option("--reason", deny->reason, "why, for the agent and the audit trail (required)")
      ->option_text("TEXT")
      ->required();
  AddJsonFlag(deny_cmd, g);
  deny_cmd->footer(
      "Refuses the held statement ID: the agent gets SQLSTATE 42501 with the reason,\n"
      "and its connection stays usable.");
  commands->push_back({deny_cmd, [&g, deny] { return Decide(g, *deny, false); }});

  auto grant = std::make_shared<GrantOptions>();
  CLI::App* grant_cmd = root.add_subcommand("grant", "just-in-time access");
  grant_cmd->add_option("--workload", grant->workload, "the workload (required)")
      ->option_text("NAME")
      ->required();
  grant_cmd->add_option("--resource", grant->resource, "the resource (required)")
      ->option_text("R")
      ->required();
  grant_cmd->add_option("--for", grant->duration, absl::StrCat("how long (required): ", kDurations))
      ->option_text("DURATION")
      ->required();
  grant_cmd->add_option("--reason", grant->reason, "why, for the audit trail (required)")
      ->option_text("TEXT")
      ->required();
  AddJsonFlag(grant_cmd, g);
  grant_cmd->footer(
      "Lets workload NAME open sessions to resource R (a resource whose policy sets\n"
      "require_grant) until the grant expires; its sessions are then closed.");
  commands->push_back({grant_cmd, [&g, grant] { return Grant(g, *grant); }});

  auto grants_all = std::make_shared<bool>(false);
  CLI::App* grants = root.add_subcommand("grants", "active grants");
  grants->add_flag("--all", *grants_all, "also expired and revoked ones");
  AddJsonFlag(grants, g);
  grants->footer("Active just-in-time grants (--all: also expired and revoked ones).");
  commands->push_back({grants, [&g, grants_all] { return Grants(g, *grants_all); }});

  auto revoke_id = std::make_shared<std::string>();
  CLI::App* revoke = root.add_subcommand("revoke", "end a grant now");
  revoke->add_option("ID", *revoke_id, "the grant (grt-...)")->required();
  AddJsonFlag(revoke, g);
  revoke->footer("Ends grant ID now; its sessions are closed as the resource's policy says.");
  commands->push_back({revoke, [&g, revoke_id] { return Revoke(g, *revoke_id); }});

  CLI::App* reload = root.add_subcommand("reload", "re-read the policy and configuration");
  reload->footer(
      "Re-reads the policy file and the configuration file (as SIGHUP does). The policy\n"
      "and the configuration's enrollments apply at once; other changed settings are\n"
      "named and apply at the next start. An invalid file is rejected with file, line\n"
      "and field, and what is in force stays.");
  commands->push_back({reload, [&g] { return Reload(g); }});
}

}  // namespace interlock::cli
