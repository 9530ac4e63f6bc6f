// Engine: interlockd wired together. Owns the event loop, the kernel datapath, the
// engine listeners, the live sessions, enrollments, the control server and the audit
// log. One thread; everything runs on the loop.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto engine, Engine::Create(config, RealClock::Get()));
//   return engine->Run();   // returns after SIGTERM/SIGINT and a drain
//
// Start-up order matters for fail-closed: the datapath is opened (or re-adopted) with
// "engine accepting" cleared, the listeners are bound, and only then is the flag set.
// On SIGTERM the flag is cleared first (new connects: EPERM), listeners close, live
// sessions get drain_timeout to finish, the rest are aborted and sealed.
//
// Under systemd (Type=notify) Run() reports READY=1 before the loop starts, STOPPING=1 when
// the drain begins, RELOADING=1 and READY=1 around a SIGHUP reload, and WATCHDOG=1 from a
// loop timer at half WatchdogSec= (a wedged loop stops pinging and systemd restarts it).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "interlock/v1/control.pb.h"
#include "interlock/v1/state.pb.h"
#include "userspace/audit/audit_log.h"
#include "userspace/audit/sinks/sink_factory.h"
#include "userspace/bpf/datapath.h"
#include "userspace/common/clock.h"
#include "userspace/common/memory_budget.h"
#include "userspace/config/config.h"
#include "userspace/control/metrics_server.h"
#include "userspace/control/server.h"
#include "userspace/daemon/approval_broker.h"
#include "userspace/daemon/handover.h"
#include "userspace/daemon/mask_service.h"
#include "userspace/daemon/netns_listeners.h"
#include "userspace/daemon/policy_watcher.h"
#include "userspace/daemon/token_bindings.h"
#include "userspace/identity/workload_identity.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/service_notifier.h"
#include "userspace/net/socket.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/net/tls.h"
#include "userspace/proxy/core/protocol.h"
#include "userspace/proxy/http/http_protocol.h"
#include "userspace/record/file_cache.h"
#include "userspace/proxy/pg/pg_protocol.h"
#include "userspace/record/retention.h"
#include "userspace/record/session_index.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/spare_files.h"

namespace interlock::daemon {

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(config::ServiceConfig config,
                                                        const Clock& clock);
  ~Engine();

  // Runs until SIGTERM/SIGINT, then drains. Returns the first fatal error, if any.
  absl::Status Run();

  // `interlock upgrade` / SIGUSR2 (engine_upgrade.cc, handover.h): starts the interlockd on
  // disk with this process's listening sockets and waits until it serves. Then this process
  // stops accepting, sends its audit events to the new one, drains its sessions and exits.
  // On failure (the error says why) it keeps serving; both outcomes are audited.
  absl::StatusOr<v1::UpgradeResponse> Upgrade(const std::string& trigger);

 private:
  // The resources in force and what is built from them: the protocol plug-ins (TLS
  // contexts, the interception CA, credentials, planner connections) and the token
  // verifiers (engine_resources.cc). A reload that changes resources builds a new one for
  // new sessions; each session holds the one it started under, so a live session keeps
  // the resource as it was (upstream, login, TLS) and an old one goes with its last session.
  struct Resources {
    std::vector<config::ResourceConfig> list;  // ids stable across reloads (by name)
    proxy::ProtocolRegistry protocols;
    proxy::pg::PgProtocol* pg = nullptr;  // in protocols: masking's catalog reads
    absl::flat_hash_map<uint32_t, std::unique_ptr<auth::TokenVerifier>> token_verifiers;  // by id
    const config::ResourceConfig* ById(uint32_t id) const;
    const config::ResourceConfig* ByName(const std::string& name) const;
  };
  struct Session {
    std::string id;
    v1::WorkloadIdentity identity;
    // Before relay: the relay (and its plug-in's state) goes first.
    std::shared_ptr<Resources> resources;
    const config::ResourceConfig* resource = nullptr;  // in resources->list
    v1::Endpoint original_destination;
    v1::Endpoint upstream;
    absl::Time started;
    absl::Duration started_mono;
    std::string protocol;  // the plug-in's name ("postgres", "tcp")
    std::unique_ptr<proxy::ProxySession> relay;
  };
  struct Workload {
    std::string name;
    uint32_t workload_id = 0;
    std::string cgroup_dir;   // absolute
    std::string cgroup_path;  // relative to the cgroup2 mount
    uint64_t cgroup_id = 0;
    bool default_deny = false;
    bool ephemeral = false;
    bool unenroll_pending = false;  // removed from the map once its cgroup is empty
    std::string token_file;         // bound token, if any
    std::string unit;               // the enrolled unit or slice it was found as, if any
  };
  class FdWatcher;

