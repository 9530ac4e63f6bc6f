// Engine, part: accepted connections becoming sessions — the kernel-attested identity of
// each redirected (or unix-socket) connection, its resource, the protocol plug-in that runs
// it, its recording, and its end.
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

#include <array>
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

void Engine::OnAccept(int listen_fd) {
  for (int i = 0; i < 64 && !draining_; ++i) {
    auto fd = net::AcceptTcp(listen_fd);
    if (!fd.ok()) {
      INTERLOCK_LOG(kWarning, "accept: %s", fd.status().message());
      return;
    }
    if (!fd->has_value()) return;
    StartSession(std::move(**fd));
  }
}

void Engine::RejectConnection(const std::string& reason, const std::string& detail,
                              const v1::WorkloadIdentity* who) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_SESSION_REJECTED);
  ev.set_outcome("denied");
  ev.set_reason(reason);
  ev.set_detail(detail);
  if (who != nullptr) *ev.mutable_identity() = *who;
  Audit(std::move(ev));
}

void Engine::StartSession(UniqueFd agent) {
  auto peer = net::PeerAddr(agent.get());
  if (!peer.ok()) return;  // the agent is already gone
  // The record lives in this socket's own storage, claimed by it at establishment.
  auto info = datapath_->LookupConn(agent.get());
  if (!info.ok()) {
    // Not from the redirect (someone dialled the listener directly): no kernel-attested
    // identity, so no session.
    RejectConnection("no_identity",
                     absl::StrCat("connection from ", peer->ToString(),
                                  " did not come through the redirect"),
                     nullptr);
    return;
  }
  identity::KernelAttestation att;
  att.cgroup_id = info->cgroup_id;
  att.pid = static_cast<uint32_t>(info->pid_tgid >> 32);
  att.tid = static_cast<uint32_t>(info->pid_tgid);
  att.uid = static_cast<uint32_t>(info->uid_gid);
  att.gid = static_cast<uint32_t>(info->uid_gid >> 32);
  att.login_uid = info->login_uid;
  att.comm = std::string(info->comm, strnlen(info->comm, sizeof info->comm));
  v1::WorkloadIdentity who = resolver_->Resolve(att, "");
  who.set_workload(SessionWorkloadName(info->workload_id, who.cgroup_path()));

  net::SockAddr original = net::SockAddr::FromMapped(
      reinterpret_cast<const uint8_t*>(info->orig_addr), info->orig_port);
  // The kernel stamped the resource in force at connect time. A reload since may have
  // removed it or moved it elsewhere: a connect it no longer covers is refused (the
  // agent's next connect is judged by the maps in force), never served as another one.
  std::shared_ptr<Resources> resources = resources_;
  const config::ResourceConfig* found = resources->ById(info->resource_id);
  std::array<uint8_t, 16> orig_bytes;
  std::memcpy(orig_bytes.data(), info->orig_addr, 16);
  if (found == nullptr || !found->prefix.Contains(orig_bytes) ||
      (found->port != 0 && found->port != info->orig_port)) {
    RejectConnection("unknown_resource",
                     absl::StrCat("resource id ", info->resource_id, " does not cover ", original.ToString(),
                                  found == nullptr ? " (no such resource)" : absl::StrCat(" (", found->name, ")"),
                                  ": the configuration changed after the connect"),
                     &who);
    return;
  }
  const config::ResourceConfig& resource = *found;
  net::SockAddr upstream = original;
  if (resource.upstream_address.has_value() || resource.upstream_port != 0) {
    const uint8_t* a = resource.upstream_address.has_value()
                           ? resource.upstream_address->bytes.data()
                           : reinterpret_cast<const uint8_t*>(info->orig_addr);
    upstream = net::SockAddr::FromMapped(
        a, resource.upstream_port != 0 ? resource.upstream_port : info->orig_port);
  }
  StartSessionFor(std::move(agent), who, resources, resource, original, upstream);
}

