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

#include <algorithm>
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

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(config::ServiceConfig config,
                                                       const Clock& clock) {
  std::unique_ptr<Engine> engine(new Engine(std::move(config), clock));
  INTERLOCK_RETURN_IF_ERROR(engine->Init());
  return engine;
}

Engine::Engine(config::ServiceConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

Engine::~Engine() {
  // Sessions first: their relays reference the loop.
  sessions_.clear();
  control_.reset();
  metrics_.reset();
}

absl::Status Engine::Init() {
  started_ = clock_.Now();
  // Started by `interlock upgrade`: the old interlockd's listening sockets, checked before
  // anything else (a mismatch refuses to start; the old process keeps serving).
  INTERLOCK_ASSIGN_OR_RETURN(handover_, Handover::FromEnvironment());
  // Thousands of sessions need thousands of fds: agent + upstream each. Their recordings
  // share what is left after max_sessions' sockets and the daemon's own (listeners, maps,
  // audit, control), between kMinRecordingFiles and FileCache::kDefaultMaxOpen.
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  {
    const uint64_t nofile = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    const uint64_t sockets = 2 * uint64_t{config_.max_sessions} + kDaemonFds + record::SpareFiles::kDefaultDepth;
    const uint64_t room = nofile > sockets ? nofile - sockets : 0;
    recording_files_ = std::make_unique<record::FileCache>(static_cast<size_t>(
        std::clamp<uint64_t>(room, kMinRecordingFiles, record::FileCache::kDefaultMaxOpen)));
  }
  ::signal(SIGPIPE, SIG_IGN);

  INTERLOCK_ASSIGN_OR_RETURN(loop_, net::EventLoop::Create(clock_));
  // A NOTIFY_SOCKET we cannot use is no reason not to enforce: systemd then times the
  // start out (Type=notify) and says why, next to this line.
  if (auto notifier = net::ServiceNotifier::FromEnvironment(); notifier.ok()) {
    notifier_ = *std::move(notifier);
  } else {
    INTERLOCK_LOG(kWarning, "%s", notifier.status().message());
  }
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(config_.state_dir, 0700));
  ::chmod(config_.state_dir.c_str(), 0700);
  recordings_dir_ = absl::StrCat(config_.state_dir, "/recordings");
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(recordings_dir_, 0700));
  INTERLOCK_ASSIGN_OR_RETURN(record::RecordingKey key,
                             record::RecordingKey::LoadOrCreate(config_.state_dir));
  key_ = std::make_unique<record::RecordingKey>(std::move(key));
  {
    INTERLOCK_ASSIGN_OR_RETURN(auto sink, OpenAuditFile());
    audit_file_ = sink.get();
    audit_ = std::make_unique<audit::AuditLog>(std::move(sink), clock_);
  }
  for (const config::AuditSinkSettings& settings : config_.audit_sinks) {
    // Each sink takes over its spool (what an earlier run did not deliver) and starts its
    // worker thread; the event loop only ever queues events for it.
    INTERLOCK_ASSIGN_OR_RETURN(auto remote, audit::sinks::CreateRemoteSink(settings, config_.state_dir));
    INTERLOCK_LOG(kInfo, "audit sink %s: %s", remote->name(), remote->destination());
    audit_sinks_.push_back(remote.get());
    audit_->AddSink(std::move(remote));
  }
  INTERLOCK_RETURN_IF_ERROR(InitRecordings());
  if (!config_.auditor_public_key_file.empty()) {
    // Originals that masking replaces are kept, sealed to the auditor's key.
    INTERLOCK_ASSIGN_OR_RETURN(auditor_public_key_, record::LoadAuditorPublicKey(config_.auditor_public_key_file));
  }

  if (!config_.policy_file.empty()) {
    INTERLOCK_ASSIGN_OR_RETURN(policy_, PolicyWatcher::Create(config_.policy_file, audit_.get()));
    watchers_.push_back(std::make_unique<FdWatcher>([this] { policy_->OnInotify(); }));
    INTERLOCK_RETURN_IF_ERROR(loop_->Add(policy_->inotify_fd(), EPOLLIN, watchers_.back().get()));
  } else {
    INTERLOCK_LOG(kWarning, "no policy_file configured: statements are audited but not judged");
  }
  {
    // Masking: compiled profiles of the policy in force and the upstream catalogs.
    static const std::shared_ptr<const policy::PolicyEvaluator> kNoPolicy;
    INTERLOCK_ASSIGN_OR_RETURN(
        masks_, MaskService::Create(config_.state_dir, policy_ != nullptr ? policy_->current_ptr() : &kNoPolicy,
                                    [this](const std::string& catalog, const std::string& sql,
                                           std::vector<std::optional<std::string>> params,
                                           std::function<void(absl::StatusOr<proxy::pg::QueryRows>)> done) {
                                      CatalogQuery(catalog, sql, std::move(params), std::move(done));
                                    }));
    if (policy_ != nullptr) {
      INTERLOCK_RETURN_IF_ERROR(masks_->Validate(policy_->current()));
      policy_->SetValidator([this](const policy::PolicyEvaluator& p) { return masks_->Validate(p); });
    }
  }
  {
    ApprovalBrokerOptions ao;
    ao.db_path = absl::StrCat(config_.state_dir, "/approvals.db");
    if (!config_.approvals.instance_name.empty()) {
      ao.host = config_.approvals.instance_name;
    } else {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      ao.host = host;
    }
    ao.approvals = config_.approvals;
    INTERLOCK_ASSIGN_OR_RETURN(approvals_, ApprovalBroker::Create(std::move(ao), loop_.get(), audit_.get(), &clock_));
    approvals_->OnGrantEnded([this](const v1::Grant& g, const std::string& why) { OnGrantEnded(g, why); });
  }

  memory_budget_ = std::make_unique<MemoryBudget>(config_.memory_budget_bytes);
  INTERLOCK_RETURN_IF_ERROR(PrepareCgroups());
  INTERLOCK_RETURN_IF_ERROR(OpenDatapath());
  INTERLOCK_RETURN_IF_ERROR(RestoreEnrollments());
  AssignResourceIds(config_.resources);
  INTERLOCK_ASSIGN_OR_RETURN(resources_, BuildResources(config_.resources, config_.oidc_issuers, config_.timeouts));
  INTERLOCK_RETURN_IF_ERROR(Listen());
  INTERLOCK_RETURN_IF_ERROR(ApplyResources(*resources_));

  // Signals arrive through the loop, never in a handler.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGUSR2);  // live upgrade (Upgrade)
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_.Reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return ErrnoStatus(errno, "signalfd");
  watchers_.push_back(std::make_unique<FdWatcher>([this] { OnSignal(); }));
  INTERLOCK_RETURN_IF_ERROR(loop_->Add(signal_fd_.get(), EPOLLIN, watchers_.back().get()));

  watchers_.push_back(std::make_unique<FdWatcher>([this] { OnKernelEvents(); }));
  INTERLOCK_RETURN_IF_ERROR(
      loop_->Add(datapath_->events_fd(), EPOLLIN, watchers_.back().get()));

  std::optional<gid_t> admin_gid;
  if (!config_.admin_group.empty()) {
    group gr{};
    group* found = nullptr;
    char buf[4096];
    if (::getgrnam_r(config_.admin_group.c_str(), &gr, buf, sizeof buf, &found) != 0 ||
        found == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin_group: no group named \"", config_.admin_group, "\""));
    }
    admin_gid = found->gr_gid;
  }
  {
    // The control socket's directory. Under systemd it is RuntimeDirectory= /run/interlock
    // (the packaged configuration puts the socket there); without systemd interlockd makes
    // a missing one, root's and 0755 whatever the umask: the socket's own mode and group
    // (admin_group) decide who may connect, and agents reach the unix listeners there.
    const std::string dir = config_.control_socket.substr(0, config_.control_socket.rfind('/'));
    struct stat st;
    if (!dir.empty() && ::stat(dir.c_str(), &st) != 0) {
      INTERLOCK_RETURN_IF_ERROR(MakeDirs(dir, 0755));
      ::chmod(dir.c_str(), 0755);
    }
  }
  // An upgrade's inherited control socket, or a new one (ListenUnix removes a stale file).
  INTERLOCK_ASSIGN_OR_RETURN(UniqueFd control_fd, handover_->ListenUnix(config_.control_socket, 0660));
  INTERLOCK_ASSIGN_OR_RETURN(
      control_,
      control::ControlServer::Create(
          *loop_, config_.control_socket, std::move(control_fd), admin_gid,
          [this](const control::Caller& caller) { return IsEnrolledCaller(caller); },
          [this](const v1::ControlRequest& req, const control::Caller& caller) {
            v1::ControlResponse resp = HandleControl(req, caller);
            // What a control request caused (a reload, an approval, a grant...) is in the
            // audit file before the caller gets its answer; so is everything before it.
            WriteBuffered();
            return resp;
          },
          [this](const control::Caller& caller, const absl::Status& st) {
            v1::AuditEvent ev;
            ev.set_kind(v1::AUDIT_KIND_DAEMON);
            ev.set_outcome("denied");
            ev.set_reason("control_refused");
            ev.set_detail(std::string(st.message()));
            ev.mutable_identity()->set_pid(caller.cred.pid);
            ev.mutable_identity()->set_uid(caller.cred.uid);
            ev.mutable_identity()->set_gid(caller.cred.gid);
            ev.mutable_identity()->set_cgroup_path(caller.cgroup_path);
            Audit(std::move(ev));
          }));
  // Inherited: the old process still serves it; should this one fail to start, the file
  // must stay (Run takes it over once the old process hands over).
  if (handover_->inherited()) control_->KeepSocketFile(true);

  INTERLOCK_RETURN_IF_ERROR(StartMetrics());
  handover_->CloseUnclaimed();
  INTERLOCK_RETURN_IF_ERROR(StartHandoverAudit());

  // Open for business: from here the kernel redirects instead of refusing.
  INTERLOCK_RETURN_IF_ERROR(datapath_->WriteSettings(Settings(/*accepting=*/true)));
  // Recordings and audit lines are buffered while events are handled and written at most
  // once per write_batch_ms (one write(2) per file per batch), or at the end of every loop
  // iteration when it is 0.
  last_write_ = clock_.Monotonic();
  loop_->SetIterationHook([this] { WriteBatched(); });
  loop_->RunAfter(absl::Seconds(1), [this] { OnTick(); });

  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_DAEMON);
  ev.set_outcome("started");
  ev.set_detail(absl::StrCat("interlockd ", InterlockVersion(), " pid ", ::getpid(),
                             datapath_->readopted() ? ", re-adopted pinned datapath" : "",
                             handover_->inherited()
                                 ? absl::StrCat(", listeners handed over by pid ", handover_->parent_pid())
                                 : ""));
  Audit(std::move(ev));
  INTERLOCK_LOG(kInfo, "ready: listening on %s port %d, %s datapath, relay %s",
                config_.listener.address_v4.text, config_.listener.port,
                datapath_->readopted() ? "re-adopted" : "new",
                config_.relay_mode == config::RelayMode::kPlain ? "plain" : "sockmap");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<audit::JsonLinesSink>> Engine::OpenAuditFile() {
  // The chained audit file; its checkpoints are signed with the recording key.
  const config::AuditFileSettings& af = config_.audit_file;
  audit::JsonLinesSinkOptions o;
  o.path = af.path.empty() ? absl::StrCat(config_.state_dir, "/audit/audit.jsonl") : af.path;
  o.rotate_bytes = af.rotate_bytes;
  o.rotate_age = absl::Seconds(af.rotate_age_s);
  o.retain_files = af.retain_files;
  o.retain_age = absl::Hours(24) * af.retain_days;
  o.checkpoint_interval = absl::Seconds(af.checkpoint_interval_s);
  o.key = key_.get();
  if (!af.group_readable.empty()) {
    group gr{};
    group* found = nullptr;
    char buf[4096];
    if (::getgrnam_r(af.group_readable.c_str(), &gr, buf, sizeof buf, &found) != 0 || found == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("audit.file.group_readable: no group named \"", af.group_readable, "\""));
    }
    o.group = found->gr_gid;
  }
  return audit::JsonLinesSink::Create(std::move(o), clock_);
}

