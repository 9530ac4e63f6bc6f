// Engine, part: the control API — status, enrollment, approvals and grants, for callers
// outside every enrolled cgroup.
#include "userspace/daemon/engine.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/auth/jwt/oidc_verifier.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/net/socket.h"
#include "userspace/proxy/core/tcp_protocol.h"
#include "userspace/record/recorder.h"
#include "userspace/record/sealed_box.h"
#include "userspace/daemon/engine_internal.h"
#include "userspace/common/version.h"

namespace interlock::daemon {

using namespace engine_internal;  // NOLINT: the engine's private helpers

v1::StatusResponse Engine::Status() {
  v1::StatusResponse s;
  s.set_version(InterlockVersion());
  s.set_pid(static_cast<uint32_t>(::getpid()));
  s.set_started_unix_nanos(absl::ToUnixNanos(started_));
  s.set_relay_mode(config_.relay_mode == config::RelayMode::kPlain ? "plain" : "sockmap");
  s.mutable_listener_v4()->set_address(config_.listener.address_v4.text);
  s.mutable_listener_v4()->set_port(config_.listener.port);
  if (config_.listener.address_v6.has_value()) {
    s.mutable_listener_v6()->set_address(config_.listener.address_v6->text);
    s.mutable_listener_v6()->set_port(config_.listener.port);
  }
  s.set_active_sessions(static_cast<uint32_t>(sessions_.size()));
  s.set_total_sessions(total_sessions_);
  s.set_denied_connects(denied_connects_);
  for (const auto& r : config_.resources) {
    s.add_resources(absl::StrCat(r.name, "  ", config::FormatIpPrefix(r.prefix),
                                 r.port == 0 ? std::string(" any port") : absl::StrCat(" port ", r.port),
                                 r.unix_path.empty() ? "" : absl::StrCat(", unix ", r.unix_path)));
  }
  absl::flat_hash_set<std::string> units_seen;
  for (const auto& [id, w] : workloads_) {
    v1::EnrolledWorkload* out = s.add_workloads();
    out->set_name(w.name);
    out->set_cgroup_path(w.cgroup_path);
    out->set_cgroup_id(w.cgroup_id);
    out->set_default_deny(w.default_deny);
    out->set_ephemeral(w.ephemeral);
    out->set_token_file(w.token_file);
    out->set_selector(w.ephemeral ? "run" : w.unit.empty() ? "cgroup" : absl::StrCat("unit ", w.unit));
    units_seen.insert(w.unit);
  }
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    using Kind = config::EnrollmentConfig::Kind;
    if (e.kind == Kind::kCgroupPath || (e.kind == Kind::kUnit && units_seen.contains(e.unit))) {
      continue;
    }
    v1::EnrolledWorkload* out = s.add_workloads();
    out->set_name(e.name);
    out->set_default_deny(e.default_deny);
    out->set_token_file(e.token_file);
    if (e.kind == Kind::kUnit) {
      out->set_selector(absl::StrCat("unit ", e.unit, " (no cgroup now)"));
    } else {
      const bool user = e.kind == Kind::kUser;
      out->set_selector(absl::StrCat(user ? "user " : "group ", e.name, " (", user ? "uid " : "gid ",
                                     e.id, ")"));
    }
  }
  if (auto stats = datapath_->ReadStats(); stats.ok()) {
    s.set_kernel_redirected(stats->redirected);
    s.set_kernel_denied(stats->denied);
    s.set_spliced_messages(stats->spliced_msgs);
    s.set_events_dropped(stats->events_dropped);
    s.set_splice_fallbacks(stats->splice_fallbacks);
  }
  s.set_splice_bounded(datapath_->splice_bounded());
  s.set_pin_path(config_.pin_path);
  s.set_cgroup_root(cgroup_root_dir_);
  s.set_attach_cgroup(attach_dir_);
  for (const audit::sinks::RemoteSink* sink : audit_sinks_) audit::sinks::FillStatus(*sink, s.add_audit_sinks());
  if (approvals_ != nullptr) {
    s.set_approval_store(approvals_->DescribeStore());
    s.set_instance_name(approvals_->instance_name());
    s.set_held_approvals(static_cast<uint32_t>(approvals_->pending()));
  }
  for (const auto& [relay, session] : sessions_) {
    ++(*s.mutable_sessions_by_protocol())[session->protocol];
    ++(*s.mutable_sessions_by_resource())[session->resource->name];
  }
  for (const auto& [resource, n] : sessions_total_by_resource_) (*s.mutable_sessions_total_by_resource())[resource] = n;
  for (const auto& [key, n] : audit_->counts()) {
    v1::AuditEventCount* c = s.add_audit_events();
    c->set_kind(v1::AuditKind_Name(static_cast<v1::AuditKind>(key.first)));
    c->set_outcome(key.second);
    c->set_count(n);
  }
  s.set_audit_errors(audit_->errors());
  RecordingsStatus(&s);
  return s;
}