void Engine::OnAcceptUnix(int listen_fd, const std::string& name) {
  for (int i = 0; i < 64 && !draining_; ++i) {
    auto fd = net::AcceptTcp(listen_fd);  // accept4 is the same for unix sockets
    if (!fd.ok()) {
      INTERLOCK_LOG(kWarning, "accept %s: %s", config_.listener.UnixListenerPath(name), fd.status().message());
      return;
    }
    if (!fd->has_value()) return;
    std::shared_ptr<Resources> resources = resources_;
    const config::ResourceConfig* resource = resources->ByName(name);
    if (resource == nullptr || resource->unix_path.empty()) {
      RejectConnection("unknown_resource",
                       absl::StrCat("unix listener of resource ", name, ", which the configuration no longer has"),
                       nullptr);
      continue;
    }
    StartUnixSession(std::move(**fd), resources, *resource);
  }
}

absl::StatusOr<identity::KernelAttestation> Engine::UnixPeer(int fd, std::string& cgroup_path) {
  // The kernel's record of who called connect(): its credentials at that moment, and a
  // pidfd that keeps its pid from naming another process while we read /proc.
  INTERLOCK_ASSIGN_OR_RETURN(net::PeerCred cred, net::GetPeerCred(fd));
  INTERLOCK_ASSIGN_OR_RETURN(UniqueFd pidfd, net::GetPeerPidfd(fd));
  const std::string proc = absl::StrCat("/proc/", cred.pid);
  INTERLOCK_ASSIGN_OR_RETURN(std::string cgroups, ReadFile(absl::StrCat(proc, "/cgroup")));
  cgroup_path.clear();
  for (absl::string_view line : absl::StrSplit(cgroups, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "0::")) cgroup_path = std::string(line);
  }
  identity::KernelAttestation att;
  att.pid = static_cast<uint32_t>(cred.pid);
  att.tid = att.pid;
  att.uid = cred.uid;
  att.gid = cred.gid;
  if (auto comm = ReadFile(absl::StrCat(proc, "/comm")); comm.ok()) {
    att.comm = std::string(absl::StripTrailingAsciiWhitespace(*comm));
  }
  if (auto login = ReadFile(absl::StrCat(proc, "/loginuid")); login.ok()) {
    (void)absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(*login), &att.login_uid);
  }
  if (cgroup_path.empty()) {
    return absl::NotFoundError(absl::StrCat("no cgroup2 path for pid ", cred.pid));
  }
  INTERLOCK_ASSIGN_OR_RETURN(att.cgroup_id,
                             CgroupIdOfDir(absl::StrCat(cgroup_mount_, cgroup_path)));
  // Read while the pidfd held the pid: if the process is still there, what we read was
  // its own (an agent cannot move itself out of its cgroup).
  if (!net::PidfdAlive(pidfd.get())) {
    return absl::NotFoundError(absl::StrCat("pid ", cred.pid, " exited before it was identified"));
  }
  return att;
}

const Engine::Workload* Engine::WorkloadForCgroupPath(const std::string& cgroup_path) const {
  const Workload* best = nullptr;
  for (const auto& [id, w] : workloads_) {
    if (cgroup_path != w.cgroup_path &&
        !absl::StartsWith(cgroup_path, absl::StrCat(w.cgroup_path, "/"))) {
      continue;
    }
    if (best == nullptr || w.cgroup_path.size() > best->cgroup_path.size()) best = &w;
  }
  return best;
}

