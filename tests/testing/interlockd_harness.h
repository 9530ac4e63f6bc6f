// InterlockdHarness: one real interlockd for one integration test, fully isolated: its
// own state dir (/tmp), bpffs pin path, cgroup subtree, listener port and control
// socket. The destructor stops the daemon and removes everything it made, also when the
// test failed half-way.
//
//   InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo.port()}}});
//   ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
//   CommandResult r = h.RunAgent("agent", {BinaryPath("interlock-probe"), "connect", ...});
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "interlock/v1/approval.pb.h"
#include "interlock/v1/control.pb.h"
#include "interlock/v1/events.pb.h"
#include "tests/testing/privileged.h"

namespace interlock::testing {

struct ResourceSpec {
  std::string name;
  std::string address;
  uint16_t port = 0;
  // Extra YAML lines for this resource, each indented by 4 spaces ("    protocol: ...").
  std::string yaml;
};

// How RunAgent starts the agent. Agents run as `nobody` (no capabilities, no groups), as
// in production; `as_root` passes --allow-root instead, for the few tests whose agent
// must be root (say why at the call site).
struct AgentOptions {
  bool default_deny = false;
  int timeout_s = 120;
  bool as_root = false;
  std::string user = "nobody";
  std::vector<std::string> run_args;  // more `interlock run` flags, before --
};

struct HarnessOptions {
  bool sockmap = false;  // relay_mode: PLAIN (the default) or SOCKMAP
  std::vector<ResourceSpec> resources;
  uint32_t idle_ms = 0;    // timeouts.idle_ms; 0 = the default
  // Appended to the generated config, with "{cgroup_root}" replaced by the harness's
  // cgroup root (relative to the cgroup2 mount), for enrollments below it.
  std::string extra_yaml;
  // More lines of the `listener:` block, each indented by 2 spaces ("  netns_discovery: ...").
  std::string listener_yaml;
  // Attach the programs at the cgroup2 root (the production default) instead of the
  // harness's own cgroup root. Tests of enrollments that reach outside a test's subtree
  // (users, units anywhere) need it; the programs then run for every task on the host
  // and act only on this instance's enrollments.
  bool attach_at_root = false;
  // Start interlockd in this cgroup directory (absolute), as a service manager would
  // start it in its unit's cgroup. Empty: the test's own cgroup.
  std::string daemon_cgroup_dir;
  // > 0: the state dir is a tmpfs of this many MiB, mounted before interlockd starts and
  // unmounted by the destructor (a small disk that a test can fill).
  uint32_t state_tmpfs_mib = 0;
  // The audit file outside the state dir (audit.file.path = <temp dir>/audit/audit.jsonl),
  // for tests that fill the state dir's disk and still read every audit line.
  bool audit_outside_state_dir = false;
};

class InterlockdHarness {
 public:
  explicit InterlockdHarness(HarnessOptions options);
  ~InterlockdHarness();
  InterlockdHarness(const InterlockdHarness&) = delete;
  InterlockdHarness& operator=(const InterlockdHarness&) = delete;

  // Spawns interlockd and waits (up to 15 s) until its control socket answers.
  absl::Status Start();
  // SIGTERM and wait; returns interlockd's exit code.
  int Stop();
  // SIGKILL: a crash. Pins stay; enforcement must stay (fail closed).
  void Kill();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // `interlock --config <cfg> args...`
  CommandResult Cli(const std::vector<std::string>& args, int timeout_s = 120);
  // `interlock run --as name --user nobody [--default-deny] -- argv...`
  CommandResult RunAgent(const std::string& name, const std::vector<std::string>& argv,
                         bool default_deny = false, int timeout_s = 120);
  CommandResult RunAgent(const std::string& name, const std::vector<std::string>& argv,
                         const AgentOptions& options);
  // The `interlock ... run ... --` prefix RunAgent uses, for tests that start the agent
  // in the background (Spawn) or through another program.
  std::vector<std::string> RunArgv(const std::string& name, const AgentOptions& options = {}) const;

  // Every audit event emitted so far. interlockd batches its writes (write_batch_ms); a
  // control round trip first makes it write what it buffered (it does before answering).
  std::vector<v1::AuditEvent> AuditEvents() const;
  std::string DaemonLog() const;

  // `interlock status --json`, parsed (a failure is a test failure).
  v1::StatusResponse Status();
  // `interlock approvals --json [--all]`, parsed.
  std::vector<v1::ApprovalRequest> Approvals(bool all = false);
  // The id of the first pending approval request, waiting up to `timeout_s`; "" if none.
  std::string WaitForPendingApproval(int timeout_s = 20);

  const std::string& state_dir() const { return state_dir_; }
  // Where the audit file is: <state dir>/audit, or <temp dir>/audit.
  const std::string& audit_dir() const { return audit_dir_; }
  const std::string& pin_path() const { return pin_path_; }
  const std::string& cgroup_root() const { return cgroup_root_; }
  const std::string& config_path() const { return config_path_; }
  // Removes the copy of this state dir's interception CA `interlock run` made for agents
  // (/run/interlock/trust/<fingerprint>); the destructor does it too.
  void RemoveAgentTrust();
  uint16_t engine_port() const { return engine_port_; }

 private:
  HarnessOptions options_;
  std::string suffix_;
  std::string temp_dir_;
  std::string state_dir_;
  std::string audit_dir_;
  bool tmpfs_mounted_ = false;
  std::string pin_path_;
  std::string cgroup_root_;
  std::string config_path_;
  std::string log_path_;
  uint16_t engine_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace interlock::testing
