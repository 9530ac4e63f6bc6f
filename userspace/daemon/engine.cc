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

namespace interlock::daemon {

namespace {

constexpr char kVersion[] = "0.1.0";
// Below this much free memory budget, new sessions are refused (memory_budget).
constexpr size_t kSessionMemoryFloor = 1 << 20;

v1::Endpoint ToEndpoint(const net::SockAddr& a) {
  v1::Endpoint e;
  e.set_address(a.ip());
  e.set_port(a.port());
  return e;
}

bool ValidWorkloadName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return name != "." && name != "..";
}

const char* ReasonName(uint32_t reason) {
  switch (reason) {
    case IL_REASON_DEFAULT_DENY: return "default_deny";
    case IL_REASON_ENGINE_DOWN: return "engine_down";
    case IL_REASON_NOT_STREAM: return "not_stream";
    case IL_REASON_MAP_FULL: return "map_full";
    case IL_REASON_ENGINE_PORT: return "engine_port_bind";
    case IL_REASON_ENGINE_UNVERIFIED: return "engine_unverified";
    default: return "unknown";
  }
}

std::string CgroupPathRelative(const std::string& mount, const std::string& dir) {
  std::string rel = dir.substr(mount.size());
  return rel.empty() ? "/" : rel;
}

}  // namespace

// Routes epoll readiness for an engine-owned fd to a member function.
class Engine::FdWatcher final : public net::IoHandler {
 public:
  FdWatcher(std::function<void()> fn) : fn_(std::move(fn)) {}
  void OnIo(uint32_t) override { fn_(); }

 private:
  std::function<void()> fn_;
};

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
}