absl::Status Engine::ReopenAuditFile() {
  INTERLOCK_ASSIGN_OR_RETURN(auto sink, OpenAuditFile());
  audit_file_ = sink.get();
  audit_->ReplaceSink(std::move(sink));
  return absl::OkStatus();
}

il_settings Engine::Settings(bool accepting) const {
  il_settings s{};
  std::memcpy(s.engine_ip4, config_.listener.address_v4.bytes.data(), 16);
  if (config_.listener.address_v6.has_value()) {
    std::memcpy(s.engine_ip6, config_.listener.address_v6->bytes.data(), 16);
  }
  s.engine_port = config_.listener.port;
  if (config_.relay_mode != config::RelayMode::kPlain) s.flags |= IL_SETTINGS_SOCKMAP;
  if (accepting) s.flags |= IL_SETTINGS_ENGINE_ACCEPTING;
  return s;
}

absl::Status Engine::OpenDatapath() {
  bpf::DatapathOptions opts;
  opts.pin_path = config_.pin_path;
  opts.cgroup_dir = attach_dir_;
  // After an upgrade's handover the old process still accepts on the very sockets this one
  // inherited: the flag stays set (clearing it would refuse connects for the handover).
  opts.settings = Settings(/*accepting=*/handover_->inherited());
  INTERLOCK_ASSIGN_OR_RETURN(datapath_, bpf::Datapath::Open(opts));
  return ApplyAllowedDestinations();
}

