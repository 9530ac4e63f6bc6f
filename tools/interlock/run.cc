// interlock run: start a command as an enrolled, unprivileged workload.
//
// The daemon creates a fresh cgroup under <cgroup_root>/workloads and enrolls it in the
// kernel map before we fork; the child moves itself into that cgroup, drops to the
// agent's user (no capabilities, no supplementary groups, no_new_privs), marks every
// inherited fd above 2 (and above --preserve-fds) close-on-exec, and only then execs, so
// not one instruction of CMD runs unenrolled or privileged. The cgroup is root-owned: the
// agent cannot leave it.
//
// Exit status: CMD's (128+N for a signal); 126/127 when CMD cannot be executed / found;
// 125 for our own failures (arguments, users, enrollment, the child's set-up), like
// env(1), timeout(1) and `docker run`. The child reports a set-up failure through a
// CLOEXEC pipe that exec closes, so the parent can tell "never started" from "CMD failed".
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/interlock/cli.h"
#include "tools/interlock/trust.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/privileges.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/client.h"

extern char** environ;

namespace interlock::cli {

namespace {

constexpr int kExitSetupFailed = 125;

constexpr char kRunHelp[] =
    "Runs CMD in a new cgroup enrolled as workload NAME. Its connections to protected\n"
    "resources go through interlockd; with --default-deny every other destination is\n"
    "refused (EPERM). --token-file binds an OIDC token file to the enrollment: interlockd\n"
    "reads it (re-reading it when it changes) and CMD's sessions carry its identity; the\n"
    "token is refused from any other cgroup.\n"
    "\n"
    "CMD runs unprivileged: as --user (default: $SUDO_UID/$SUDO_GID, the user who ran\n"
    "sudo), with its primary group or --group, no supplementary groups, no capabilities\n"
    "(also none in the bounding and ambient sets) and no_new_privs (setuid binaries do not\n"
    "raise it), in a new session (setsid: the invoker's terminal is not its controlling\n"
    "tty, so it cannot inject input into it). HOME, USER and LOGNAME are set for that\n"
    "user (if it has a passwd entry).\n"
    "An agent running as root is refused unless --allow-root is given: root can detach\n"
    "or unpin interlock's BPF programs, move itself out of its cgroup, kill interlockd\n"
    "and read its state dir, so root's connections are guarded only for as long as it\n"
    "chooses.\n"
    "\n"
    "When the state dir holds the HTTPS interception CA (`interlock ca init`), CMD gets\n"
    "SSL_CERT_FILE, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE naming a bundle of the system\n"
    "CAs plus ours, and NODE_EXTRA_CA_CERTS naming our CA (copies under\n"
    "/run/interlock/trust, readable by the agent). With SSH resources configured, CMD also\n"
    "gets INTERLOCK_SSH_KNOWN_HOSTS naming the known_hosts lines for interlockd's SSH host\n"
    "key (`interlock ssh known-hosts`), which OpenSSH reads through the package's\n"
    "/etc/ssh/ssh_config.d/interlock.conf, and GIT_SSH_COMMAND for git. A variable you set\n"
    "yourself is left as it is, with a note on stderr.\n"
    "\n"
    "File descriptors above 2 are closed before CMD starts: a socket created outside the\n"
    "enrolled cgroup and inherited by the agent is not redirected when the agent connects\n"
    "it. --preserve-fds N keeps fds 3..3+N-1 (as systemd-run does); they must be open.\n"
    "\n"
    "Exit status: CMD's (128+N when killed by signal N); 126 if CMD cannot be executed,\n"
    "127 if it is not found; 125 when interlock run itself fails (bad arguments, unknown\n"
    "user, root refused, enrollment, dropping privileges).\n";

pid_t g_child = -1;

void Forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

// What the child tells the parent before exec when it cannot go on. Fixed size: one
// write(2) of it is atomic on a pipe.
enum class ChildStep : int32_t { kCgroup = 1, kSession, kDrop, kFds, kExec };
struct ChildReport {
  ChildStep step;
  int32_t drop_stage;  // DropStage when step == kDrop
  int32_t err;         // errno
};

[[noreturn]] void ChildFail(int pipe_fd, ChildStep step, int err, DropStage stage, int code) {
  ChildReport r{step, static_cast<int32_t>(stage), err};
  ssize_t ignored = ::write(pipe_fd, &r, sizeof r);
  (void)ignored;
  _exit(code);
}

std::string Describe(const ChildReport& r, const std::string& dir, const char* cmd) {
  switch (r.step) {
    case ChildStep::kCgroup:
      return absl::StrCat("run: move to cgroup ", dir, ": ", std::strerror(r.err));
    case ChildStep::kSession:
      return absl::StrCat("run: setsid: ", std::strerror(r.err));
    case ChildStep::kDrop:
      return absl::StrCat(
          "run: drop privileges: ", DropStageName(static_cast<DropStage>(r.drop_stage)), ": ",
          r.err != 0 ? std::strerror(r.err)
                     : "the result is not what was asked (refusing to start)");
    case ChildStep::kFds:
      return absl::StrCat("run: close inherited fds: ", std::strerror(r.err));
    case ChildStep::kExec:
      return absl::StrCat("run: ", cmd, ": ", std::strerror(r.err));
  }
  return "run: child set-up failed";
}

void Unenroll(const std::string& socket, uint64_t cgroup_id) {
  v1::ControlRequest unenroll;
  unenroll.mutable_unenroll()->set_cgroup_id(cgroup_id);
  auto un = control::CallControl(socket, unenroll);
  if (!un.ok()) {
    std::fprintf(stderr, "interlock: run: unenroll: %s\n",
                 std::string(un.status().message()).c_str());
  }
}

// Our environment, plus the variables that make the agent's TLS clients trust the
// interception CA when the state dir holds one (trust.h). A variable the invoker set
// stays as it is, with a note: it may be deliberate (a private bundle that already
// includes our CA), and we cannot tell.
absl::StatusOr<std::vector<std::string>> WithAgentTrust(const config::ServiceConfig& cfg, const Globals& g) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  auto trust = EnsureAgentTrust(cfg.state_dir);
  if (!trust.ok()) {
    return absl::Status(trust.status().code(),
                        absl::StrCat("trust bundle: ", trust.status().message()));
  }
  const bool ssh = std::any_of(cfg.resources.begin(), cfg.resources.end(),
                               [](const config::ResourceConfig& r) { return r.protocol == config::Protocol::kSsh; });
  if (!trust->has_value()) {
    if (ssh) {
      std::fprintf(stderr, "interlock: run: note: SSH resources are configured but %s has no CA and host key "
                           "(interlock ca init): the agent's ssh will not trust interlockd\n", cfg.state_dir.c_str());
    }
    return env;
  }
  TrustEnv plan = PlanTrustEnv(**trust, environ);
  for (const auto& [name, value] : plan.set) env.push_back(absl::StrCat(name, "=", value));
  for (const std::string& name : plan.kept) {
    std::fprintf(stderr,
                 "interlock: run: note: %s is set; left as is (interlock's CA: %s, bundle: %s)\n",
                 name.c_str(), (*trust)->ca_file.c_str(), (*trust)->bundle_file.c_str());
  }
  if (!ssh) return env;
  // SSH: the known_hosts lines for the resources, where the agent can read them, named by
  // the variables the package's ssh_config include and git read.
  auto lines = SshKnownHostsLines(cfg, cfg.state_dir, g.config_path);
  if (absl::IsNotFound(lines.status())) {
    std::fprintf(stderr, "interlock: run: note: no SSH host key in %s (interlock ca init): the agent's ssh will "
                         "not trust interlockd\n", cfg.state_dir.c_str());
    return env;
  }
  if (!lines.ok()) return absl::Status(lines.status().code(), absl::StrCat("ssh known_hosts: ", lines.status().message()));
  auto known_hosts = EnsureAgentSshKnownHosts(**trust, *lines);
  if (!known_hosts.ok()) {
    return absl::Status(known_hosts.status().code(), absl::StrCat("ssh known_hosts: ", known_hosts.status().message()));
  }
  TrustEnv ssh_plan = PlanSshTrustEnv(*known_hosts, environ);
  for (const auto& [name, value] : ssh_plan.set) env.push_back(absl::StrCat(name, "=", value));
  for (const std::string& name : ssh_plan.kept) {
    std::fprintf(stderr, "interlock: run: note: %s is set; left as is (interlockd's SSH known_hosts: %s)\n",
                 name.c_str(), known_hosts->c_str());
  }
  return env;
}

struct RunOptions {
  std::string name;
  bool default_deny = false;
  std::string token_file;
  PrivilegeSpec spec;
  std::string preserve_text = "0";
  std::vector<std::string> before_dashes;  // must stay empty: CMD goes after "--"
};

int Run(const Globals& g, RunOptions o, const std::optional<std::vector<std::string>>& args) {
  const std::string& name = o.name;
  const bool default_deny = o.default_deny;
  const std::string& token_file = o.token_file;
  PrivilegeSpec& spec = o.spec;
  const std::string& preserve_text = o.preserve_text;
  if (!o.before_dashes.empty()) {
    return Fail(kExitSetupFailed, absl::StrCat("run: unexpected argument \"", o.before_dashes[0],
                                               "\" (CMD goes after --)"));
  }
  if (name.empty()) return Fail(kExitSetupFailed, "run: --as NAME is required");
  if (!args.has_value() || args->empty())
    return Fail(kExitSetupFailed, "run: no command after -- (interlock run --help)");
  std::vector<std::string> cmd = *args;

  auto preserve = ParsePreserveFds(preserve_text);
  if (!preserve.ok())
    return Fail(kExitSetupFailed, absl::StrCat("run: ", preserve.status().message()));
  // Checked before we open anything ourselves, so that none of our own fds can land in
  // the preserved range and be handed to the agent.
  for (int fd = 3; fd < 3 + *preserve; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) {
      return Fail(kExitSetupFailed,
                  absl::StrCat("run: --preserve-fds ", *preserve, ": fd ", fd, " is not open"));
    }
  }

