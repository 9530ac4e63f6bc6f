// Helpers for privileged tests (tests/bpf, tests/integration): they run as root against
// the real kernel. Without root they FAIL with a clear message — a privileged test that
// skips would let CI pass without testing anything.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock::testing {

// ASSERT-style check: fails the test when not root.
#define INTERLOCK_REQUIRE_ROOT()                                                          \
  do {                                                                                    \
    ASSERT_EQ(::geteuid(), 0u) << "this is a privileged test: run it as root (CI does); " \
                                  "it must not be skipped";                               \
  } while (0)

// A unique suffix for names of this test's resources: "<pid>-<counter>".
std::string UniqueSuffix();

// A free TCP port on `ip`, IPv4 or IPv6 (bound and released; the kernel will not hand it out again
// soon since ports are allocated sequentially).
uint16_t FreePort(const std::string& ip = "127.0.0.1");
// A TCP connection to 127.0.0.1:port (blocking); an invalid fd when refused.
UniqueFd DialLoopback(uint16_t port);

// mkdtemp under /tmp with `prefix`; removed by RemoveTree.
std::string MakeTempDir(const std::string& prefix);
// The uid and gid RunAgent's agents run as by default (`nobody` on Debian).
inline constexpr uid_t kAgentUid = 65534;
inline constexpr gid_t kAgentGid = 65534;
// MakeTempDir, owned by the agent user: for files an (unprivileged) agent writes. The
// test, as root, still reads and removes it.
std::string MakeAgentDir(const std::string& prefix);
// Makes `path` and every directory above it up to / traversable (o+x) and the file
// itself world-readable, so that an unprivileged agent can read a file the test wrote.
void MakeReadableByAgent(const std::string& path);
void RemoveTree(const std::string& path);

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv (no shell), waits, captures output. `timeout_s` kills it (SIGKILL) if it
// runs longer.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_s = 120);

// Starts argv in the background with stdout/stderr appended to `log_path`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path);
// SIGTERM, wait up to `grace_s`, then SIGKILL. Returns the exit code (128+N if signalled).
int StopProcess(pid_t pid, int grace_s = 10);
void KillProcess(pid_t pid);  // SIGKILL and reap
// Waits up to `timeout_s` for `pid` to exit on its own. Returns its exit code, or -1 on
// timeout (the process is then still running).
int WaitProcess(pid_t pid, int timeout_s);

// Runs argv as uid/gid `id` (no supplementary groups, no capabilities) inside cgroup
// directory `dir` (absolute): a shell moves itself in while still root, then drops
// privileges and execs argv. How tests place an unprivileged process in a cgroup that
// interlock did not make (a unit's, a container's).
CommandResult RunInCgroup(const std::string& dir, uint32_t id, const std::vector<std::string>& argv,
                          int timeout_s = 120);
// Removes cgroup directory `dir` and every cgroup below it, deepest first, waiting (up to
// 10 s each) for processes that are still exiting. False (with `error` set) when one stays.
bool RemoveCgroupTree(const std::string& dir, std::string* error);

// Directory holding the built binaries (interlockd, interlock, interlock-probe, ...).
std::string BinaryPath(const std::string& name);

// A memory figure of process `pid` from /proc/<pid>/status, in KiB: `field` is "VmRSS:"
// (resident now) or "VmHWM:" (the peak); -1 when it cannot be read.
int64_t ProcessMemoryKib(pid_t pid, const std::string& field);

}  // namespace interlock::testing