void Engine::StartUnixSession(UniqueFd agent, const std::shared_ptr<Resources>& resources,
                              const config::ResourceConfig& resource) {
  const std::string listener = config_.listener.UnixListenerPath(resource.name);
  std::string cgroup_path;
  auto att = UnixPeer(agent.get(), cgroup_path);
  if (!att.ok()) {
    RejectConnection("no_identity",
                     absl::StrCat("unix connection to ", listener, ": ", att.status().message()),
                     nullptr);
    return;
  }
  // The listener is reachable by anyone who can reach the path; only a process in an
  // enrolled cgroup (which the connect hook sent here) gets a session and so a
  // workload's credential. Nobody else is anybody here.
  const std::optional<std::string> workload =
      EnrolledWorkloadFor(cgroup_path, att->uid, att->gid);
  v1::WorkloadIdentity who = resolver_->Resolve(*att, workload.value_or(""));
  if (!workload.has_value() || workload->empty()) {
    RejectConnection("not_enrolled",
                     absl::StrCat("unix connection to ", listener, " from pid ", att->pid, " uid ",
                                  att->uid, " in cgroup ", cgroup_path,
                                  ", which is not enrolled: only redirected workloads are served"),
                     &who);
    return;
  }
  const net::SockAddr path = net::SockAddr::Unix(resource.unix_path);
  StartSessionFor(std::move(agent), who, resources, resource, path, path);
}

void Engine::StartSessionFor(UniqueFd agent, const v1::WorkloadIdentity& who,
                             const std::shared_ptr<Resources>& resources,
                             const config::ResourceConfig& resource, const net::SockAddr& original,
                             const net::SockAddr& upstream) {
  proxy::Protocol* protocol = resources->protocols.For(resource.protocol);
  if (protocol == nullptr) {
    RejectConnection("internal", absl::StrCat("resource ", resource.name, ": no protocol plug-in"), &who);
    return;
  }
  // An agent refused here is told why in its own protocol, where it has words for it.
  auto tell = [&](proxy::Refusal why) { protocol->Refuse(std::move(agent), why); };
  if (sessions_.size() >= config_.max_sessions) {
    tell(proxy::Refusal::kTooManySessions);
    RejectConnection("session_limit", absl::StrCat("max_sessions ", config_.max_sessions), &who);
    return;
  }
  // A new session needs room for at least its first reads; refuse it while the budget is
  // (nearly) exhausted rather than start one that could not move a byte.
  if (memory_budget_->Below(kSessionMemoryFloor)) {
    tell(proxy::Refusal::kOutOfMemory);
    RejectConnection("memory_budget",
                     absl::StrCat("sessions hold ", memory_budget_->used(), " of ",
                                  memory_budget_->limit(), " bytes of the memory budget"),
                     &who);
    return;
  }
  // Fail closed on disk: below the free-space floor no session starts, so that the live
  // ones keep room to finish and seal their recordings.
  if (std::string why; RecordingDiskFull(&why)) {
    ++refused_disk_full_;
    tell(proxy::Refusal::kDiskFull);
    RejectConnection("disk_full", why, &who);
    return;
  }

  auto session = std::make_unique<Session>();
  session->id = audit::RandomId();
  session->identity = who;
  session->resources = resources;
  session->resource = &resource;
  *session->original_destination.mutable_address() = original.ip();
  session->original_destination.set_port(original.port());
  session->upstream = ToEndpoint(upstream);
  session->started = clock_.Now();
  session->started_mono = clock_.Monotonic();
  session->protocol = std::string(protocol->name());

  const std::string& protocol_name = session->protocol;
  v1::SessionOpen open;
  open.set_session_id(session->id);
  *open.mutable_identity() = who;
  open.set_resource(resource.name);
  *open.mutable_original_destination() = session->original_destination;
  *open.mutable_upstream() = session->upstream;
  open.set_protocol(protocol_name);
  record::RecorderOptions ropts;
  ropts.auditor_public_key = auditor_public_key_;
  ropts.files = recording_files_.get();
  ropts.spares = recording_spares_.get();
  auto recorder = record::Recorder::Create(absl::StrCat(recordings_dir_, "/", session->id, ".rec"), open, *key_,
                                           clock_, ropts);
  if (!recorder.ok()) {
    // Fail closed: a session that cannot be recorded does not happen.
    if (absl::IsResourceExhausted(recorder.status())) {  // ENOSPC, EDQUOT
      ++refused_disk_full_;
      recordings_free_->Invalidate();
      tell(proxy::Refusal::kDiskFull);
      RejectConnection("disk_full", std::string(recorder.status().message()), &who);
    } else {
      tell(proxy::Refusal::kRecordingFailed);
      RejectConnection("recording_failed", std::string(recorder.status().message()), &who);
    }
    return;
  }
  proxy::SessionStart start;
  start.session_id = session->id;
  start.identity = who;
  start.resource = &resource;
  start.original_destination = session->original_destination;
  start.upstream = upstream;
  start.agent = std::move(agent);
  start.recorder = std::move(*recorder);
  if (auto v = resources->token_verifiers.find(resource.id); v != resources->token_verifiers.end()) {
    start.token_verifier = v->second.get();
  }
  start.bound_token = [this, cgroup_path = who.cgroup_path()] { return token_bindings_.TokenFor(cgroup_path); };
  start.done = [this](proxy::ProxySession* s) { OnSessionDone(s); };
  proxy::Started started = protocol->Start(std::move(start));
  if (started.session == nullptr) {
    RejectConnection(started.refusal, started.detail, &who);
    return;
  }
  ++total_sessions_;
  ++sessions_total_by_resource_[resource.name];
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_SESSION_START);
  ev.set_session_id(session->id);
  *ev.mutable_identity() = who;
  ev.set_resource(resource.name);
  *ev.mutable_original_destination() = session->original_destination;
  *ev.mutable_upstream() = session->upstream;
  ev.set_protocol(protocol_name);
  ev.set_outcome("allowed");
  Audit(std::move(ev));
  session->relay = std::move(started.session);
  proxy::ProxySession* key = session->relay.get();
  key->JoinFlushList(&flushes_);
  sessions_.emplace(key, std::move(session));
  // The relay may have finished synchronously (never today, but keep the invariant).
  if (key->done()) OnSessionDone(key);
}