  Engine(config::ServiceConfig config, const Clock& clock);
  absl::Status Init();
  absl::Status PrepareCgroups();
  absl::Status OpenDatapath();
  // The kernel's resource, unix resource and allowed-destination tables from config_.
  absl::Status WriteDatapathTables();
  absl::Status RestoreEnrollments();
  absl::Status Listen();
  // Resources (engine_resources.cc). Builds the plug-ins and token verifiers for `list`
  // (PostgreSQL loads agent TLS certificates, HTTPS the interception CA, issuers their
  // keys: a bad one fails start-up or the reload, not the first connection), sharing what
  // must span generations with the one in force.
  absl::StatusOr<std::shared_ptr<Resources>> BuildResources(
      std::vector<config::ResourceConfig> list, const std::vector<config::OidcIssuerConfig>& issuers,
      const config::TimeoutConfig& timeouts);
  // Gives `list` the ids of the resources in force with the same names and fresh ones to
  // new names, so that an id the kernel stamped on a connect never names another resource.
  void AssignResourceIds(std::vector<config::ResourceConfig>& list);
  // Makes the kernel's resource maps and the unix listeners match `r`: listeners for new
  // unix paths open before the kernel redirects to them, unused ones close after.
  absl::Status ApplyResources(const Resources& r);
  // Stops serving resource `name`'s unix listener and removes its socket file.
  void CloseUnixListener(const std::string& name);
  // Sends the kernel the destinations default-deny workloads may still reach.
  absl::Status ApplyAllowedDestinations();
  // Masking's catalog reads: on the connection of whichever resource generation's
  // PostgreSQL plug-in registered `catalog` (the current one first).
  void CatalogQuery(const std::string& catalog, const std::string& sql,
                    std::vector<std::optional<std::string>> params,
                    std::function<void(absl::StatusOr<proxy::pg::QueryRows>)> done);
  // Audit sinks of `fresh` whose settings changed or that are new are created (nothing is
  // applied when one fails); on success sinks gone from `fresh` or changed are replaced.
  // `changed` lists them by name.
  absl::Status ReloadSinks(const config::ServiceConfig& fresh, std::vector<std::string>* changed);
  il_settings Settings(bool accepting) const;

