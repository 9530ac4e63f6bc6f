// interlock status / teardown.
#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "tools/interlock/cli.h"
#include "userspace/bpf/datapath.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/printable.h"
#include "userspace/control/client.h"

namespace interlock::cli {

namespace {

int Status(const Globals& g) {
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  v1::ControlRequest req;
  req.mutable_status();
  auto resp = control::CallControl(cfg->control_socket, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("status: ", resp.status().message()));
  const v1::StatusResponse& s = resp->status();
  if (g.json) {
    std::printf("%s\n", ToJson(s).c_str());
    return 0;
  }
  std::printf("interlockd %s  pid %u  relay %s\n", s.version().c_str(), s.pid(), s.relay_mode().c_str());
  std::printf("listener    %s:%u%s\n", s.listener_v4().address().c_str(), s.listener_v4().port(),
              s.has_listener_v6() ? absl::StrCat("  [", s.listener_v6().address(), "]:",
                                                 s.listener_v6().port()).c_str() : "");
  std::printf("pins        %s\ncgroup root %s\nattached at %s\n", s.pin_path().c_str(),
              s.cgroup_root().c_str(), s.attach_cgroup().c_str());
  std::printf("sessions    %u active, %llu total; %llu connects denied\n", s.active_sessions(),
              static_cast<unsigned long long>(s.total_sessions()),
              static_cast<unsigned long long>(s.denied_connects()));
  if (s.sessions_by_protocol_size() > 0) {
    std::string by;
    for (const auto& [protocol, n] : s.sessions_by_protocol()) absl::StrAppend(&by, " ", protocol, " ", n);
    std::printf("            live by protocol:%s\n", common::Visible(by).c_str());
  }
  const v1::RecordingsStatus& rs = s.recordings();
  std::printf("recordings  %llu files, %llu MiB in %s; %llu MiB free (floor %llu MiB); %llu deleted by "
              "retention, %llu sessions refused for disk\n",
              static_cast<unsigned long long>(rs.files()), static_cast<unsigned long long>(rs.bytes() >> 20),
              common::Visible(rs.dir()).c_str(), static_cast<unsigned long long>(rs.free_bytes() >> 20),
              static_cast<unsigned long long>(rs.min_free_bytes() >> 20),
              static_cast<unsigned long long>(rs.deleted()), static_cast<unsigned long long>(rs.refused_disk_full()));
  std::printf("            %llu made ahead of time, %llu created at session start%s%s\n",
              static_cast<unsigned long long>(rs.spare_files_taken()),
              static_cast<unsigned long long>(rs.spare_files_missed()), rs.spare_files_error().empty() ? "" : "; ",
              common::Visible(rs.spare_files_error()).c_str());
  std::printf("kernel      %llu redirected, %llu denied, %llu messages spliced, %llu events dropped; "
              "%llu splices moved to TCP (agent %s)\n",
              static_cast<unsigned long long>(s.kernel_redirected()),
              static_cast<unsigned long long>(s.kernel_denied()),
              static_cast<unsigned long long>(s.spliced_messages()),
              static_cast<unsigned long long>(s.events_dropped()),
              static_cast<unsigned long long>(s.splice_fallbacks()),
              s.splice_bounded() ? "queue bounded at 1 MiB" : "queue unbounded: kernel < 6.3");
  std::printf("resources:\n");
  for (const auto& r : s.resources()) std::printf("  %s\n", r.c_str());
  std::printf("workloads:\n");
  for (const auto& w : s.workloads()) {
    std::string by = w.selector() == "cgroup" || w.selector() == "run" || w.selector().empty()
                         ? ""
                         : absl::StrCat(w.cgroup_path().empty() ? "" : "  ", w.selector());
    std::printf("  %-20s %s%s%s%s\n", common::Visible(w.name()).c_str(),
                common::Visible(w.cgroup_path()).c_str(), common::Visible(by).c_str(),
                w.default_deny() ? "  default-deny" : "", w.ephemeral() ? "  (run)" : "");
  }
  if (!s.approval_store().empty()) {
    std::printf("approvals   %u held here; instance %s; store %s\n", s.held_approvals(),
                common::Visible(s.instance_name()).c_str(), common::Visible(s.approval_store()).c_str());
  }
  if (s.audit_sinks_size() > 0) std::printf("audit sinks:\n");
  for (const auto& a : s.audit_sinks()) {
    std::printf("  %-20s %s\n    queued %llu, spooled %llu (%llu bytes), sent %llu, failed %llu, dropped %llu, "
                "retries %llu%s\n",
                common::Visible(a.name()).c_str(), common::Visible(a.destination()).c_str(),
                static_cast<unsigned long long>(a.queued_events()),
                static_cast<unsigned long long>(a.spooled_events()),
                static_cast<unsigned long long>(a.spooled_bytes()),
                static_cast<unsigned long long>(a.sent_events()),
                static_cast<unsigned long long>(a.failed_events()),
                static_cast<unsigned long long>(a.dropped_events()),
                static_cast<unsigned long long>(a.retries()), a.backing_off() ? ", backing off" : "");
    if (!a.last_error().empty()) std::printf("    last error: %s\n", common::Visible(a.last_error()).c_str());
  }
  return 0;
}

// Moves every process of `dir` (and below) to `dest`, then removes the directories,
// deepest first. Returns how many processes were moved.
int RemoveCgroupTree(const std::string& dir, const std::string& dest) {
  int moved = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (e->d_type == DT_DIR && n != "." && n != "..") children.push_back(absl::StrCat(dir, "/", n));
  }
  ::closedir(d);
  for (const std::string& c : children) moved += RemoveCgroupTree(c, dest);
  if (auto pids = CgroupProcs(dir); pids.ok()) {
    for (pid_t p : *pids) {
      if (MoveToCgroup(dest, p).ok()) ++moved;
    }
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    std::fprintf(stderr, "interlock: teardown: rmdir %s: %s\n", dir.c_str(), std::strerror(errno));
  }
  return moved;
}

struct EnrollOptions {
  std::string unit, slice, user, group, cgroup, name;
  bool default_deny = false;
};

int Enroll(const Globals& g, const EnrollOptions& o) {
  v1::ControlRequest req;
  v1::Enrollment* e = req.mutable_enroll_workload()->mutable_enrollment();
  const int given = !o.unit.empty() + !o.slice.empty() + !o.user.empty() + !o.group.empty() +
                    !o.cgroup.empty();
  if (given != 1) {
    return Fail(2, "enroll: give exactly one of --unit, --slice, --user, --group, --cgroup");
  }
  if (!o.slice.empty() && !absl::EndsWith(o.slice, ".slice")) {
    return Fail(2, absl::StrCat("enroll: --slice ", o.slice, " is not a slice (name.slice)"));
  }
  e->set_unit(!o.unit.empty() ? o.unit : o.slice);
  e->set_user(o.user);
  e->set_group(o.group);
  e->set_cgroup_path(o.cgroup);
  e->set_name(o.name);
  e->set_default_deny(o.default_deny);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("enroll: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("enroll: ", resp->error()));
  if (g.json) {
    std::printf("%s\n", ToJson(resp->enroll_workload()).c_str());
    return 0;
  }
  for (const auto& w : resp->enroll_workload().workloads()) {
    std::printf("enrolled %s: %s%s%s\n", common::Visible(w.name()).c_str(),
                common::Visible(w.selector()).c_str(),
                w.cgroup_path().empty() ? "" : absl::StrCat(" at ", common::Visible(w.cgroup_path())).c_str(),
                w.default_deny() ? ", default-deny" : "");
  }
  return 0;
}

int Unenroll(const Globals& g, const std::string& name) {
  v1::ControlRequest req;
  req.mutable_unenroll_workload()->set_name(name);
  auto resp = Call(g, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("unenroll: ", resp.status().message()));
  if (resp->error_code() != 0) return Fail(1, absl::StrCat("unenroll: ", resp->error()));
  std::printf("unenrolled %s\n", common::Visible(name).c_str());
  return 0;
}

int Upgrade(const Globals& g) {
  v1::ControlRequest req;
  req.mutable_upgrade();
  auto resp = Call(g, req);
  if (!resp.ok()) {
    // 3: the new interlockd was started and failed (UNAVAILABLE from the daemon; the old
    // one keeps serving); 1: no upgrade was possible (not running, not supported, refused).
    const bool started = resp.status().code() == absl::StatusCode::kUnavailable &&
                         absl::StrContains(resp.status().message(), "keeps serving");
    return Fail(started ? 3 : 1, absl::StrCat("upgrade: ", resp.status().message()));
  }
  const v1::UpgradeResponse& u = resp->upgrade();
  if (g.json) {
    std::printf("%s\n", ToJson(u).c_str());
    return 0;
  }
  std::printf("interlockd pid %u (%s) serves now; pid %u drains %u sessions, then exits\n", u.new_pid(),
              common::Visible(u.binary()).c_str(), u.old_pid(), u.draining_sessions());
  return 0;
}

int Teardown(const Globals& g) {
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  v1::ControlRequest req;
  req.mutable_status();
  if (control::CallControl(cfg->control_socket, req).ok()) {
    return Fail(1, "teardown: interlockd is running; stop it first");
  }
  absl::Status st = bpf::Datapath::Teardown(cfg->pin_path);
  if (!st.ok()) return Fail(1, absl::StrCat("teardown: ", st.message()));
  std::printf("removed pins under %s\n", cfg->pin_path.c_str());
  auto mount = FindCgroup2Mount();
  if (!mount.ok()) return Fail(1, absl::StrCat("teardown: ", mount.status().message()));
  std::string root = CgroupDir(*mount, cfg->cgroup_root);
  if (::access(root.c_str(), F_OK) == 0) {
    int moved = RemoveCgroupTree(root, *mount);
    std::printf("removed cgroup %s%s\n", root.c_str(),
                moved > 0 ? absl::StrCat(" (moved ", moved, " processes to the root cgroup)").c_str() : "");
  }
  return 0;
}

}  // namespace

void AddAdminCommands(CLI::App& root, Globals& g, Commands* commands) {
  CLI::App* status = root.add_subcommand("status", "interlockd state, enrollments");
  AddJsonFlag(status, g);
  status->footer(
      "Shows interlockd's listener, relay mode, protected resources, enrolled workloads\n"
      "and session counters. Exit 1 when interlockd is not running.");
  commands->push_back({status, [&g] { return Status(g); }});

  auto enroll = std::make_shared<EnrollOptions>();
  CLI::App* enroll_cmd = root.add_subcommand("enroll", "enforce a unit, slice, user or cgroup");
  enroll_cmd->add_option("--unit", enroll->unit, "a systemd unit by name (x.service, x.scope)")
      ->option_text("UNIT");
  enroll_cmd->add_option("--slice", enroll->slice, "a slice: every unit below it, by its own name")
      ->option_text("SLICE");
  enroll_cmd->add_option("--user", enroll->user, "every process of this user (name or uid)")
      ->option_text("USER");
  enroll_cmd->add_option("--group", enroll->group, "every process with this primary group")
      ->option_text("GROUP");
  enroll_cmd->add_option("--cgroup", enroll->cgroup, "a cgroup path below the cgroup2 mount")
      ->option_text("PATH");
  enroll_cmd->add_option("--as", enroll->name, "the workload name (default: from the unit or user)")
      ->option_text("NAME");
  enroll_cmd->add_flag("--default-deny", enroll->default_deny,
                       "refuse connects to destinations that are not protected resources");
  AddJsonFlag(enroll_cmd, g);
  enroll_cmd->footer(
      "Enforces what already runs, now and after restarts of interlockd and of the unit:\n"
      "the enrollment is kept in the state dir beside the configuration's (which it may\n"
      "not contradict) and audited. Exactly one of --unit, --slice, --user, --group,\n"
      "--cgroup. Root only.");
  commands->push_back({enroll_cmd, [&g, enroll] { return Enroll(g, *enroll); }});

  auto unenroll_name = std::make_shared<std::string>();
  CLI::App* unenroll = root.add_subcommand("unenroll", "end an enrollment made with enroll");
  unenroll->add_option("NAME", *unenroll_name, "the workload name")->required();
  unenroll->footer(
      "Ends the enrollment NAME made with `interlock enroll`: its processes are no longer\n"
      "enforced. Enrollments of the configuration file are changed there. Root only.");
  commands->push_back({unenroll, [&g, unenroll_name] { return Unenroll(g, *unenroll_name); }});

  CLI::App* upgrade = root.add_subcommand("upgrade", "start the interlockd on disk, keeping sessions");
  AddJsonFlag(upgrade, g);
  upgrade->footer(
      "A live upgrade (also SIGUSR2 to interlockd): the running interlockd starts the\n"
      "interlockd program now on disk with the same arguments and hands it its listening\n"
      "sockets. Enforcement never stops and no connect is refused: once the new process\n"
      "serves, the old one stops accepting, lets its live sessions finish (at most\n"
      "timeouts.drain_ms) and exits. If the new process fails to start, the old one keeps\n"
      "serving and this exits 3 with the reason (1: no upgrade was possible, e.g. interlockd\n"
      "is not running). Both outcomes are audited. Root only.");
  commands->push_back({upgrade, [&g] { return Upgrade(g); }});

  CLI::App* teardown =
      root.add_subcommand("teardown", "remove pins and cgroups (interlockd stopped)");
  teardown->footer(
      "Removes everything interlockd left in the kernel: the pinned eBPF links and maps\n"
      "(enforcement stops) and interlock's cgroups (remaining processes are moved to the\n"
      "root cgroup). Refuses while interlockd is running: stop it first.");
  commands->push_back({teardown, [&g] { return Teardown(g); }});
}

}  // namespace interlock::cli
