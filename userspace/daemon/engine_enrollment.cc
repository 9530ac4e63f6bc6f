// Engine, part: enrollments — the cgroups interlockd governs, restored from the state
// file at start, changed through the control API, and the workload ids the kernel sees.
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
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/auth/jwt/oidc_verifier.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/proc_ids.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/net/socket.h"
#include "userspace/proxy/core/tcp_protocol.h"
#include "userspace/record/recorder.h"
#include "userspace/record/sealed_box.h"
#include "userspace/daemon/engine_internal.h"

namespace interlock::daemon {

using namespace engine_internal;  // NOLINT: the engine's private helpers

absl::Status Engine::PrepareCgroups() {
  INTERLOCK_ASSIGN_OR_RETURN(cgroup_mount_, FindCgroup2Mount());
  cgroup_root_dir_ = CgroupDir(cgroup_mount_, config_.cgroup_root);
  attach_dir_ = config_.attach_cgroup.empty() ? cgroup_mount_
                                              : CgroupDir(cgroup_mount_, config_.attach_cgroup);
  INTERLOCK_RETURN_IF_ERROR(Annotate(MakeCgroupDirs(attach_dir_), "attach_cgroup"));
  // interlockd stays in the cgroup it was started in (its own unit's, under systemd) when
  // the programs see it there: the sockops program must see the engine's accepted
  // sockets to pair them with the agent's. Otherwise, or when that is the hierarchy's
  // root (where a process cannot be told apart from the host), it moves into its own
  // never-enrolled cgroup below cgroup_root.
  INTERLOCK_ASSIGN_OR_RETURN(std::string own, CgroupPathOfPid(::getpid()));
  std::string own_dir = CgroupDir(cgroup_mount_, own);
  const bool seen = attach_dir_ == cgroup_mount_ || absl::StartsWith(own_dir, attach_dir_ + "/");
  if (own == "/" || !seen) {
    own_dir = absl::StrCat(cgroup_root_dir_, "/daemon");
    INTERLOCK_RETURN_IF_ERROR(Annotate(MakeCgroupDirs(own_dir), "cgroup"));
    INTERLOCK_RETURN_IF_ERROR(Annotate(MoveToCgroup(own_dir, 0), "cgroup"));
  }
  INTERLOCK_ASSIGN_OR_RETURN(daemon_cgroup_id_, CgroupIdOfDir(own_dir));
  daemon_cgroup_path_ = CgroupPathRelative(cgroup_mount_, own_dir);
  resolver_ = std::make_unique<identity::IdentityResolver>(cgroup_mount_, attach_dir_, "/proc", &clock_);
  return absl::OkStatus();
}

namespace {

il_enrollment KernelEnrollment(uint32_t workload_id, bool default_deny) {
  return il_enrollment{workload_id, default_deny ? IL_ENROLL_DEFAULT_DENY : 0u};
}

}  // namespace

std::vector<std::pair<const config::EnrollmentConfig*, std::string>> Engine::ConfigCgroupDirs(
    const std::vector<config::EnrollmentConfig>& enrollments) const {
  std::vector<std::pair<const config::EnrollmentConfig*, std::string>> dirs;
  absl::flat_hash_map<std::string, const config::EnrollmentConfig*> units;
  for (const config::EnrollmentConfig& e : enrollments) {
    if (e.kind == config::EnrollmentConfig::Kind::kCgroupPath) {
      dirs.emplace_back(&e, CgroupDir(cgroup_mount_, e.cgroup_path));
    } else if (e.kind == config::EnrollmentConfig::Kind::kUnit) {
      units[e.unit] = &e;
    }
  }
  if (units.empty()) return dirs;
  // The enrollment of a cgroup name: its exact unit, else the first pattern it matches
  // (the kernel's order: enrolled_names, then enrolled_name_patterns).
  const auto enrollment_of = [&](absl::string_view name) -> const config::EnrollmentConfig* {
    if (auto it = units.find(name); it != units.end()) return it->second;
    for (const config::EnrollmentConfig& e : enrollments) {
      if (e.kind == config::EnrollmentConfig::Kind::kUnit && config::UnitMatches(e.unit, name)) {
        return &e;
      }
    }
    return nullptr;
  };
  for (std::string& dir : FindCgroupsMatching(
           attach_dir_, [&](absl::string_view name) { return enrollment_of(name) != nullptr; },
           IL_MAX_CGROUP_DEPTH)) {
    const config::EnrollmentConfig* e = enrollment_of(absl::string_view(dir).substr(dir.rfind('/') + 1));
    dirs.emplace_back(e, std::move(dir));
  }
  return dirs;
}

absl::Status Engine::CheckEnrollmentCgroups(
    const std::vector<config::EnrollmentConfig>& enrollments) const {
  for (const config::EnrollmentConfig& e : enrollments) {
    if (e.kind != config::EnrollmentConfig::Kind::kCgroupPath) continue;
    std::string dir = CgroupDir(cgroup_mount_, e.cgroup_path);
    if (!IsSameOrBelow(dir, attach_dir_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "enrollment ", e.name, ": cgroup ", dir, " is not below ", attach_dir_,
          " where the programs are attached (attach_cgroup)"));
    }
  }
  const std::string own_dir = CgroupDir(cgroup_mount_, daemon_cgroup_path_);
  for (const auto& [e, dir] : ConfigCgroupDirs(enrollments)) {
    if (IsSameOrBelow(own_dir, dir)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "enrollment ", e->name, ": interlockd itself runs in ", own_dir, ", which it would "
          "enroll; run it in its own unit or cgroup"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<config::EnrollmentConfig>> Engine::EnrollmentsWith(
    const v1::Config& base, const google::protobuf::RepeatedPtrField<v1::Enrollment>& runtime,
    const std::string& where) const {
  v1::Config proto = base;
  for (const v1::Enrollment& e : runtime) *proto.add_enrollments() = e;
  INTERLOCK_ASSIGN_OR_RETURN(config::ServiceConfig built,
                             config::BuildServiceConfig(std::move(proto), config::SourceMap(where)));
  INTERLOCK_RETURN_IF_ERROR(CheckEnrollmentCgroups(built.enrollments));
  return std::move(built.enrollments);
}

absl::Status Engine::RestoreEnrollments() {
  std::string path = absl::StrCat(config_.state_dir, "/enrollments.json");
  auto text = ReadFile(path);
  if (text.ok()) {
    if (!google::protobuf::util::JsonStringToMessage(*text, &state_).ok()) {
      INTERLOCK_LOG(kWarning, "ignoring unreadable %s", path);
      state_.Clear();
    }
  }
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetExemptCgroups({daemon_cgroup_id_}));
  // Enrollments made with `interlock enroll` join the configuration's; one that no longer
  // fits it (a name the file took since) stops the start rather than being dropped
  // quietly: less enforcement is never the silent outcome.
  auto all = EnrollmentsWith(config_.proto, state_.runtime_enrollments(), path);
  if (!all.ok()) {
    return Annotate(all.status(),
                    absl::StrCat("runtime enrollments in ", path, " (interlock enroll) with the "
                                 "configuration's; fix the file or the configuration"));
  }
  config_.enrollments = *std::move(all);
  return ApplyEnrollments(/*readopt=*/true);
}

absl::Status Engine::ApplyEnrollments(bool readopt) {
  unit_dirs_scanned_ = -absl::InfiniteDuration();  // the next namespace sync walks afresh
  // The kernel's tables for what is enrolled by name, user and group first: a unit's
  // cgroup created from here on is enrolled by the kernel, so the walk below cannot miss
  // one that appears while it runs.
  std::vector<bpf::PathEnrollment> by_path;
  std::vector<bpf::NameEnrollment> by_name;
  std::vector<bpf::NamePatternEnrollment> by_pattern;
  std::vector<bpf::IdEnrollment> by_id;
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    const il_enrollment k = KernelEnrollment(WorkloadIdFor(e.name), e.default_deny);
    switch (e.kind) {
      case config::EnrollmentConfig::Kind::kCgroupPath:
        by_path.push_back(bpf::PathEnrollment{
            CgroupPathRelative(cgroup_mount_, CgroupDir(cgroup_mount_, e.cgroup_path)), k});
        break;
      case config::EnrollmentConfig::Kind::kUnit:
        if (const size_t star = e.unit.find('*'); star != std::string::npos) {
          by_pattern.push_back(
              bpf::NamePatternEnrollment{e.unit.substr(0, star), e.unit.substr(star + 1), k});
        } else {
          by_name.push_back(bpf::NameEnrollment{e.unit, k});
        }
        break;
      case config::EnrollmentConfig::Kind::kUser:
      case config::EnrollmentConfig::Kind::kGroup:
        by_id.push_back(bpf::IdEnrollment{e.kind == config::EnrollmentConfig::Kind::kUser
                                              ? bpf::IdEnrollment::kUid
                                              : bpf::IdEnrollment::kGid,
                                          e.id, k});
        break;
    }
  }
  INTERLOCK_RETURN_IF_ERROR(CheckEnrollmentCgroups(config_.enrollments));
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetEnrolledPaths(by_path));
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetEnrolledNames(by_name));
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetEnrolledNamePatterns(by_pattern));
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetEnrolledIds(by_id));
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    if (e.kind != config::EnrollmentConfig::Kind::kCgroupPath) continue;
    // A missing path is created here, which enrolls it the way the kernel enrolls a
    // re-created one.
    INTERLOCK_RETURN_IF_ERROR(Annotate(MakeCgroupDirs(CgroupDir(cgroup_mount_, e.cgroup_path)),
                                       absl::StrCat("enrollment ", e.name)));
  }
  const auto config_dirs = ConfigCgroupDirs(config_.enrollments);
  absl::flat_hash_set<uint64_t> config_ids;
  for (const auto& [e, dir] : config_dirs) {
    if (auto id = CgroupIdOfDir(dir); id.ok()) config_ids.insert(*id);
  }

  if (readopt) {
    // What the kernel map holds that neither the configuration nor a live `interlock run`
    // accounts for is dropped. Configured cgroups are kept (the kernel may have enrolled
    // one that was re-created while interlockd was down; it must not be dropped here even
    // for a moment).
    absl::flat_hash_map<uint64_t, v1::EnrolledWorkload> known;
    for (const auto& w : state_.workloads()) known[w.cgroup_id()] = w;
    INTERLOCK_ASSIGN_OR_RETURN(auto in_map, datapath_->ListEnrollments());
    for (const auto& [cgroup_id, enrollment] : in_map) {
      if (config_ids.contains(cgroup_id)) continue;  // enrolled again below
      auto it = known.find(cgroup_id);
      std::string dir = it != known.end() ? CgroupDir(cgroup_mount_, it->second.cgroup_path()) : "";
      auto id_now = dir.empty() ? absl::StatusOr<uint64_t>(absl::NotFoundError("")) : CgroupIdOfDir(dir);
      if (it == known.end() || !it->second.ephemeral() || !id_now.ok() || *id_now != cgroup_id) {
        // A cgroup we cannot name, one that is gone, or one no enrollment covers any
        // more: out of the kernel map.
        (void)datapath_->Unenroll(cgroup_id);
        continue;
      }
      Workload w;
      w.name = it->second.name();
      w.workload_id = enrollment.workload_id;
      w.cgroup_dir = dir;
      w.cgroup_path = it->second.cgroup_path();
      w.cgroup_id = cgroup_id;
      w.default_deny = enrollment.flags & IL_ENROLL_DEFAULT_DENY;
      w.ephemeral = true;
      w.token_file = it->second.token_file();
      if (!w.token_file.empty()) token_bindings_.Bind(w.cgroup_path, w.name, w.token_file);
      resolver_->RememberCgroup(cgroup_id, w.cgroup_path);
      workloads_[cgroup_id] = std::move(w);
    }
  } else {
    // An enrollment that went away: its cgroups leave the kernel map and the table (a
    // process in them is no longer enforced; that is what was asked).
    for (auto it = workloads_.begin(); it != workloads_.end();) {
      if (it->second.ephemeral || config_ids.contains(it->first)) {
        ++it;
        continue;
      }
      (void)datapath_->Unenroll(it->first);
      if (!it->second.token_file.empty()) token_bindings_.Unbind(it->second.cgroup_path);
      workloads_.erase(it++);
    }
  }
  for (const auto& [e, dir] : config_dirs) {
    auto id = CgroupIdOfDir(dir);
    if (!id.ok()) continue;  // a unit's cgroup that went away since the walk
    Workload w;
    w.name = e->name;
    w.workload_id = WorkloadIdFor(e->name);
    w.cgroup_dir = dir;
    w.cgroup_path = CgroupPathRelative(cgroup_mount_, dir);
    w.cgroup_id = *id;
    w.default_deny = e->default_deny;
    w.token_file = e->token_file;
    w.unit = e->unit;
    if (!w.token_file.empty()) token_bindings_.Bind(w.cgroup_path, w.name, w.token_file);
    INTERLOCK_RETURN_IF_ERROR(
        datapath_->Enroll(*id, KernelEnrollment(w.workload_id, w.default_deny)));
    resolver_->RememberCgroup(*id, w.cgroup_path);
    workloads_[*id] = std::move(w);
  }
  return SaveState();
}