  if (const char* v = std::getenv("SUDO_UID")) spec.sudo_uid = v;
  if (const char* v = std::getenv("SUDO_GID")) spec.sudo_gid = v;
  auto creds = ResolveCredentials(spec, SystemUserDb(), ::geteuid());
  if (!creds.ok()) return Fail(kExitSetupFailed, absl::StrCat("run: ", creds.status().message()));
  rlimit nofile{};
  int fd_limit = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    fd_limit = static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 20));
  }

  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(kExitSetupFailed, absl::StrCat("run: ", cfg.status().message()));
  auto env = WithAgentTrust(*cfg, g);
  if (!env.ok()) return Fail(kExitSetupFailed, absl::StrCat("run: ", env.status().message()));
  std::vector<char*> envp;
  for (std::string& e : *env) envp.push_back(e.data());
  envp.push_back(nullptr);
  auto drop = PrepareDrop(*creds, envp.data());
  if (!drop.ok()) return Fail(kExitSetupFailed, absl::StrCat("run: ", drop.status().message()));
  v1::ControlRequest req;
  req.mutable_enroll()->set_name(name);
  req.mutable_enroll()->set_default_deny(default_deny);
  if (!token_file.empty()) {
    char* abs = ::realpath(token_file.c_str(), nullptr);
    if (abs == nullptr) {
      return Fail(kExitSetupFailed,
                  absl::StrCat("run: --token-file ", token_file, ": ", std::strerror(errno)));
    }
    req.mutable_enroll()->set_token_file(abs);
    ::free(abs);
  }
  auto resp = control::CallControl(cfg->control_socket, req);
  if (!resp.ok())
    return Fail(kExitSetupFailed, absl::StrCat("run: enroll: ", resp.status().message()));
  const std::string dir = resp->enroll().cgroup_dir();
  const uint64_t cgroup_id = resp->enroll().cgroup_id();

  // Ready everything before fork: between fork and exec the child makes syscalls only.
  std::vector<char*> argv;
  for (std::string& s : cmd) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string procs = absl::StrCat(dir, "/cgroup.procs");
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    Unenroll(cfg->control_socket, cgroup_id);
    return Fail(kExitSetupFailed, absl::StrCat("run: pipe: ", std::strerror(errno)));
  }
  UniqueFd report_read(report[0]);
  const PreparedDrop& prepared = **drop;

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(report[1]);
    Unenroll(cfg->control_socket, cgroup_id);
    return Fail(kExitSetupFailed, absl::StrCat("run: fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    const int w = report[1];
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      ChildFail(w, ChildStep::kCgroup, errno, DropStage::kNone, kExitSetupFailed);
    }
    ::close(fd);
    // A new session, without the operator's terminal as its controlling tty: an agent
    // could otherwise push keystrokes into the root shell it was started from (TIOCSTI)
    // and have them run after it exits. It still reads and writes fds 0-2.
    if (prepared.drop() && ::setsid() < 0) {
      ChildFail(w, ChildStep::kSession, errno, DropStage::kNone, kExitSetupFailed);
    }
    DropFailure f = ApplyDrop(prepared);
    if (f.stage != DropStage::kNone)
      ChildFail(w, ChildStep::kDrop, f.err, f.stage, kExitSetupFailed);
    if (int err = CloseOnExecFrom(3 + *preserve, fd_limit); err != 0) {
      ChildFail(w, ChildStep::kFds, err, DropStage::kNone, kExitSetupFailed);
    }
    environ = (*drop)->envp();
    ::execvp(argv[0], argv.data());
    int err = errno;
    ChildFail(w, ChildStep::kExec, err, DropStage::kNone, err == ENOENT ? 127 : 126);
  }
  ::close(report[1]);
  g_child = pid;
  struct sigaction sa {};
  sa.sa_handler = Forward;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &sa, nullptr);

  // EOF: exec succeeded (the pipe was close-on-exec). A report: it never started.
  ChildReport r{};
  ssize_t got = 0;
  for (;;) {
    got = ::read(report_read.get(), &r, sizeof r);
    if (got < 0 && errno == EINTR) continue;
    break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Unenroll(cfg->control_socket, cgroup_id);
  if (got == static_cast<ssize_t>(sizeof r)) {
    std::fprintf(stderr, "interlock: %s\n", Describe(r, dir, argv[0]).c_str());
    if (r.step == ChildStep::kExec) return r.err == ENOENT ? 127 : 126;
    return kExitSetupFailed;
  }
  if (got != 0) {
    // A partial report or a read error: we cannot tell what happened; never pass it off
    // as CMD's own status.
    std::fprintf(stderr, "interlock: run: child set-up: unreadable report\n");
    return kExitSetupFailed;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

void AddRunCommand(CLI::App& root, const Globals& g,
                   const std::optional<std::vector<std::string>>& cmd, Commands* commands) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = root.add_subcommand("run", "run CMD as an enrolled, unprivileged workload");
  sub->add_option("--as", o->name, "the workload name (required)")->option_text("NAME")->required();
  sub->add_option("--user", o->spec.user, "run CMD as this user (default: $SUDO_UID)")
      ->option_text("NAME|UID");
  sub->add_option("--group", o->spec.group, "... with this group (default: the user's)")
      ->option_text("NAME|GID");
  sub->add_flag("--allow-root", o->spec.allow_root, "let CMD run as root");
  sub->add_option("--preserve-fds", o->preserve_text, "keep fds 3..3+N-1 open for CMD")
      ->option_text("N");
  sub->add_flag("--default-deny", o->default_deny, "refuse every other destination (EPERM)");
  sub->add_option("--token-file", o->token_file, "bind this OIDC token file to the enrollment")
      ->option_text("PATH");
  sub->add_option("CMD", o->before_dashes, "the command and its arguments, after --");
  sub->footer(kRunHelp);
  commands->push_back({sub, [&g, o, &cmd] { return Run(g, *o, cmd); }, kExitSetupFailed});
}

}  // namespace interlock::cli