absl::Status Engine::Init() {
  started_ = clock_.Now();
  // Thousands of sessions need thousands of fds (agent + upstream + recording each).
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  ::signal(SIGPIPE, SIG_IGN);

  INTERLOCK_ASSIGN_OR_RETURN(loop_, net::EventLoop::Create(clock_));
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(config_.state_dir, 0700));
  ::chmod(config_.state_dir.c_str(), 0700);
  recordings_dir_ = absl::StrCat(config_.state_dir, "/recordings");
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(recordings_dir_, 0700));
  INTERLOCK_ASSIGN_OR_RETURN(auto sink, audit::JsonLinesSink::Create(
                                            absl::StrCat(config_.state_dir, "/audit/audit.jsonl")));
  audit_ = std::make_unique<audit::AuditLog>(std::move(sink), clock_);
  INTERLOCK_ASSIGN_OR_RETURN(record::RecordingKey key,
                             record::RecordingKey::LoadOrCreate(config_.state_dir));
  key_ = std::make_unique<record::RecordingKey>(std::move(key));
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
                                      if (pg_ == nullptr) {
                                        done(absl::UnavailableError("the PostgreSQL protocol is not started"));
                                        return;
                                      }
                                      pg_->CatalogQuery(catalog, sql, std::move(params), std::move(done));
                                    }));
    if (policy_ != nullptr) {
      INTERLOCK_RETURN_IF_ERROR(masks_->Validate(policy_->current()));
      policy_->SetValidator([this](const policy::PolicyEvaluator& p) { return masks_->Validate(p); });
    }
  }
  {
    ApprovalBrokerOptions ao;
    ao.db_path = absl::StrCat(config_.state_dir, "/approvals.db");
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    ao.host = host;
    ao.approvals = config_.approvals;
    INTERLOCK_ASSIGN_OR_RETURN(approvals_, ApprovalBroker::Create(std::move(ao), loop_.get(), audit_.get(), &clock_));
    approvals_->OnGrantEnded([this](const v1::Grant& g, const std::string& why) { OnGrantEnded(g, why); });
  }

  memory_budget_ = std::make_unique<MemoryBudget>(config_.memory_budget_bytes);
  INTERLOCK_RETURN_IF_ERROR(PrepareCgroups());
  INTERLOCK_RETURN_IF_ERROR(OpenDatapath());
  INTERLOCK_RETURN_IF_ERROR(RestoreEnrollments());
  INTERLOCK_RETURN_IF_ERROR(StartProtocols());
  INTERLOCK_RETURN_IF_ERROR(LoadTokenVerifiers());
  INTERLOCK_RETURN_IF_ERROR(Listen());

  // Signals arrive through the loop, never in a handler.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
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
  INTERLOCK_ASSIGN_OR_RETURN(
      control_,
      control::ControlServer::Create(
          *loop_, config_.control_socket, admin_gid,
          [this](const std::string& path) { return IsEnrolledCgroup(path); },
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
  ev.set_detail(absl::StrCat("interlockd ", kVersion, " pid ", ::getpid(),
                             datapath_->readopted() ? ", re-adopted pinned datapath" : ""));
  Audit(std::move(ev));
  INTERLOCK_LOG(kInfo, "ready: listening on %s port %d, %s datapath, relay %s",
                config_.listener.address_v4.text, config_.listener.port,
                datapath_->readopted() ? "re-adopted" : "new",
                config_.relay_mode == config::RelayMode::kPlain ? "plain" : "sockmap");
  return absl::OkStatus();
}

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
  opts.cgroup_dir = cgroup_root_dir_;
  opts.settings = Settings(/*accepting=*/false);
  INTERLOCK_ASSIGN_OR_RETURN(datapath_, bpf::Datapath::Open(opts));
  std::vector<bpf::ResourceEntry> entries;
  for (const config::ResourceConfig& r : config_.resources) {
    bpf::ResourceEntry e;
    e.addr = r.prefix.address.bytes;
    e.prefix_bits = r.prefix.prefix_bits;
    e.port = r.port;
    e.value.resource_id = r.id;
    entries.push_back(e);
  }
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetResources(entries));
  std::vector<bpf::UnixResourceEntry> unix_entries;
  for (const config::ResourceConfig& r : config_.resources) {
    if (r.unix_path.empty()) continue;
    if (!datapath_->unix_hooks()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "resource ", r.name, ": unix_path ", r.unix_path, " needs the kernel's "
          "cgroup/connect_unix and getpeername_unix hooks (Linux >= 6.7, with the kfunc "
          "bpf_sock_addr_set_sun_path); this kernel has not got them, so connects to that "
          "path could not be redirected. Remove unix_path, or upgrade the kernel"));
    }
    unix_entries.push_back(
        bpf::UnixResourceEntry{r.unix_path, config_.listener.UnixListenerPath(r.name), r.id});
  }
  INTERLOCK_RETURN_IF_ERROR(datapath_->SetUnixResources(unix_entries));

  std::vector<config::AllowedDestinationConfig> allow;
  if (config_.default_deny_allow.has_value()) {
    allow = *config_.default_deny_allow;
  } else {
    // The documented default: the resolvers of /etc/resolv.conf, port 53. A missing file
    // means no resolver, and so no exception.
    auto text = ReadFile("/etc/resolv.conf");
    if (text.ok()) allow = config::DefaultDenyAllowFromResolvConf(*text);
  }
  std::vector<bpf::ResourceEntry> allowed;
  for (const config::AllowedDestinationConfig& a : allow) {
    bpf::ResourceEntry e;
    e.addr = a.prefix.address.bytes;
    e.prefix_bits = a.prefix.prefix_bits;
    e.port = a.port;
    allowed.push_back(e);
  }
  return datapath_->SetAllowedDestinations(allowed);
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

absl::Status Engine::StartProtocols() {
  proxy::ProtocolEnv env;
  env.loop = loop_.get();
  env.audit = audit_.get();
  env.clock = &clock_;
  env.policy = policy_ != nullptr ? policy_->current_ptr() : nullptr;
  env.approvals = approvals_.get();
  env.grants = approvals_.get();
  env.memory = memory_budget_.get();
  env.connect_timeout = config_.timeouts.connect;
  env.state_dir = config_.state_dir;
  protocols_.Add(config::Protocol::kTcp, std::make_unique<proxy::TcpProtocol>(env));
  INTERLOCK_ASSIGN_OR_RETURN(auto pg, proxy::pg::PgProtocol::Create(env, config_.resources, masks_.get()));
  pg_ = pg.get();
  protocols_.Add(config::Protocol::kPostgres, std::move(pg));
  INTERLOCK_ASSIGN_OR_RETURN(auto http, proxy::http::HttpProtocol::Create(env, config_.resources));
  protocols_.Add({config::Protocol::kHttp, config::Protocol::kHttps}, std::move(http));
  return absl::OkStatus();
}