absl::StatusOr<v1::EnrollWorkloadResponse> Engine::EnrollWorkload(const v1::Enrollment& enrollment,
                                                                  const control::Caller& caller) {
  if (draining_) return absl::UnavailableError("enroll: interlockd is shutting down");
  google::protobuf::RepeatedPtrField<v1::Enrollment> runtime = state_.runtime_enrollments();
  *runtime.Add() = enrollment;
  INTERLOCK_ASSIGN_OR_RETURN(std::vector<config::EnrollmentConfig> all,
                             EnrollmentsWith(config_.proto, runtime, "enroll"));
  // Built in the order of the file's `enrollments`, this request's after the earlier ones.
  const std::string name = all[config_.proto.enrollments_size() + runtime.size() - 1].name;
  std::vector<config::EnrollmentConfig> old = std::exchange(config_.enrollments, std::move(all));
  *state_.mutable_runtime_enrollments() = std::move(runtime);
  if (absl::Status st = ApplyEnrollments(/*readopt=*/false); !st.ok()) {
    // Back to what was in force, kernel tables included.
    config_.enrollments = std::move(old);
    state_.mutable_runtime_enrollments()->RemoveLast();
    (void)ApplyEnrollments(/*readopt=*/false);
    return st;
  }
  v1::EnrollWorkloadResponse resp;
  const v1::StatusResponse now = Status();
  for (const v1::EnrolledWorkload& w : now.workloads()) {
    if (w.name() == name) *resp.add_workloads() = w;
  }
  AuditRuntimeEnrollment("enrolled", name, resp, caller);
  return resp;
}