absl::Status Engine::WriteDatapathTables() {
  // The resources in force (maps and unix listeners) and the allowed destinations.
  INTERLOCK_RETURN_IF_ERROR(ApplyResources(*resources_));
  return ApplyAllowedDestinations();
}

absl::Status Engine::Listen() {
  std::vector<net::SockAddr> addrs;
  INTERLOCK_ASSIGN_OR_RETURN(net::SockAddr v4,
                             net::SockAddr::Parse(config_.listener.address_v4.text, config_.listener.port));
  addrs.push_back(v4);
  if (config_.listener.address_v6.has_value()) {
    INTERLOCK_ASSIGN_OR_RETURN(net::SockAddr v6, net::SockAddr::Parse(config_.listener.address_v6->text,
                                                                      config_.listener.port));
    addrs.push_back(v6);
  }
  for (const net::SockAddr& a : addrs) {
    INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, handover_->ListenTcp(a, 4096));
    int raw = fd.get();
    INTERLOCK_RETURN_IF_ERROR(datapath_->MarkEngineListener(raw));
    engine_listener_fds_.push_back(raw);
    watchers_.push_back(std::make_unique<FdWatcher>([this, raw] { OnAccept(raw); }));
    INTERLOCK_RETURN_IF_ERROR(loop_->Add(raw, EPOLLIN, watchers_.back().get()));
    listeners_.push_back(std::move(fd));
  }
  // The same listeners in other network namespaces (containers): configured ones and
  // those of enrolled processes; re-synced every tick and when a connect found none.
  NetnsListenersOptions nopts;
  nopts.addrs = addrs;
  nopts.configured = config_.listener.network_namespaces;
  nopts.discover = config_.listener.discover_network_namespaces;
  INTERLOCK_ASSIGN_OR_RETURN(
      netns_, NetnsListeners::Create(
                  loop_.get(), datapath_.get(), handover_.get(), std::move(nopts),
                  [this](int listen_fd) { OnAccept(listen_fd); },
                  [this](const std::string& outcome, const std::string& detail) {
                    v1::AuditEvent ev;
                    ev.set_kind(v1::AUDIT_KIND_DAEMON);
                    ev.set_outcome(outcome);
                    ev.set_detail(detail);
                    Audit(std::move(ev));
                  }));
  SyncNetnsListeners();
  return absl::OkStatus();
}

