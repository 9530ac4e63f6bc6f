#include "tests/testing/interlockd_harness.h"

#include <cctype>

#include <dirent.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "interlock/v1/control.pb.h"
#include "userspace/audit/chain.h"
#include "userspace/common/file_util.h"
#include "userspace/control/client.h"

namespace interlock::testing {

InterlockdHarness::InterlockdHarness(HarnessOptions options) : options_(std::move(options)) {
  suffix_ = UniqueSuffix();
  temp_dir_ = MakeTempDir("interlock-it-");
  state_dir_ = absl::StrCat(temp_dir_, "/state");
  audit_dir_ = options_.audit_outside_state_dir ? absl::StrCat(temp_dir_, "/audit") : absl::StrCat(state_dir_, "/audit");
  if (options_.state_tmpfs_mib > 0) {
    const std::string size = absl::StrCat("size=", options_.state_tmpfs_mib, "m,mode=0700");
    if (::mkdir(state_dir_.c_str(), 0700) != 0 ||
        ::mount("tmpfs", state_dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, size.c_str()) != 0) {
      ADD_FAILURE() << "mount tmpfs at " << state_dir_ << ": " << std::strerror(errno);
    } else {
      tmpfs_mounted_ = true;
    }
  }
  pin_path_ = absl::StrCat("/sys/fs/bpf/interlock-it-", suffix_);
  cgroup_root_ = absl::StrCat("interlock-it-", suffix_);
  config_path_ = absl::StrCat(temp_dir_, "/interlock.yaml");
  log_path_ = absl::StrCat(temp_dir_, "/interlockd.log");
  engine_port_ = FreePort();
  std::string yaml = absl::StrCat(
      "listener:\n  address_v4: 127.0.0.1\n  address_v6: \"::1\"\n  port: ", engine_port_, "\n",
      options_.listener_yaml, "state_dir: ", state_dir_, "\n", "pin_path: ", pin_path_, "\n",
      "cgroup_root: ", cgroup_root_, "\n", "attach_cgroup: ",
      options_.attach_at_root ? "/" : cgroup_root_, "\n", "relay_mode: ",
      options_.sockmap ? "RELAY_MODE_SOCKMAP" : "RELAY_MODE_PLAIN",
      "\n", "timeouts:\n  connect_ms: 3000\n  drain_ms: 3000\n",
      options_.idle_ms > 0 ? absl::StrCat("  idle_ms: ", options_.idle_ms, "\n") : "",
      "resources:\n");
  for (const ResourceSpec& r : options_.resources) {
    absl::StrAppend(&yaml, "  - name: ", r.name, "\n    address: \"", r.address, "\"\n    port: ",
                    r.port, "\n", r.yaml);
  }
  if (options_.resources.empty()) absl::StrAppend(&yaml, "  []\n");
  if (options_.audit_outside_state_dir) absl::StrAppend(&yaml, "audit:\n  file:\n    path: ", audit_dir_, "/audit.jsonl\n");
  absl::StrAppend(&yaml, absl::StrReplaceAll(options_.extra_yaml, {{"{cgroup_root}", cgroup_root_}}));
  std::ofstream(config_path_) << yaml;
}

InterlockdHarness::~InterlockdHarness() {
  if (pid_ > 0) Stop();
  // Removes pins and the cgroup subtree (moving any stray process out first).
  CommandResult r = Cli({"teardown"});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "teardown failed: " << r.err << "\n" << DaemonLog();
  }
  if (::access(pin_path_.c_str(), F_OK) == 0) ADD_FAILURE() << "pins left at " << pin_path_;
  RemoveAgentTrust();
  if (tmpfs_mounted_ && ::umount2(state_dir_.c_str(), MNT_DETACH) != 0) {
    ADD_FAILURE() << "umount " << state_dir_ << ": " << std::strerror(errno);
  }
  RemoveTree(temp_dir_);
}

void InterlockdHarness::RemoveAgentTrust() {
  // `interlock run` copied this state dir's interception CA (made by a test's `ca init`) to
  // /run/interlock/trust/<first 16 hex digits of its SHA-256>/ for agents.
  const std::string cert = absl::StrCat(state_dir_, "/interception-ca.crt");
  if (::access(cert.c_str(), F_OK) != 0) return;
  CommandResult r = RunCommand({"/usr/bin/openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"});
  std::string hex;  // "sha256 Fingerprint=AB:CD:..." -> "abcd..."
  for (char c : r.out.substr(r.out.find('=') + 1)) {
    if (std::isxdigit(static_cast<unsigned char>(c)) && hex.size() < 16) hex.push_back(static_cast<char>(std::tolower(c)));
  }
  if (hex.size() != 16) return;
  RemoveTree(absl::StrCat("/run/interlock/trust/", hex));
  // Only when that leaves them empty (rmdir refuses otherwise: nothing in use goes).
  ::rmdir("/run/interlock/trust");
  ::rmdir("/run/interlock");
}