v1::ControlResponse Engine::HandleControl(const v1::ControlRequest& req,
                                          const control::Caller& caller) {
  v1::ControlResponse resp;
  auto fail = [&resp](const absl::Status& st) {
    resp.set_error_code(static_cast<int>(st.code()));
    resp.set_error(std::string(st.message()));
  };
  switch (req.request_case()) {
    case v1::ControlRequest::kStatus:
      *resp.mutable_status() = Status();
      break;
    case v1::ControlRequest::kUpgrade: {
      if (caller.cred.uid != 0) {
        fail(absl::PermissionDeniedError("upgrade: root only"));
        break;
      }
      auto r = Upgrade("control");
      if (r.ok()) {
        *resp.mutable_upgrade() = *r;
      } else {
        fail(r.status());
      }
      break;
    }
    case v1::ControlRequest::kEnroll: {
      auto r = Enroll(req.enroll().name(), req.enroll().default_deny(), req.enroll().token_file());
      if (r.ok()) {
        *resp.mutable_enroll() = *r;
      } else {
        fail(r.status());
      }
      break;
    }
    case v1::ControlRequest::kUnenroll: {
      absl::Status st = Unenroll(req.unenroll().cgroup_id());
      if (st.ok()) {
        resp.mutable_unenroll();
      } else {
        fail(st);
      }
      break;
    }
    case v1::ControlRequest::kListSessions: {
      auto* out = resp.mutable_list_sessions();
      for (const auto& [relay, s] : sessions_) {
        v1::LiveSession* ls = out->add_sessions();
        ls->set_session_id(s->id);
        *ls->mutable_identity() = s->identity;
        ls->set_resource(s->resource->name);
        *ls->mutable_original_destination() = s->original_destination;
        ls->set_started_unix_nanos(absl::ToUnixNanos(s->started));
        ls->set_bytes_to_upstream(relay->stats().bytes_to_upstream);
        ls->set_bytes_to_agent(relay->stats().bytes_to_agent);
      }
      break;
    }
    case v1::ControlRequest::kEnrollWorkload:
    case v1::ControlRequest::kUnenrollWorkload: {
      // Enrollments are enforcement itself: root's to change, not an approver's.
      const bool enroll = req.request_case() == v1::ControlRequest::kEnrollWorkload;
      if (caller.cred.uid != 0) {
        fail(absl::PermissionDeniedError(
            absl::StrCat(enroll ? "enroll" : "unenroll", ": only root changes enrollments")));
      } else if (enroll) {
        auto r = EnrollWorkload(req.enroll_workload().enrollment(), caller);
        if (r.ok()) {
          *resp.mutable_enroll_workload() = *std::move(r);
        } else {
          fail(r.status());
        }
      } else if (absl::Status st = UnenrollWorkload(req.unenroll_workload().name(), caller); st.ok()) {
        resp.mutable_unenroll_workload();
      } else {
        fail(st);
      }
      break;
    }
    case v1::ControlRequest::kListApprovals:
    case v1::ControlRequest::kDecideApproval:
    case v1::ControlRequest::kCreateGrant:
    case v1::ControlRequest::kListGrants:
    case v1::ControlRequest::kRevokeGrant:
    case v1::ControlRequest::kReloadPolicy:
      return HandleApprovals(req, caller);
    default:
      fail(absl::InvalidArgumentError("control: unknown request"));
  }
  return resp;
}

v1::Approver Engine::ApproverOf(const control::Caller& caller) const {
  v1::Approver a;
  a.set_uid(caller.cred.uid);
  a.set_pid(static_cast<uint32_t>(caller.cred.pid));
  a.set_cgroup_path(caller.cgroup_path);
  struct stat st{};
  if (::stat(absl::StrCat(cgroup_mount_, caller.cgroup_path).c_str(), &st) == 0) a.set_cgroup_id(st.st_ino);
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(caller.cred.uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) a.set_user(pw.pw_name);
  return a;
}

namespace {

// Every uid `pid` holds — real, effective, saved and filesystem (the "Uid:" line of
// /proc/PID/status) — added to `out`; nothing when it is gone. All four: a process that
// can act as a uid (a setuid agent, one that dropped only its effective uid) runs as it.
void AddUidsOf(const std::string& pid, std::set<uint32_t>& out) {
  auto status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, "Uid:")) continue;
    for (absl::string_view f : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      uint32_t uid = 0;
      if (absl::SimpleAtoi(f, &uid)) out.insert(uid);
    }
    return;
  }
}

}  // namespace