  void OnAccept(int listen_fd);
  // A unix listener of the resource named `resource` (looked up when a connection comes:
  // the resource may have been reloaded since the listener opened).
  void OnAcceptUnix(int listen_fd, const std::string& resource);
  // Creates listener.unix_dir, and checks nobody but root can write it.
  absl::Status UnixListenerDir();
  // Who connected to a unix listener: SO_PEERCRED, the peer's cgroup read while its
  // SO_PEERPIDFD pins it. `cgroup_path` is relative to the cgroup2 mount.
  absl::StatusOr<identity::KernelAttestation> UnixPeer(int fd, std::string& cgroup_path);
  // The enrollment governing `cgroup_path`: its own or its nearest enrolled ancestor's.
  const Workload* WorkloadForCgroupPath(const std::string& cgroup_path) const;
  // The workload name of a process in `cgroup_path` (relative to the mount) with these
  // ids, by the same precedence as the kernel's hooks: the cgroup's enrollment or its
  // nearest enrolled ancestor's (cgroup, or unit/slice by name), else its uid's, else its
  // gid's. nullopt when nothing enrolls it.
  std::optional<std::string> EnrolledWorkloadFor(const std::string& cgroup_path, uint32_t uid,
                                                 uint32_t gid) const;
  // The workload name for a kernel-attested connection: the name its workload id stands
  // for, or, for an enrolled slice, the unit below the slice that `cgroup_path` is in.
  std::string SessionWorkloadName(uint32_t workload_id, const std::string& cgroup_path) const;
  // The cgroups of the configured enrollments as they are now: by path, and every cgroup
  // below the attach point named like an enrolled unit or slice.
  std::vector<std::pair<const config::EnrollmentConfig*, std::string>> ConfigCgroupDirs(
      const std::vector<config::EnrollmentConfig>& enrollments) const;
  // Enrollments by path must be below the attach point; none may cover interlockd's own
  // cgroup.
  absl::Status CheckEnrollmentCgroups(const std::vector<config::EnrollmentConfig>& enrollments) const;
  // The configuration's enrollments with `runtime` ones (`interlock enroll`) added,
  // validated together; `where` names their source in messages.
  absl::StatusOr<std::vector<config::EnrollmentConfig>> EnrollmentsWith(
      const v1::Config& base, const google::protobuf::RepeatedPtrField<v1::Enrollment>& runtime,
      const std::string& where) const;
  // SIGHUP / `interlock reload`: re-reads the configuration file; its enrollments apply at
  // once (audited), other changed settings are listed in `out` as needing a restart. An
  // invalid file is rejected (audited, file:line: field) and nothing changes.
  absl::Status ReloadConfig(const std::string& trigger, v1::ReloadPolicyResponse* out);
  // Brings the kernel's tables and workloads_ in line with config_.enrollments. At start
  // (`readopt`) the kernel map's entries are re-adopted or dropped; later, the cgroups of
  // enrollments that went away are dropped.
  absl::Status ApplyEnrollments(bool readopt);
  absl::StatusOr<v1::EnrollWorkloadResponse> EnrollWorkload(const v1::Enrollment& enrollment,
                                                            const control::Caller& caller);
  absl::Status UnenrollWorkload(const std::string& name, const control::Caller& caller);
  void AuditRuntimeEnrollment(const std::string& outcome, const std::string& name,
                              const v1::EnrollWorkloadResponse& what, const control::Caller& caller);
  void StartUnixSession(UniqueFd agent, const std::shared_ptr<Resources>& resources,
                        const config::ResourceConfig& resource);
  // A session for an identified agent: `original` is what it dialled, `upstream` where
  // interlockd connects.
  void StartSessionFor(UniqueFd agent, const v1::WorkloadIdentity& who,
                       const std::shared_ptr<Resources>& resources,
                       const config::ResourceConfig& resource, const net::SockAddr& original,
                       const net::SockAddr& upstream);
  // Pids of every process in an enrolled cgroup's subtree (host pid namespace), and of
  // enrolled users and groups. `rescan`: walk the hierarchy for enrolled units' cgroups
  // now rather than use the last walk (kUnitDirsRescan).
  std::vector<pid_t> EnrolledPids(bool rescan);
  // Listeners in other network namespaces brought in line with the configuration and
  // the enrolled processes; `soon` coalesces calls made while events arrive.
  void SyncNetnsListeners();
  void SyncNetnsListenersSoon();
  void StartSession(UniqueFd agent);
  void OnSessionDone(proxy::ProxySession* relay);