absl::Status Engine::UnenrollWorkload(const std::string& name, const control::Caller& caller) {
  auto* runtime = state_.mutable_runtime_enrollments();
  // The names runtime enrollments were given (derived from a unit, a user...): built
  // with the configuration's, as at enroll time, without looking at any cgroup.
  int index = -1;
  {
    v1::Config proto = config_.proto;
    for (const v1::Enrollment& e : *runtime) *proto.add_enrollments() = e;
    auto built = config::BuildServiceConfig(std::move(proto), config::SourceMap("unenroll"));
    const size_t base = static_cast<size_t>(config_.proto.enrollments_size());
    for (int i = 0; built.ok() && i < runtime->size(); ++i) {
      if (base + i < built->enrollments.size() && built->enrollments[base + i].name == name) index = i;
    }
  }
  if (index < 0) {
    for (const config::EnrollmentConfig& e : config_.enrollments) {
      if (e.name == name) {
        return absl::FailedPreconditionError(absl::StrCat(
            "unenroll: ", name, " is enrolled by the configuration file ", config_.file_name,
            "; remove it there"));
      }
    }
    return absl::NotFoundError(absl::StrCat("unenroll: no enrollment named ", name,
                                            " made with `interlock enroll`"));
  }
  v1::EnrollWorkloadResponse before;
  const v1::StatusResponse now = Status();
  for (const v1::EnrolledWorkload& w : now.workloads()) {
    if (w.name() == name) *before.add_workloads() = w;
  }
  runtime->DeleteSubrange(index, 1);
  std::vector<config::EnrollmentConfig> kept;
  for (config::EnrollmentConfig& e : config_.enrollments) {
    if (e.name != name) kept.push_back(std::move(e));
  }
  config_.enrollments = std::move(kept);
  INTERLOCK_RETURN_IF_ERROR(ApplyEnrollments(/*readopt=*/false));
  AuditRuntimeEnrollment("unenrolled", name, before, caller);
  return absl::OkStatus();
}