absl::Status Engine::UnixListenerDir() {
  const std::string& dir = config_.listener.unix_dir;
  // Agents must be able to reach the listeners: directories made here are 0755 whatever
  // the service's umask (the unit's is 0077).
  const mode_t old_umask = ::umask(022);
  absl::Status made = MakeDirs(dir, 0755);
  ::umask(old_umask);
  INTERLOCK_RETURN_IF_ERROR(made);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("listener.unix_dir ", dir));
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "listener.unix_dir ", dir, " must be a directory owned by root and writable by nobody "
        "else (anyone who can create a socket there could receive redirected connects)"));
  }
  return absl::OkStatus();
}

void Engine::SyncNetnsListeners() {
  netns_sync_pending_ = false;
  const bool rescan = std::exchange(netns_sync_rescan_, false);
  if (netns_ == nullptr || draining_) return;
  last_netns_sync_ = clock_.Monotonic();
  netns_->Sync(EnrolledPids(rescan));
}

void Engine::SyncNetnsListenersSoon() {
  netns_sync_rescan_ = true;
  if (netns_sync_pending_) return;
  netns_sync_pending_ = true;
  // At most one scan per 100 ms however fast refused connects arrive.
  absl::Duration wait = last_netns_sync_ + absl::Milliseconds(100) - clock_.Monotonic();
  if (wait <= absl::ZeroDuration()) {
    loop_->Defer([this] { SyncNetnsListeners(); });
  } else {
    loop_->RunAfter(wait, [this] { SyncNetnsListeners(); });
  }
}