absl::Status Engine::LoadTokenVerifiers() {
  for (const config::ResourceConfig& r : config_.resources) {
    if (!r.postgres.has_value()) continue;
    const config::PostgresConfig& pg = *r.postgres;
    std::unique_ptr<auth::TokenVerifier> jwt, fixed;
    if (!pg.token_issuers.empty()) {
      std::vector<auth::jwt::IssuerConfig> issuers;
      for (const std::string& name : pg.token_issuers) {
        for (const config::OidcIssuerConfig& o : config_.oidc_issuers) {
          if (o.name != name) continue;
          auth::jwt::IssuerConfig c;
          c.issuer = o.issuer;
          c.audiences = o.audiences;
          c.algorithms = o.algorithms;
          c.jwks_file = o.jwks_file;
          c.jwks_uri = o.jwks_uri;
          c.discovery = o.discovery;
          c.ca_file = o.ca_file;
          c.clock_skew = o.clock_skew;
          c.groups_claim = o.groups_claim;
          c.min_refresh_interval = o.min_refresh_interval;
          c.max_token_lifetime = o.max_token_lifetime;
          c.require_low_s = o.require_low_s;
          issuers.push_back(std::move(c));
        }
      }
      // Keys are fetched and kept fresh by the verifier's own thread, off the event loop.
      auto v = auth::jwt::JwtVerifier::Create(std::move(issuers), clock_, nullptr, /*background_refresh=*/true);
      if (!v.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": token issuers: ", v.status().message()));
      }
      jwt = std::move(*v);
    }
    if (!pg.token_sha256.empty()) fixed = std::make_unique<auth::StaticTokenVerifier>(pg.token_sha256);
    if (jwt == nullptr && fixed == nullptr) continue;
    token_verifiers_[r.id] = std::make_unique<BindingVerifier>(
        std::make_unique<AnyTokenVerifier>(std::move(jwt), std::move(fixed)), &token_bindings_);
  }
  return absl::OkStatus();
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
    INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, net::ListenTcp(a, 4096));
    int raw = fd.get();
    INTERLOCK_RETURN_IF_ERROR(datapath_->MarkEngineListener(raw));
    watchers_.push_back(std::make_unique<FdWatcher>([this, raw] { OnAccept(raw); }));
    INTERLOCK_RETURN_IF_ERROR(loop_->Add(raw, EPOLLIN, watchers_.back().get()));
    listeners_.push_back(std::move(fd));
  }
  // One unix listener per resource with a unix_path, in a directory nobody but root can
  // write (so nobody else can put a socket where redirected connects arrive).
  for (const config::ResourceConfig& r : config_.resources) {
    if (r.unix_path.empty()) continue;
    INTERLOCK_RETURN_IF_ERROR(UnixListenerDir());
    const std::string path = config_.listener.UnixListenerPath(r.name);
    INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, net::ListenUnix(path, 0666));
    int raw = fd.get();
    const config::ResourceConfig* rp = &r;
    watchers_.push_back(std::make_unique<FdWatcher>([this, raw, rp] { OnAcceptUnix(raw, rp); }));
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
                  loop_.get(), datapath_.get(), std::move(nopts),
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

std::vector<pid_t> Engine::EnrolledPids() const {
  std::vector<pid_t> pids;
  for (const auto& [id, w] : workloads_) {
    std::vector<pid_t> in = CgroupTreeProcs(w.cgroup_dir);
    pids.insert(pids.end(), in.begin(), in.end());
  }
  return pids;
}