void Engine::AuditRuntimeEnrollment(const std::string& outcome, const std::string& name,
                                    const v1::EnrollWorkloadResponse& what,
                                    const control::Caller& caller) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_ENROLLMENT);
  ev.set_outcome(outcome);
  ev.mutable_identity()->set_workload(name);
  std::vector<std::string> parts;
  for (const v1::EnrolledWorkload& w : what.workloads()) {
    parts.push_back(w.cgroup_path().empty() ? w.selector()
                                            : absl::StrCat(w.selector(), " at ", w.cgroup_path()));
  }
  ev.set_detail(absl::StrCat(absl::StrJoin(parts, "; "), parts.empty() ? "" : "; ",
                             "by uid ", caller.cred.uid, " pid ", caller.cred.pid,
                             " (interlock ", outcome == "enrolled" ? "enroll" : "unenroll", ")"));
  Audit(std::move(ev));
}

std::vector<pid_t> Engine::EnrolledPids(bool rescan) {
  std::vector<pid_t> pids;
  absl::flat_hash_set<std::string> dirs;
  for (const auto& [id, w] : workloads_) dirs.insert(w.cgroup_dir);
  // Units' cgroups the kernel enrolled after start are not in workloads_: found by a walk
  // of the hierarchy, at most every kUnitDirsRescan unless asked (a connect found no
  // listener in its namespace: maybe a unit made since).
  const absl::Duration now = clock_.Monotonic();
  if (rescan || now - unit_dirs_scanned_ >= kUnitDirsRescan) {
    unit_dirs_.clear();
    for (const auto& [e, dir] : ConfigCgroupDirs(config_.enrollments)) unit_dirs_.push_back(dir);
    unit_dirs_scanned_ = now;
  }
  dirs.insert(unit_dirs_.begin(), unit_dirs_.end());
  for (const std::string& dir : dirs) {
    std::vector<pid_t> in = CgroupTreeProcs(dir);
    pids.insert(pids.end(), in.begin(), in.end());
  }
  absl::flat_hash_set<uint32_t> uids, gids;
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    if (e.kind == config::EnrollmentConfig::Kind::kUser) uids.insert(e.id);
    if (e.kind == config::EnrollmentConfig::Kind::kGroup) gids.insert(e.id);
  }
  if (!uids.empty() || !gids.empty()) {
    for (const ProcIds& p : ListProcIds()) {
      if (uids.contains(p.uid) || gids.contains(p.gid)) pids.push_back(p.pid);
    }
  }
  return pids;
}