absl::Status InterlockdHarness::Start() {
  std::vector<std::string> argv = {BinaryPath("interlockd"), "--config", config_path_};
  if (!options_.daemon_cgroup_dir.empty()) {
    argv.insert(argv.begin(), {"/bin/sh", "-c",
                               absl::StrCat("echo $$ > '", options_.daemon_cgroup_dir,
                                            "/cgroup.procs' && exec \"$0\" \"$@\"")});
  }
  pid_ = Spawn(argv, log_path_);
  v1::ControlRequest req;
  req.mutable_status();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (control::CallControl(absl::StrCat(state_dir_, "/control.sock"), req).ok()) {
      return absl::OkStatus();
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("interlockd exited during start-up:\n", DaemonLog()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("interlockd did not come up:\n", DaemonLog()));
}

int InterlockdHarness::Stop() {
  int rc = StopProcess(pid_);
  pid_ = -1;
  return rc;
}

void InterlockdHarness::Kill() {
  KillProcess(pid_);
  pid_ = -1;
}

CommandResult InterlockdHarness::Cli(const std::vector<std::string>& args, int timeout_s) {
  std::vector<std::string> argv = {BinaryPath("interlock"), "--config", config_path_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout_s);
}

CommandResult InterlockdHarness::RunAgent(const std::string& name,
                                          const std::vector<std::string>& cmd,
                                          bool default_deny, int timeout_s) {
  return RunAgent(name, cmd, AgentOptions{.default_deny = default_deny, .timeout_s = timeout_s});
}

CommandResult InterlockdHarness::RunAgent(const std::string& name,
                                          const std::vector<std::string>& cmd,
                                          const AgentOptions& options) {
  std::vector<std::string> argv = RunArgv(name, options);
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return RunCommand(argv, options.timeout_s);
}

std::vector<std::string> InterlockdHarness::RunArgv(const std::string& name,
                                                    const AgentOptions& options) const {
  std::vector<std::string> argv = {BinaryPath("interlock"), "--config", config_path_, "run",
                                   "--as", name};
  if (options.as_root) {
    argv.push_back("--allow-root");
  } else {
    argv.insert(argv.end(), {"--user", options.user});
  }
  if (options.default_deny) argv.push_back("--default-deny");
  argv.insert(argv.end(), options.run_args.begin(), options.run_args.end());
  argv.push_back("--");
  return argv;
}

v1::StatusResponse InterlockdHarness::Status() {
  CommandResult r = Cli({"status", "--json"});
  v1::StatusResponse s;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &s).ok()) << r.out;
  return s;
}

std::vector<v1::ApprovalRequest> InterlockdHarness::Approvals(bool all) {
  std::vector<std::string> args = {"approvals", "--json"};
  if (all) args.push_back("--all");
  CommandResult r = Cli(args);
  std::vector<v1::ApprovalRequest> out;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    v1::ApprovalRequest a;
    if (google::protobuf::util::JsonStringToMessage(std::string(line), &a).ok()) out.push_back(a);
  }
  return out;
}

std::string InterlockdHarness::WaitForPendingApproval(int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    auto pending = Approvals();
    if (!pending.empty()) return pending[0].id();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

std::vector<v1::AuditEvent> InterlockdHarness::AuditEvents() const {
  if (pid_ > 0) {
    v1::ControlRequest req;
    req.mutable_status();
    (void)control::CallControl(absl::StrCat(state_dir_, "/control.sock"), req);  // stopped: all written
  }
  std::vector<v1::AuditEvent> out;
  // The rotated files first (a test may set a tiny audit.file.rotate_bytes), in seq order.
  std::vector<std::string> paths;
  const std::string& dir = audit_dir_;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (audit::ParseRotatedName("audit.jsonl", e->d_name)) paths.push_back(absl::StrCat(dir, "/", e->d_name));
    }
    ::closedir(d);
  }
  paths = audit::SortAuditFiles(std::move(paths));
  paths.push_back(absl::StrCat(dir, "/audit.jsonl"));
  for (const std::string& path : paths) {
    auto text = ReadFile(path);
    if (!text.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      v1::AuditEvent ev;
      if (google::protobuf::util::JsonStringToMessage(std::string(line), &ev).ok()) {
        out.push_back(std::move(ev));
      }
    }
  }
  return out;
}

std::string InterlockdHarness::DaemonLog() const {
  auto text = ReadFile(log_path_);
  return text.ok() ? *text : "(no interlockd log)";
}

}  // namespace interlock::testing