void Engine::SyncNetnsListeners() {
  netns_sync_pending_ = false;
  if (netns_ == nullptr || draining_) return;
  last_netns_sync_ = clock_.Monotonic();
  netns_->Sync(EnrolledPids());
}

void Engine::SyncNetnsListenersSoon() {
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
  INTERLOCK_RETURN_IF_ERROR(loop_->Run());
  std::vector<proxy::ProxySession*> left;
  for (auto& [relay, session] : sessions_) left.push_back(relay);
  for (proxy::ProxySession* r : left) r->Abort("shutdown");
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_DAEMON);
  ev.set_outcome("stopped");
  Audit(std::move(ev));
  (void)audit_->Flush();
  return fatal_;
}

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
  std::string workload;
  for (const auto& [id, w] : workloads_) {
    if (w.workload_id == info->workload_id) {
      workload = w.name;
      break;
    }
  }
  v1::WorkloadIdentity who = resolver_->Resolve(att, workload);

  if (info->resource_id == 0 || info->resource_id > config_.resources.size()) {
    RejectConnection("unknown_resource", absl::StrCat("resource id ", info->resource_id), &who);
    return;
  }
  const config::ResourceConfig& resource = config_.resources[info->resource_id - 1];
  net::SockAddr original = net::SockAddr::FromMapped(
      reinterpret_cast<const uint8_t*>(info->orig_addr), info->orig_port);
  net::SockAddr upstream = original;
  if (resource.upstream_address.has_value() || resource.upstream_port != 0) {
    const uint8_t* a = resource.upstream_address.has_value()
                           ? resource.upstream_address->bytes.data()
                           : reinterpret_cast<const uint8_t*>(info->orig_addr);
    upstream = net::SockAddr::FromMapped(
        a, resource.upstream_port != 0 ? resource.upstream_port : info->orig_port);
  }
  StartSessionFor(std::move(agent), who, resource, original, upstream);
}