  // Recordings' disk (engine_recordings.cc): the free-space floor, retention, the index.
  // Opens the index and drops entries of recordings that are gone.
  absl::Status InitRecordings();
  // True (and `detail` says why) when a new session must be refused for lack of disk:
  // below recordings.min_free_mib, or the free space cannot be read.
  bool RecordingDiskFull(std::string* detail);
  // Deletes the oldest finished recordings past recordings.retain_mib / retain_days, each
  // audited (DAEMON, "recording_deleted"); `why` goes in the events ("retention",
  // "disk_full"). Does nothing when the last run is less than `min_gap` ago. The first run
  // and any that deleted also rewrite the index without the entries of missing files.
  void ApplyRetention(const char* why, absl::Duration min_gap);
  // Appends the ended session's summary to the index (a failure is logged, not fatal:
  // the CLI reads a recording without an entry from its file).
  void IndexSession(const Session& session, const proxy::ProxySession& relay);
  // Fills the recordings' part of a StatusResponse.
  void RecordingsStatus(v1::StatusResponse* out);
  // Starts the Prometheus endpoint when configured (config metrics).
  absl::Status StartMetrics();
  void OnKernelEvents();
  void FlushRecordings();
  // Iteration hook: writes buffered recordings and audit lines when write_batch_ms has
  // passed since the last write, else makes sure a timer will come back for them.
  void WriteBatched();
  void WriteBuffered();
  void OnSignal();
  void OnTick();
  void BeginDrain();
  // Live upgrade (engine_upgrade.cc). The old process, after answering: listeners and the
  // control socket go, sessions drain, the kernel's accepting flag stays set.
  void FinishHandover();
  // Reaps the new process (this one's child) should it exit while this one drains.
  void ReapUpgradeChild(pid_t pid);
  // After a failed upgrade: the new process may have got as far as the kernel (programs,
  // settings, tables, enrollments of its configuration): this one's are written back.
  absl::Status RestoreKernelState();
  // Draining may end: no live session, and no older process's audit stream to relay.
  bool DrainDone() const;
  // The new process: events the old one forwards on the handover's audit stream.
  absl::Status StartHandoverAudit();
  void OnHandoverAudit();
  // A fresh chained file sink on the configured audit file (its head re-read).
  absl::StatusOr<std::unique_ptr<audit::JsonLinesSink>> OpenAuditFile();
  absl::Status ReopenAuditFile();
  // WATCHDOG=1 now, and again after half the watchdog interval (a timer on the loop).
  void PingWatchdog();
  void RejectConnection(const std::string& reason, const std::string& detail,
                        const v1::WorkloadIdentity* who);

  v1::ControlResponse HandleApprovals(const v1::ControlRequest& req, const control::Caller& caller);
  v1::Approver ApproverOf(const control::Caller& caller) const;
  void OnGrantEnded(const v1::Grant& grant, const std::string& why);
  v1::ControlResponse HandleControl(const v1::ControlRequest& req, const control::Caller& caller);
  absl::StatusOr<v1::EnrollResponse> Enroll(const std::string& name, bool default_deny,
                                            const std::string& token_file);
  // The cgroups of every enrollment named `workload` and the uids it runs as (owners of
  // the processes in those cgroups, uids of its live sessions), for the self-grant rule.
  // Not the uid that enrolled it: `interlock run` is the operator's launcher (often root,
  // the agent dropping to its own uid with setpriv), and counting it would stop the same
  // operator from granting; an agent that enrolls itself runs as its own uid anyway.
  GrantSubject GrantSubjectOf(const std::string& workload) const;
  absl::Status Unenroll(uint64_t cgroup_id);
  v1::StatusResponse Status();
  bool IsEnrolledCaller(const control::Caller& caller) const;
  uint32_t WorkloadIdFor(const std::string& name);
  absl::Status SaveState();
  void Audit(v1::AuditEvent event);
  // A DAEMON audit event for each sink that dropped or had events rejected since the last
  // call (OnTick).
  void ReportAuditSinkProblems();