uint32_t Engine::WorkloadIdFor(const std::string& name) {
  auto* ids = state_.mutable_workload_ids();
  auto it = ids->find(name);
  if (it != ids->end()) return it->second;
  uint32_t next = 1;
  for (const auto& [n, id] : *ids) next = std::max(next, id + 1);
  (*ids)[name] = next;
  return next;
}

absl::Status Engine::SaveState() {
  state_.clear_workloads();
  for (const auto& [id, w] : workloads_) {
    v1::EnrolledWorkload* out = state_.add_workloads();
    out->set_name(w.name);
    out->set_cgroup_path(w.cgroup_path);
    out->set_cgroup_id(w.cgroup_id);
    out->set_default_deny(w.default_deny);
    out->set_ephemeral(w.ephemeral);
    out->set_token_file(w.token_file);
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(state_, &json, opts).ok()) {
    return absl::InternalError("state: cannot serialize enrollments");
  }
  return WriteFileAtomic(absl::StrCat(config_.state_dir, "/enrollments.json"), json, 0600);
}

std::optional<std::string> Engine::EnrolledWorkloadFor(const std::string& cgroup_path,
                                                       uint32_t uid, uint32_t gid) const {
  const std::string workloads =
      CgroupPathRelative(cgroup_mount_, absl::StrCat(cgroup_root_dir_, "/workloads"));
  const bool attached = attach_dir_ == cgroup_mount_ ||
                        IsSameOrBelow(CgroupDir(cgroup_mount_, cgroup_path), attach_dir_);
  if (attached && cgroup_path != daemon_cgroup_path_) {
    // The nearest enrolled cgroup: a known one (config path, unit found at start,
    // `interlock run`), or any directory named like an enrolled unit or slice (one the
    // kernel enrolled when it was created).
    const Workload* known = WorkloadForCgroupPath(cgroup_path);
    std::vector<absl::string_view> parts = absl::StrSplit(cgroup_path, '/', absl::SkipEmpty());
    for (size_t n = parts.size(); n > 0; --n) {
      const std::string prefix = absl::StrCat("/", absl::StrJoin(parts.begin(), parts.begin() + n, "/"));
      if (known != nullptr && known->cgroup_path == prefix) {
        return known->unit.empty() ? known->name : SessionWorkloadName(known->workload_id, cgroup_path);
      }
      // An exact unit name before a pattern, as the kernel's cgroup_mkdir hook decides.
      for (bool exact : {true, false}) {
        for (const config::EnrollmentConfig& e : config_.enrollments) {
          if (e.kind != config::EnrollmentConfig::Kind::kUnit || (e.unit.find('*') == std::string::npos) != exact ||
              !config::UnitMatches(e.unit, parts[n - 1])) {
            continue;
          }
          auto id = state_.workload_ids().find(e.name);
          return id == state_.workload_ids().end() ? e.name : SessionWorkloadName(id->second, cgroup_path);
        }
      }
    }
    if (IsSameOrBelow(cgroup_path, workloads)) return "";  // an `interlock run` cgroup in the making
  }
  if (cgroup_path == daemon_cgroup_path_) return std::nullopt;
  for (auto kind : {config::EnrollmentConfig::Kind::kUser, config::EnrollmentConfig::Kind::kGroup}) {
    for (const config::EnrollmentConfig& e : config_.enrollments) {
      if (e.kind == kind && e.id == (kind == config::EnrollmentConfig::Kind::kUser ? uid : gid)) {
        return e.name;
      }
    }
  }
  return std::nullopt;
}