void Engine::OnAcceptUnix(int listen_fd, const config::ResourceConfig* resource) {
  for (int i = 0; i < 64 && !draining_; ++i) {
    auto fd = net::AcceptTcp(listen_fd);  // accept4 is the same for unix sockets
    if (!fd.ok()) {
      INTERLOCK_LOG(kWarning, "accept %s: %s", config_.listener.UnixListenerPath(resource->name),
                    fd.status().message());
      return;
    }
    if (!fd->has_value()) return;
    StartUnixSession(std::move(**fd), *resource);
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

void Engine::StartUnixSession(UniqueFd agent, const config::ResourceConfig& resource) {
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
  const Workload* w = WorkloadForCgroupPath(cgroup_path);
  v1::WorkloadIdentity who = resolver_->Resolve(*att, w != nullptr ? w->name : "");
  if (w == nullptr) {
    RejectConnection("not_enrolled",
                     absl::StrCat("unix connection to ", listener, " from pid ", att->pid, " uid ",
                                  att->uid, " in cgroup ", cgroup_path,
                                  ", which is not enrolled: only redirected workloads are served"),
                     &who);
    return;
  }
  const net::SockAddr path = net::SockAddr::Unix(resource.unix_path);
  StartSessionFor(std::move(agent), who, resource, path, path);
}

void Engine::StartSessionFor(UniqueFd agent, const v1::WorkloadIdentity& who,
                             const config::ResourceConfig& resource, const net::SockAddr& original,
                             const net::SockAddr& upstream) {
  proxy::Protocol* protocol = protocols_.For(resource.protocol);
  if (protocol == nullptr) {
    RejectConnection("internal", absl::StrCat("resource ", resource.name, ": no protocol plug-in"), &who);
    return;
  }
  // An agent refused here is told why in its own protocol, where it has words for it.
  auto tell = [&](proxy::Refusal why) {
    const std::string bytes = protocol->RefusalBytes(why);
    if (!bytes.empty()) (void)!::send(agent.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  };
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

  auto session = std::make_unique<Session>();
  session->id = audit::RandomId();
  session->identity = who;
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
  auto recorder = record::Recorder::Create(absl::StrCat(recordings_dir_, "/", session->id, ".rec"), open, *key_,
                                           clock_, ropts);
  if (!recorder.ok()) {
    // Fail closed: a session that cannot be recorded does not happen.
    RejectConnection("recording_failed", std::string(recorder.status().message()), &who);
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
  if (auto v = token_verifiers_.find(resource.id); v != token_verifiers_.end()) {
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
  Audit(std::move(ev));
  // The relay is inside its own callback: destroy it after this dispatch batch.
  Session* raw = session.release();
  loop_->Defer([raw] { delete raw; });
  if (draining_ && sessions_.empty()) loop_->Stop();
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
  std::vector<proxy::ProxySession*> failed;
  for (auto& [relay, session] : sessions_) {
    if (!relay->FlushRecording().ok()) failed.push_back(relay);
  }
  for (proxy::ProxySession* r : failed) r->Abort("recording_failed", "recording flush failed");
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
    std::string workload;
    for (const auto& [id, w] : workloads_) {
      if (w.workload_id == e.workload_id) workload = w.name;
    }
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_CONNECT_DENIED);
    *ev.mutable_identity() = resolver_->Resolve(att, workload);
    const bool unix = e.family == AF_UNIX;
    const config::ResourceConfig* resource =
        e.resource_id > 0 && e.resource_id <= config_.resources.size()
            ? &config_.resources[e.resource_id - 1]
            : nullptr;
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
      // The policy reloads; the rest of the configuration needs a restart.
      if (policy_ != nullptr) (void)policy_->Reload("sighup");
      else INTERLOCK_LOG(kInfo, "SIGHUP: no policy_file configured; other settings need a restart");
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
  // New connects to protected resources now fail in the kernel (EPERM, engine_down).
  (void)datapath_->WriteSettings(Settings(/*accepting=*/false));
  for (UniqueFd& fd : listeners_) loop_->Remove(fd.get());
  listeners_.clear();
  if (netns_ != nullptr) netns_->CloseAll();
  drain_deadline_ = clock_.Monotonic() + config_.timeouts.drain;
  if (sessions_.empty()) loop_->Stop();
}

void Engine::OnTick() {
  absl::Duration now = clock_.Monotonic();
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
    if (!w.unenroll_pending) continue;
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
  SyncNetnsListeners();
  if (draining_ && sessions_.empty()) loop_->Stop();
  loop_->RunAfter(absl::Seconds(1), [this] { OnTick(); });
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

v1::StatusResponse Engine::Status() {
  v1::StatusResponse s;
  s.set_version(kVersion);
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
  for (const auto& [id, w] : workloads_) {
    v1::EnrolledWorkload* out = s.add_workloads();
    out->set_name(w.name);
    out->set_cgroup_path(w.cgroup_path);
    out->set_cgroup_id(w.cgroup_id);
    out->set_default_deny(w.default_deny);
    out->set_ephemeral(w.ephemeral);
    out->set_token_file(w.token_file);
  }
  if (auto stats = datapath_->ReadStats(); stats.ok()) {
    s.set_kernel_redirected(stats->redirected);
    s.set_kernel_denied(stats->denied);
    s.set_spliced_messages(stats->spliced_msgs);
    s.set_events_dropped(stats->events_dropped);
  }
  s.set_pin_path(config_.pin_path);
  s.set_cgroup_root(cgroup_root_dir_);
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
      if (policy_ == nullptr) return fail(absl::FailedPreconditionError("no policy_file is configured")), resp;
      absl::Status st = policy_->Reload("control");
      if (!st.ok()) return fail(st), resp;
      resp.mutable_reload_policy()->set_rules(policy_->current().policy().rules_size());
      resp.mutable_reload_policy()->set_policy_file(policy_->path());
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

void Engine::Audit(v1::AuditEvent event) {
  absl::Status st = audit_->Emit(std::move(event));
  if (!st.ok()) INTERLOCK_LOG(kError, "audit: %s", st.message());
}

}  // namespace interlock::daemon