GrantSubject Engine::GrantSubjectOf(const std::string& workload) const {
  GrantSubject s;
  for (const auto& [id, w] : workloads_) {
    if (w.name != workload) continue;
    s.cgroup_paths.push_back(w.cgroup_path);
    // Every process in the enrollment's cgroup subtree (its own cgroup.procs included):
    // the uids the agent runs as now.
    for (pid_t pid : CgroupTreeProcs(w.cgroup_dir)) AddUidsOf(std::to_string(pid), s.uids);
  }
  // A user enrolled as this workload is the uid it runs as.
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    if (e.name == workload && e.kind == config::EnrollmentConfig::Kind::kUser) s.uids.insert(e.id);
  }
  // And the uids its sessions were attested with (a session can outlive its processes'
  // uid changes; the kernel saw these at connect).
  for (const auto& [relay, session] : sessions_) {
    if (session->identity.workload() == workload) s.uids.insert(session->identity.uid());
  }
  return s;
}

v1::ControlResponse Engine::HandleApprovals(const v1::ControlRequest& req, const control::Caller& caller) {
  v1::ControlResponse resp;
  auto fail = [&resp](const absl::Status& st) {
    resp.set_error_code(static_cast<int>(st.code()));
    resp.set_error(std::string(st.message()));
  };
  v1::Approver who = ApproverOf(caller);
  switch (req.request_case()) {
    case v1::ControlRequest::kListApprovals: {
      auto r = approvals_->List(req.list_approvals().all(), static_cast<int>(req.list_approvals().limit()));
      if (!r.ok()) return fail(r.status()), resp;
      for (auto& a : *r) *resp.mutable_list_approvals()->add_requests() = std::move(a);
      break;
    }
    case v1::ControlRequest::kDecideApproval: {
      const auto& d = req.decide_approval();
      auto r = approvals_->Decide(d.id(), d.approve(), who, d.reason(), absl::Seconds(d.window_s()));
      if (!r.ok()) return fail(r.status()), resp;
      *resp.mutable_decide_approval()->mutable_request() = *r;
      break;
    }
    case v1::ControlRequest::kCreateGrant: {
      const auto& g = req.create_grant();
      bool known = false;
      for (const auto& r : config_.resources) known |= r.name == g.resource();
      if (!known) return fail(absl::NotFoundError(absl::StrCat("no resource named \"", g.resource(), "\""))), resp;
      auto r = approvals_->CreateGrant(g.workload(), g.resource(), absl::Seconds(g.duration_s()), g.reason(), who,
                                       GrantSubjectOf(g.workload()));
      if (!r.ok()) return fail(r.status()), resp;
      *resp.mutable_create_grant()->mutable_grant() = *r;
      break;
    }
    case v1::ControlRequest::kListGrants: {
      auto r = approvals_->ListGrants(req.list_grants().all());
      if (!r.ok()) return fail(r.status()), resp;
      for (auto& g : *r) *resp.mutable_list_grants()->add_grants() = std::move(g);
      break;
    }
    case v1::ControlRequest::kRevokeGrant: {
      auto r = approvals_->RevokeGrant(req.revoke_grant().id(), who);
      if (!r.ok()) return fail(r.status()), resp;
      *resp.mutable_revoke_grant()->mutable_grant() = *r;
      break;
    }
    case v1::ControlRequest::kReloadPolicy: {
      if (policy_ != nullptr) {
        absl::Status st = policy_->Reload("control");
        if (!st.ok()) return fail(st), resp;
        resp.mutable_reload_policy()->set_rules(policy_->current().policy().rules_size());
        resp.mutable_reload_policy()->set_policy_file(policy_->path());
      }
      if (absl::Status st = ReloadConfig("control", resp.mutable_reload_policy()); !st.ok()) {
        return fail(st), resp;
      }
      break;
    }
    default:
      fail(absl::InvalidArgumentError("control: unknown request"));
  }
  return resp;
}

void Engine::OnGrantEnded(const v1::Grant& grant, const std::string& why) {
  bool after_statement = policy_ != nullptr &&
                         policy_->current().ForResource(grant.resource()).grant_expiry_after_statement();
  std::vector<proxy::ProxySession*> affected;
  for (const auto& [relay, s] : sessions_) {
    if (!relay->grant_id().empty() && relay->grant_id() == grant.id()) affected.push_back(relay);
  }
  for (proxy::ProxySession* relay : affected) relay->EndForGrant(why, after_statement);
}

}  // namespace interlock::daemon