absl::Status Engine::Run() {
  // Init put up the pins, the listeners and the control socket: enforcing from here.
  const size_t n = config_.resources.size();
  const std::string status = absl::StrCat("enforcing ", n, n == 1 ? " resource" : " resources");
  if (handover_->inherited()) {
    // The old process stops accepting on this; systemd follows this pid from here (the
    // unit's NotifyAccess=all lets it take MAINPID= from a process that is not main yet).
    if (absl::Status st = handover_->SignalReady(); !st.ok()) INTERLOCK_LOG(kWarning, "%s", st.message());
    control_->KeepSocketFile(false);  // ours now
    if (absl::Status st = notifier_.Send(absl::StrCat("MAINPID=", ::getpid(), "\nREADY=1\nSTATUS=", status));
        !st.ok()) {
      INTERLOCK_LOG(kWarning, "%s", st.message());
    }
  } else if (absl::Status st = notifier_.Ready(status); !st.ok()) {
    INTERLOCK_LOG(kWarning, "%s", st.message());
  }
  if (notifier_.watchdog_interval() > absl::ZeroDuration()) PingWatchdog();
  INTERLOCK_RETURN_IF_ERROR(loop_->Run());
  std::vector<proxy::ProxySession*> left;
  for (auto& [relay, session] : sessions_) left.push_back(relay);
  for (proxy::ProxySession* r : left) r->Abort("shutdown");
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_DAEMON);
  ev.set_outcome("stopped");
  Audit(std::move(ev));
  // The last line of a clean shutdown: a signed checkpoint of the whole chain (after a
  // handover the new process writes the chain).
  if (!handed_over_) {
    if (absl::Status st = audit_file_->Checkpoint("shutdown"); !st.ok()) INTERLOCK_LOG(kError, "audit: %s", st.message());
  }
  (void)audit_->Flush();
  return fatal_;
}

void Engine::WriteBatched() {
  const absl::Duration batch = absl::Milliseconds(config_.write_batch_ms);
  const absl::Duration now = clock_.Monotonic();
  if (now - last_write_ >= batch) {
    WriteBuffered();
    last_write_ = now;
    return;
  }
  // Not due yet: whatever this iteration buffered is written when the timer fires (its
  // iteration runs this hook again), even if no other event comes.
  if (write_timer_ == 0) {
    write_timer_ = loop_->RunAfter(batch - (now - last_write_), [this] { write_timer_ = 0; });
  }
}

void Engine::WriteBuffered() {
  FlushRecordings();
  if (absl::Status st = audit_->Flush(); !st.ok()) INTERLOCK_LOG(kError, "audit: %s", st.message());
}