std::string Engine::SessionWorkloadName(uint32_t workload_id, const std::string& cgroup_path) const {
  std::string name;
  for (const auto& [n, id] : state_.workload_ids()) {
    if (id == workload_id) name = n;
  }
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    if (e.name == name && e.kind == config::EnrollmentConfig::Kind::kUnit &&
        absl::EndsWith(e.unit, ".slice")) {
      return config::WorkloadNameInSlice(cgroup_path, e.unit).value_or(name);
    }
  }
  return name;
}

bool Engine::IsEnrolledCaller(const control::Caller& caller) const {
  return EnrolledWorkloadFor(caller.cgroup_path, caller.cred.uid, caller.cred.gid).has_value();
}

absl::StatusOr<v1::EnrollResponse> Engine::Enroll(const std::string& name, bool default_deny,
                                                  const std::string& token_file) {
  if (!ValidWorkloadName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("enroll: workload name \"", name, "\" must match [a-z0-9._-]{1,63}"));
  }
  if (!token_file.empty() && token_file[0] != '/') {
    return absl::InvalidArgumentError("enroll: --token-file must be an absolute path");
  }
  if (draining_) return absl::UnavailableError("enroll: interlockd is shutting down");
  // The parent of `interlock run` cgroups is made when first needed: an interlockd that
  // only enrolls units and users makes no cgroup of its own.
  INTERLOCK_RETURN_IF_ERROR(
      Annotate(MakeCgroupDirs(absl::StrCat(cgroup_root_dir_, "/workloads")), "enroll"));
  std::string dir;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    dir = absl::StrCat(cgroup_root_dir_, "/workloads/", name, ".", ::getpid(), ".",
                       ++enroll_counter_);
    if (::mkdir(dir.c_str(), 0755) == 0) break;
    if (errno != EEXIST) return ErrnoStatus(errno, absl::StrCat("enroll: mkdir ", dir));
    dir.clear();
  }
  if (dir.empty()) return absl::ResourceExhaustedError("enroll: no free cgroup name");
  INTERLOCK_ASSIGN_OR_RETURN(uint64_t id, CgroupIdOfDir(dir));
  Workload w;
  w.name = name;
  w.workload_id = WorkloadIdFor(name);
  w.cgroup_dir = dir;
  w.cgroup_path = CgroupPathRelative(cgroup_mount_, dir);
  w.cgroup_id = id;
  w.default_deny = default_deny;
  w.ephemeral = true;
  w.token_file = token_file;
  absl::Status st = datapath_->Enroll(
      id, il_enrollment{w.workload_id, default_deny ? IL_ENROLL_DEFAULT_DENY : 0u});
  if (!st.ok()) {
    ::rmdir(dir.c_str());
    return st;
  }
  resolver_->RememberCgroup(id, w.cgroup_path);
  if (!token_file.empty()) token_bindings_.Bind(w.cgroup_path, name, token_file);
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_ENROLLMENT);
  ev.set_outcome("enrolled");
  ev.mutable_identity()->set_workload(name);
  ev.mutable_identity()->set_cgroup_id(id);
  ev.mutable_identity()->set_cgroup_path(w.cgroup_path);
  ev.set_detail(absl::StrCat(default_deny ? "default_deny" : "",
                             token_file.empty() ? "" : absl::StrCat(default_deny ? "; " : "", "token_file ", token_file)));
  Audit(std::move(ev));
  workloads_[id] = std::move(w);
  INTERLOCK_RETURN_IF_ERROR(SaveState());
  v1::EnrollResponse resp;
  resp.set_cgroup_dir(dir);
  resp.set_cgroup_id(id);
  return resp;
}

absl::Status Engine::Unenroll(uint64_t cgroup_id) {
  auto it = workloads_.find(cgroup_id);
  if (it == workloads_.end() || !it->second.ephemeral) {
    return absl::NotFoundError(absl::StrCat("unenroll: no ephemeral enrollment for cgroup ", cgroup_id));
  }
  // Removed at the next tick once empty; a process left behind stays enforced.
  it->second.unenroll_pending = true;
  return absl::OkStatus();
}

}  // namespace interlock::daemon
