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

namespace interlock::daemon {

using namespace engine_internal;  // NOLINT: the engine's private helpers

absl::Status Engine::PrepareCgroups() {
  INTERLOCK_ASSIGN_OR_RETURN(cgroup_mount_, FindCgroup2Mount());
  cgroup_root_dir_ = CgroupDir(cgroup_mount_, config_.cgroup_root);
  for (const std::string& dir : {cgroup_root_dir_, absl::StrCat(cgroup_root_dir_, "/daemon"),
                                 absl::StrCat(cgroup_root_dir_, "/workloads")}) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("cgroup: mkdir ", dir));
    }
  }
  // interlockd lives in its own, never-enrolled cgroup under the attach point, so the
  // sockops program sees the engine's accepted sockets (their cgroup is the listener's)
  // and can pair them with the agent's for the sockmap path.
  INTERLOCK_RETURN_IF_ERROR(
      Annotate(MoveToCgroup(absl::StrCat(cgroup_root_dir_, "/daemon"), 0), "cgroup"));
  resolver_ = std::make_unique<identity::IdentityResolver>(cgroup_mount_, cgroup_root_dir_);
  return absl::OkStatus();
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
  absl::flat_hash_map<uint64_t, v1::EnrolledWorkload> known;
  for (const auto& w : state_.workloads()) known[w.cgroup_id()] = w;
  // Config enrollments' cgroups as they are now: the kernel may have enrolled one that
  // was re-created while interlockd was down; it must not be dropped here even for a
  // moment.
  absl::flat_hash_set<uint64_t> config_ids;
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    if (auto id = CgroupIdOfDir(CgroupDir(cgroup_mount_, e.cgroup_path)); id.ok()) {
      config_ids.insert(*id);
    }
  }
  INTERLOCK_ASSIGN_OR_RETURN(auto in_map, datapath_->ListEnrollments());
  for (const auto& [cgroup_id, enrollment] : in_map) {
    if (config_ids.contains(cgroup_id)) continue;  // enrolled again below
    auto it = known.find(cgroup_id);
    std::string dir = it != known.end() ? CgroupDir(cgroup_mount_, it->second.cgroup_path()) : "";
    auto id_now = dir.empty() ? absl::StatusOr<uint64_t>(absl::NotFoundError("")) : CgroupIdOfDir(dir);
    if (it == known.end() || !id_now.ok() || *id_now != cgroup_id) {
      // A cgroup we cannot name, or one that is gone: drop it from the kernel map.
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
    w.ephemeral = it->second.ephemeral();
    w.token_file = it->second.token_file();
    if (!w.token_file.empty()) token_bindings_.Bind(w.cgroup_path, w.name, w.token_file);
    resolver_->RememberCgroup(cgroup_id, w.cgroup_path);
    workloads_[cgroup_id] = std::move(w);
  }
  // Enrollments from the configuration, by path: the kernel enrolls a cgroup created at
  // one of these paths before it is visible (so a re-created cgroup never runs
  // unenforced); a missing path is created here, which enrolls it the same way.
  std::vector<bpf::PathEnrollment> by_path;
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    std::string dir = CgroupDir(cgroup_mount_, e.cgroup_path);
    by_path.push_back(bpf::PathEnrollment{
        CgroupPathRelative(cgroup_mount_, dir),
        il_enrollment{WorkloadIdFor(e.name), e.default_deny ? IL_ENROLL_DEFAULT_DENY : 0u}});
  }
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetEnrolledPaths(by_path));
  for (const config::EnrollmentConfig& e : config_.enrollments) {
    std::string dir = CgroupDir(cgroup_mount_, e.cgroup_path);
    if (!absl::StartsWith(dir, absl::StrCat(cgroup_root_dir_, "/"))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "enrollment ", e.name, ": cgroup ", dir, " is not below the cgroup root ",
          cgroup_root_dir_, " where the programs are attached"));
    }
    INTERLOCK_RETURN_IF_ERROR(Annotate(MakeCgroupDirs(dir), absl::StrCat("enrollment ", e.name)));
    INTERLOCK_ASSIGN_OR_RETURN(uint64_t id, CgroupIdOfDir(dir));
    Workload w;
    w.name = e.name;
    w.workload_id = WorkloadIdFor(e.name);
    w.cgroup_dir = dir;
    w.cgroup_path = CgroupPathRelative(cgroup_mount_, dir);
    w.cgroup_id = id;
    w.default_deny = e.default_deny;
    w.token_file = e.token_file;
    if (!w.token_file.empty()) token_bindings_.Bind(w.cgroup_path, w.name, w.token_file);
    INTERLOCK_RETURN_IF_ERROR(datapath_->Enroll(
        id, il_enrollment{w.workload_id, w.default_deny ? IL_ENROLL_DEFAULT_DENY : 0u}));
    resolver_->RememberCgroup(id, w.cgroup_path);
    workloads_[id] = std::move(w);
  }
  return SaveState();
}

std::vector<pid_t> Engine::EnrolledPids() const {
  std::vector<pid_t> pids;
  for (const auto& [id, w] : workloads_) {
    std::vector<pid_t> in = CgroupTreeProcs(w.cgroup_dir);
    pids.insert(pids.end(), in.begin(), in.end());
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

bool Engine::IsEnrolledCgroup(const std::string& cgroup_path) const {
  std::string workloads = CgroupPathRelative(cgroup_mount_, absl::StrCat(cgroup_root_dir_, "/workloads"));
  if (cgroup_path == workloads || absl::StartsWith(cgroup_path, absl::StrCat(workloads, "/"))) {
    return true;
  }
  for (const auto& [id, w] : workloads_) {
    if (cgroup_path == w.cgroup_path || absl::StartsWith(cgroup_path, absl::StrCat(w.cgroup_path, "/"))) {
      return true;
    }
  }
  return false;
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