void Engine::FlushRecordings() {
  // Only the sessions that buffered something since the last batch (proxy::FlushList); a
  // session leaves the list when it is destroyed, and one that is over writes nothing.
  std::vector<proxy::ProxySession*> failed;
  for (proxy::ProxySession* relay : flushes_.Take()) {
    if (!relay->FlushRecording().ok()) failed.push_back(relay);
  }
  for (proxy::ProxySession* r : failed) {
    // The recording cannot grow (ENOSPC, EIO...): the session ends now, its file unsealed
    // (it verifies as incomplete), and the next new session re-reads the free space.
    const record::Recorder* rec = r->recorder();
    r->Abort("recording_failed", rec != nullptr ? std::string(rec->status().message()) : "recording flush failed");
  }
  if (!failed.empty() && recordings_free_ != nullptr) recordings_free_->Invalidate();
}

void Engine::OnKernelEvents() {
  (void)datapath_->DrainEvents([this](const il_event& e) {
    if (e.kind != IL_EVENT_DENIED) return;  // redirects become sessions, audited there
    ++denied_connects_;
    // No listener of interlockd's in the connecting socket's namespace (or interlockd is
    // stopping): maybe a namespace it has not found yet. The refused connect stays
    // refused; the agent's next one finds the listener.
    if (e.reason == IL_REASON_ENGINE_DOWN) SyncNetnsListenersSoon();
    identity::KernelAttestation att;
    att.cgroup_id = e.cgroup_id;
    att.pid = static_cast<uint32_t>(e.pid_tgid >> 32);
    att.tid = static_cast<uint32_t>(e.pid_tgid);
    att.uid = static_cast<uint32_t>(e.uid_gid);
    att.gid = static_cast<uint32_t>(e.uid_gid >> 32);
    att.comm = std::string(e.comm, strnlen(e.comm, sizeof e.comm));
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_CONNECT_DENIED);
    *ev.mutable_identity() = resolver_->Resolve(att, "");
    ev.mutable_identity()->set_workload(
        SessionWorkloadName(e.workload_id, ev.identity().cgroup_path()));
    const bool unix = e.family == AF_UNIX;
    const config::ResourceConfig* resource = resources_->ById(e.resource_id);
    if (resource != nullptr) ev.set_resource(resource->name);
    std::string where;
    if (unix) {
      // The event has no room for a path: a protected one is the resource's; an unlisted
      // one (default-deny) is not known here.
      where = resource != nullptr ? absl::StrCat("unix socket ", resource->unix_path)
                                  : "an unlisted unix socket";
      if (resource != nullptr) ev.mutable_original_destination()->set_address(resource->unix_path);
      ev.set_protocol("unix");
    } else {
      net::SockAddr dst =
          net::SockAddr::FromMapped(reinterpret_cast<const uint8_t*>(e.dst_addr), e.dst_port);
      *ev.mutable_original_destination() = ToEndpoint(dst);
      where = dst.ToString();
      ev.set_protocol(e.sock_type == 1 ? "tcp" : e.sock_type == 2 ? "udp" : "other");
    }
    ev.set_outcome("denied");
    ev.set_reason(ReasonName(e.reason));
    ev.set_detail(absl::StrCat("connect to ", where, " refused with EPERM"));
    Audit(std::move(ev));
  });
}

void Engine::OnSignal() {
  signalfd_siginfo si;
  while (::read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGHUP) {
      // The policy and the configuration's enrollments reload; other settings need a
      // restart (ReloadConfig audits which). systemd shows "reloading" until READY=1 (a
      // rejected file leaves what is in force: ready).
      (void)notifier_.Reloading(clock_.Monotonic());
      if (policy_ != nullptr) (void)policy_->Reload("sighup");
      v1::ReloadPolicyResponse reloaded;
      if (absl::Status st = ReloadConfig("sighup", &reloaded); !st.ok()) {
        INTERLOCK_LOG(kWarning, "SIGHUP: configuration not reloaded: %s", st.message());
      }
      (void)notifier_.Ready();
      continue;
    }
    if (si.ssi_signo == SIGUSR2) {
      (void)Upgrade("sigusr2");  // audited and logged either way
      continue;
    }
    INTERLOCK_LOG(kInfo, "signal %d: draining %d sessions", si.ssi_signo,
                  static_cast<int>(sessions_.size()));
    BeginDrain();
  }
}