void Engine::OnSessionDone(proxy::ProxySession* relay) {
  auto it = sessions_.find(relay);
  if (it == sessions_.end()) return;  // finished during Start(); handled by the caller
  std::unique_ptr<Session> session = std::move(it->second);
  sessions_.erase(it);
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_SESSION_END);
  ev.set_session_id(session->id);
  *ev.mutable_identity() = session->identity;
  if (const v1::WorkloadIdentity* learned = relay->learned_identity()) *ev.mutable_identity() = *learned;
  ev.set_resource(session->resource->name);
  *ev.mutable_original_destination() = session->original_destination;
  *ev.mutable_upstream() = session->upstream;
  ev.set_protocol(session->protocol);
  ev.set_bytes_to_upstream(relay->stats().bytes_to_upstream);
  ev.set_bytes_to_agent(relay->stats().bytes_to_agent);
  ev.set_duration_ms(absl::ToInt64Milliseconds(clock_.Monotonic() - session->started_mono));
  ev.set_outcome(relay->outcome());
  ev.set_detail(relay->detail());
  if (const record::Recorder* rec = relay->recorder()) {
    // What the recording held at the end, so that one cut short or removed later shows as
    // tampered (interlock verify cross-checks it), not as cut by a crash.
    v1::RecordingSummary* r = ev.mutable_recording();
    const std::string& path = rec->path();
    r->set_file(path.substr(path.rfind('/') + 1));
    r->set_records(rec->records());
    r->set_head_sha256(HexEncode(rec->head_hash()));
    r->set_sealed(rec->closed() && rec->status().ok());
  }
  Audit(std::move(ev));
  IndexSession(*session, *relay);
  // The relay is inside its own callback: destroy it after this dispatch batch.
  Session* raw = session.release();
  loop_->Defer([raw] { delete raw; });
  if (draining_ && DrainDone()) loop_->Stop();
}

}  // namespace interlock::daemon