  config::ServiceConfig config_;
  const Clock& clock_;
  // Descriptors of the recordings being written: only the recently used sessions hold one,
  // so an idle session holds its two sockets and nothing else (sized in Init from the
  // open-files limit). Before the loop and the sessions: they go first.
  std::unique_ptr<record::FileCache> recording_files_;
  // Recording files made ahead of time by a thread of their own (their descriptors come out
  // of the same budget as recording_files_).
  std::unique_ptr<record::SpareFiles> recording_spares_;
  // The sessions with recording bytes to write this batch (FlushRecordings). Before the
  // loop and the sessions: a session leaves it when destroyed, so it must outlive them.
  proxy::FlushList flushes_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<bpf::Datapath> datapath_;
  std::unique_ptr<audit::AuditLog> audit_;
  audit::JsonLinesSink* audit_file_ = nullptr;  // owned by audit_
  // The remote sinks (config audit.sinks), owned by audit_: for status and drop reports.
  std::vector<audit::sinks::RemoteSink*> audit_sinks_;
  std::unique_ptr<record::RecordingKey> key_;
  std::string auditor_public_key_;  // X25519, raw; empty: masked originals are not kept
  std::unique_ptr<identity::IdentityResolver> resolver_;
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<PolicyWatcher> policy_;      // null: no policy configured
  std::unique_ptr<ApprovalBroker> approvals_;
  // What all sessions' buffers may hold together (config memory_budget_mib).
  std::unique_ptr<MemoryBudget> memory_budget_;
  TokenBindings token_bindings_;
  std::unique_ptr<MaskService> masks_;
  // The resources in force (a plug-in per resource protocol; the engine core knows none
  // of them), and earlier generations that live sessions still hold.
  std::shared_ptr<Resources> resources_;
  std::vector<std::weak_ptr<Resources>> earlier_resources_;
  uint32_t next_resource_id_ = 1;
  std::vector<std::unique_ptr<FdWatcher>> watchers_;
  std::vector<UniqueFd> listeners_;
  // The unix listeners, by resource name, with their watchers.
  struct UnixListener {
    UniqueFd fd;
    std::unique_ptr<FdWatcher> watcher;
  };
  absl::flat_hash_map<std::string, UnixListener> unix_listeners_;
  std::vector<int> engine_listener_fds_;  // the TCP ones in listeners_ (marked in the kernel)
  std::unique_ptr<NetnsListeners> netns_;  // listeners in other network namespaces
  bool netns_sync_pending_ = false;
  bool netns_sync_rescan_ = false;  // the pending sync walks the hierarchy afresh
  // Enrolled units' cgroups as the last walk found them, and when (monotonic).
  std::vector<std::string> unit_dirs_;
  absl::Duration unit_dirs_scanned_ = -absl::InfiniteDuration();
  absl::Duration last_netns_sync_ = -absl::InfiniteDuration();  // monotonic
  UniqueFd signal_fd_;
  net::ServiceNotifier notifier_;  // systemd's NOTIFY_SOCKET; disabled without one
  // Live upgrade (handover.h): inherited sockets in a new process, the listener factory in
  // every process.
  std::unique_ptr<Handover> handover_;
  bool handed_over_ = false;          // old process: the new one serves; draining
  UniqueFd upgrade_audit_out_;        // old process: audit events to the new one
  UniqueFd handover_audit_;           // new process: audit events from the old one
  std::string handover_audit_buf_;
  std::unique_ptr<net::IoHandler> handover_audit_watcher_;

  std::string cgroup_mount_;
  std::string cgroup_root_dir_;
  std::string attach_dir_;          // absolute: where the programs are attached
  uint64_t daemon_cgroup_id_ = 0;   // interlockd's own cgroup, exempt from enforcement
  std::string daemon_cgroup_path_;  // relative to the mount
  std::string recordings_dir_;
  std::unique_ptr<record::FreeSpaceGauge> recordings_free_;
  std::unique_ptr<record::RecordingIndex> recordings_index_;  // null: could not be opened
  absl::Duration last_retention_ = -absl::InfiniteDuration();  // monotonic
  uint64_t recordings_deleted_ = 0;
  uint64_t refused_disk_full_ = 0;
  // The last scan of the recordings directory for status (files, bytes) and when (monotonic).
  uint64_t recordings_files_ = 0;
  uint64_t recordings_bytes_ = 0;
  absl::Duration recordings_scanned_ = -absl::InfiniteDuration();
  absl::flat_hash_map<std::string, uint64_t> sessions_total_by_resource_;
  // The Prometheus endpoint (config metrics); null when off.
  std::unique_ptr<control::MetricsServer> metrics_;
  absl::flat_hash_map<proxy::ProxySession*, std::unique_ptr<Session>> sessions_;
  absl::flat_hash_map<uint64_t, Workload> workloads_;  // by cgroup id
  v1::EnrollmentState state_;
  uint64_t enroll_counter_ = 0;

  absl::Duration last_write_;                 // monotonic
  net::EventLoop::TimerId write_timer_ = 0;  // pending WriteBatched wake-up, or 0

  bool draining_ = false;
  absl::Duration drain_deadline_;
  absl::Time started_;
  uint64_t total_sessions_ = 0;
  uint64_t denied_connects_ = 0;
  absl::Status fatal_;
};

}  // namespace interlock::daemon
