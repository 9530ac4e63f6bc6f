// interlock run: start a command as an enrolled workload.
//
// The daemon creates a fresh cgroup under <cgroup_root>/workloads and enrolls it in the
// kernel map before we fork; the child moves itself into that cgroup and only then execs,
// so not one instruction of CMD runs unenrolled. The cgroup is root-owned: the agent
// cannot leave it. Exit status passes through (128+N for a signal).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tools/interlock/cli.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/control/client.h"

namespace interlock::cli {

namespace {

constexpr char kRunHelp[] =
    "usage: interlock run --as NAME [--default-deny] [--token-file PATH] -- CMD [ARGS...]\n"
    "\n"
    "Runs CMD in a new cgroup enrolled as workload NAME. Its connections to protected\n"
    "resources go through interlockd; with --default-deny every other destination is\n"
    "refused (EPERM). --token-file binds an OIDC token file to the enrollment: interlockd\n"
    "reads it (re-reading it when it changes) and CMD's sessions carry its identity; the\n"
    "token is refused from any other cgroup. CMD's exit status is returned.\n";

pid_t g_child = -1;

void Forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

}  // namespace

int CmdRun(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::fputs(kRunHelp, stdout);
    return 0;
  }
  std::string name;
  bool default_deny = false;
  std::string token_file;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    if (args[i] == "--as" && i + 1 < args.size()) {
      name = args[++i];
    } else if (args[i].rfind("--as=", 0) == 0) {
      name = args[i].substr(5);
    } else if (args[i] == "--default-deny") {
      default_deny = true;
    } else if (args[i] == "--token-file" && i + 1 < args.size()) {
      token_file = args[++i];
    } else if (args[i].rfind("--token-file=", 0) == 0) {
      token_file = args[i].substr(13);
    } else if (args[i] == "--") {
      ++i;
      break;
    } else {
      return Fail(2, absl::StrCat("run: unexpected argument \"", args[i], "\" (CMD goes after --)\n", kRunHelp));
    }
  }
  if (name.empty()) return Fail(2, absl::StrCat("run: --as NAME is required\n", kRunHelp));
  if (i >= args.size()) return Fail(2, absl::StrCat("run: no command after --\n", kRunHelp));
  std::vector<std::string> cmd(args.begin() + static_cast<long>(i), args.end());

  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  v1::ControlRequest req;
  req.mutable_enroll()->set_name(name);
  req.mutable_enroll()->set_default_deny(default_deny);
  if (!token_file.empty()) {
    char* abs = ::realpath(token_file.c_str(), nullptr);
    if (abs == nullptr) return Fail(2, absl::StrCat("run: --token-file ", token_file, ": ", std::strerror(errno)));
    req.mutable_enroll()->set_token_file(abs);
    ::free(abs);
  }
  auto resp = control::CallControl(cfg->control_socket, req);
  if (!resp.ok()) return Fail(1, absl::StrCat("run: enroll: ", resp.status().message()));
  const std::string dir = resp->enroll().cgroup_dir();
  const uint64_t cgroup_id = resp->enroll().cgroup_id();

  // Ready the argv before fork: the child does nothing but move and exec.
  std::vector<char*> argv;
  for (std::string& s : cmd) argv.push_back(s.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return Fail(1, absl::StrCat("run: fork: ", std::strerror(errno)));
  if (pid == 0) {
    absl::Status st = MoveToCgroup(dir, 0);
    if (!st.ok()) {
      std::fprintf(stderr, "interlock: run: %s\n", std::string(st.message()).c_str());
      _exit(126);
    }
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "interlock: run: %s: %s\n", argv[0], std::strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  g_child = pid;
  struct sigaction sa{};
  sa.sa_handler = Forward;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &sa, nullptr);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  v1::ControlRequest unenroll;
  unenroll.mutable_unenroll()->set_cgroup_id(cgroup_id);
  auto un = control::CallControl(cfg->control_socket, unenroll);
  if (!un.ok()) {
    std::fprintf(stderr, "interlock: run: unenroll: %s\n", std::string(un.status().message()).c_str());
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace interlock::cli