void Engine::BeginDrain() {
  if (draining_) return;
  draining_ = true;
  (void)notifier_.Stopping(absl::StrCat("draining ", sessions_.size(), " sessions"));
  // New connects to protected resources now fail in the kernel (EPERM, engine_down); not
  // after a handover, when they go to the new process.
  if (!handed_over_) (void)datapath_->WriteSettings(Settings(/*accepting=*/false));
  for (UniqueFd& fd : listeners_) loop_->Remove(fd.get());
  listeners_.clear();
  for (auto& [name, l] : unix_listeners_) loop_->Remove(l.fd.get());
  unix_listeners_.clear();
  engine_listener_fds_.clear();
  if (netns_ != nullptr) netns_->CloseAll();
  drain_deadline_ = clock_.Monotonic() + config_.timeouts.drain;
  if (DrainDone()) loop_->Stop();
}

void Engine::PingWatchdog() {
  if (absl::Status st = notifier_.Watchdog(); !st.ok()) INTERLOCK_LOG(kWarning, "%s", st.message());
  loop_->RunAfter(notifier_.watchdog_interval() / 2, [this] { PingWatchdog(); });
}

void Engine::OnTick() {
  // Interval checkpoints and age rotation of the audit file (the new process's, after a
  // handover).
  if (!handed_over_) {
    if (absl::Status st = audit_file_->Tick(); !st.ok()) INTERLOCK_LOG(kError, "audit: %s", st.message());
  }
  absl::Duration now = clock_.Monotonic();
  if (!handed_over_) ApplyRetention("retention", kRetentionInterval);  // the new process's after a handover
  std::vector<proxy::ProxySession*> expired;
  for (auto& [relay, session] : sessions_) {
    if (draining_ && now >= drain_deadline_) {
      expired.push_back(relay);
    } else if (now - relay->last_activity() > config_.timeouts.idle) {
      expired.push_back(relay);
    }
  }
  for (proxy::ProxySession* r : expired) r->Abort(draining_ ? "drain_timeout" : "idle_timeout");
  // Remove ephemeral enrollments once their cgroup is empty (never while a process
  // could still use it: that would un-enforce it).
  std::vector<uint64_t> done;
  for (auto& [id, w] : workloads_) {
    if (!w.unenroll_pending || handed_over_) continue;  // the new process's job after a handover
    auto procs = CgroupProcs(w.cgroup_dir);
    if (procs.ok() && !procs->empty()) continue;
    done.push_back(id);
  }
  for (uint64_t id : done) {
    Workload w = workloads_[id];
    (void)datapath_->Unenroll(id);
    ::rmdir(w.cgroup_dir.c_str());
    resolver_->ForgetCgroup(id);
    token_bindings_.Unbind(w.cgroup_path);
    workloads_.erase(id);
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_ENROLLMENT);
    ev.set_outcome("unenrolled");
    ev.mutable_identity()->set_workload(w.name);
    ev.mutable_identity()->set_cgroup_id(id);
    ev.mutable_identity()->set_cgroup_path(w.cgroup_path);
    Audit(std::move(ev));
  }
  if (!done.empty()) (void)SaveState();
  ReportAuditSinkProblems();
  SyncNetnsListeners();
  if (draining_ && DrainDone()) loop_->Stop();
  loop_->RunAfter(absl::Seconds(1), [this] { OnTick(); });
}

void Engine::ReportAuditSinkProblems() {
  for (audit::sinks::RemoteSink* sink : audit_sinks_) {
    if (std::optional<v1::AuditEvent> ev = audit::sinks::ProblemEvent(*sink, sink->TakeProblems())) {
      INTERLOCK_LOG(kError, "%s", ev->detail());
      Audit(*std::move(ev));
    }
  }
}

void Engine::Audit(v1::AuditEvent event) {
  absl::Status st = audit_->Emit(std::move(event));
  if (!st.ok()) INTERLOCK_LOG(kError, "audit: %s", st.message());
}

}  // namespace interlock::daemon
