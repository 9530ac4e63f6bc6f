// interlock approvals / approve / deny / grant / grants / revoke / reload: the approver's
// side of review holds and just-in-time grants. The approver is whoever runs the command,
// as the control socket's peer credentials tell interlockd (never a process inside an
// enrolled workload, never the requester).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

// Flags of the form --name VALUE; positional arguments in order.
struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
  bool all = false;
  std::optional<std::string> Get(const std::string& name) const {
    for (const auto& [k, v] : flags) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
};

std::optional<Args> ParseArgs(const std::vector<std::string>& args, std::vector<std::string> valued) {
  Args out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") continue;
    if (a == "--all") {
      out.all = true;
      continue;
    }
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else {
        bool known = false;
        for (const auto& v : valued) known |= v == name;
        if (!known || i + 1 >= args.size()) {
          std::fprintf(stderr, "interlock: unknown or incomplete option %s\n", a.c_str());
          return std::nullopt;
        }
        value = args[++i];
      }
      out.flags.emplace_back(name, value);
      continue;
    }
    out.positional.push_back(a);
  }
  return out;
}

absl::StatusOr<v1::ControlResponse> Call(const Globals& g, const v1::ControlRequest& req) {
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return cfg.status();
  return control::CallControl(cfg->control_socket, req);
}

// Every field an agent, a token or an approver wrote is shown escaped (common::Visible): a
// statement or a process name must not drive the approver's terminal.
void PrintRequest(const v1::ApprovalRequest& r) {
  using common::Visible;
  std::printf("%s  %s\n", Visible(r.id()).c_str(), StateName(r.state()).c_str());
  std::printf("  requested  %s UTC by workload %s (uid %u, pid %u, %s)%s\n", Time(r.created_us()).c_str(),
              Visible(r.requester().workload()).c_str(), r.requester().uid(), r.requester().pid(),
              Visible(r.requester().exe().empty() ? r.requester().comm() : r.requester().exe()).c_str(),
              r.token_subject().empty() ? "" : absl::StrCat(", token ", Visible(r.token_subject())).c_str());
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
                    : absl::StrCat(" by ", Visible(r.approver().user()), " (uid ", r.approver().uid(), ")").c_str(),
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

}  // namespace

int CmdApprovals(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock approvals [--all] [--json]\n\nStatements held for review, with the "
              "requesting workload, rule and exact text.\n--all also shows decided ones (latest 100).");
    return 0;
  }
  auto a = ParseArgs(args, {});
  if (!a) return 2;
  v1::ControlRequest req;
  req.mutable_list_approvals()->set_all(a->all);
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
  if (!g.json && resp->list_approvals().requests().empty()) std::puts(a->all ? "no requests" : "nothing pending");
  return 0;
}

static int Decide(const Globals& g, const std::vector<std::string>& args, bool approve) {
  auto a = ParseArgs(args, {"reason", "for"});
  if (!a) return 2;
  if (a->positional.size() != 1) return Fail(2, approve ? "usage: interlock approve ID [--reason TEXT] [--for 15m]"
                                                        : "usage: interlock deny ID --reason TEXT");
  v1::ControlRequest req;
  auto* d = req.mutable_decide_approval();
  d->set_id(a->positional[0]);
  d->set_approve(approve);
  d->set_reason(a->Get("reason").value_or(""));
  if (auto f = a->Get("for")) {
    auto secs = ParseDurationSeconds(*f);
    if (!secs) return Fail(2, absl::StrCat("--for: cannot read \"", *f, "\" (use 90s, 15m, 2h, 1d)"));
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

int CmdApprove(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock approve ID [--reason TEXT] [--for DURATION]\n\nReleases the held "
              "statement ID: it runs exactly as held and the session carries on.\n--for 15m also lets "
              "statements of the same shape (fingerprint) from the same\nworkload on the same resource "
              "through for that long. You must not be the requester.");
    return 0;
  }
  return Decide(g, args, true);
}

int CmdDeny(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock deny ID --reason TEXT\n\nRefuses the held statement ID: the agent "
              "gets SQLSTATE 42501 with the reason,\nand its connection stays usable.");
    return 0;
  }
  return Decide(g, args, false);
}

int CmdGrant(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock grant --workload NAME --resource R --for DURATION --reason TEXT\n\n"
              "Lets workload NAME open sessions to resource R (a resource whose policy sets\n"
              "require_grant) until the grant expires; its sessions are then closed.");
    return 0;
  }
  auto a = ParseArgs(args, {"workload", "resource", "for", "reason"});
  if (!a) return 2;
  auto w = a->Get("workload"), r = a->Get("resource"), f = a->Get("for"), why = a->Get("reason");
  if (!w || !r || !f || !why) return Fail(2, "grant needs --workload, --resource, --for and --reason");
  auto secs = ParseDurationSeconds(*f);
  if (!secs || *secs == 0) return Fail(2, absl::StrCat("--for: cannot read \"", *f, "\" (use 90s, 15m, 2h, 1d)"));
  v1::ControlRequest req;
  auto* c = req.mutable_create_grant();
  c->set_workload(*w);
  c->set_resource(*r);
  c->set_duration_s(*secs);
  c->set_reason(*why);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("grant: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("grant: ", resp->error()));
  if (g.json) std::printf("%s\n", ToJson(resp->create_grant().grant()).c_str());
  else PrintGrant(resp->create_grant().grant());
  return 0;
}

int CmdGrants(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock grants [--all] [--json]\n\nActive just-in-time grants (--all: also "
              "expired and revoked ones).");
    return 0;
  }
  auto a = ParseArgs(args, {});
  if (!a) return 2;
  v1::ControlRequest req;
  req.mutable_list_grants()->set_all(a->all);
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

int CmdRevoke(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock revoke ID\n\nEnds grant ID now; its sessions are closed as the "
              "resource's policy says.");
    return 0;
  }
  auto a = ParseArgs(args, {});
  if (!a) return 2;
  if (a->positional.size() != 1) return Fail(2, "usage: interlock revoke ID");
  v1::ControlRequest req;
  req.mutable_revoke_grant()->set_id(a->positional[0]);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("revoke: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("revoke: ", resp->error()));
  if (g.json) std::printf("%s\n", ToJson(resp->revoke_grant().grant()).c_str());
  else PrintGrant(resp->revoke_grant().grant());
  return 0;
}

int CmdReload(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock reload\n\nRe-reads the policy file (as SIGHUP does). An invalid "
              "policy is rejected with\nfile, line and field, and the old one stays in force.");
    return 0;
  }
  v1::ControlRequest req;
  req.mutable_reload_policy();
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("reload: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("reload: ", resp->error()));
  std::printf("policy %s: %u rules in force\n", resp->reload_policy().policy_file().c_str(),
              resp->reload_policy().rules());
  return 0;
}

}  // namespace interlock::cli
