// SSH through the real redirect: an unprivileged enrolled agent runs real OpenSSH `ssh`
// (and paramiko) against a real OpenSSH sshd on 127.0.0.71, started by the test. interlockd
// terminates the agent's SSH with its own host key (trusted through `interlock ssh
// known-hosts`), logs in upstream with the resource's key (the agent has none), judges
// every channel request with the policy, holds what needs approval, refuses forwarding,
// and records and audits every channel. Attacks first: shell lines dressed as allowed
// programs, forwarding past the resource, a substituted upstream, a wrong login key.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/sshd_server.h"
#include "tests/testing/test_issuer.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

constexpr char kPolicy[] = R"YAML(
resources:
  - {resource: box, default_action: ACTION_DENY}
rules:
  - id: read-only-tools
    match: {resources: [box], ssh: {requests: [exec], programs: [uptime, echo, cat, sh, ls, "true", head, id]}}
    action: ACTION_ALLOW
  - id: review-rm
    match: {resources: [box], ssh: {requests: [exec], programs: [rm]}}
    action: ACTION_REVIEW
    reason: deleting files needs a second pair of eyes
    review_timeout_s: 60
  - id: interactive
    match: {resources: [box], ssh: {requests: [shell], pty: true}}
    action: ACTION_ALLOW
  - id: file-transfer
    match: {resources: [box], ssh: {requests: [subsystem], subsystems: [sftp]}}
    action: ACTION_ALLOW
)YAML";

class SshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("interlock-ssh-");
    auto sshd = SshdServer::Start({.address = "127.0.0.71"});
    ASSERT_TRUE(sshd.ok()) << sshd.status();
    sshd_ = *std::move(sshd);
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, kPolicy, 0644).ok());
    // What the upstream's commands work on: a throwaway directory the held `rm` targets.
    data_dir_ = absl::StrCat(dir_, "/data");
    ASSERT_EQ(::mkdir(data_dir_.c_str(), 0755), 0);
    ASSERT_TRUE(WriteFileAtomic(absl::StrCat(data_dir_, "/keep"), "precious\n", 0644).ok());
  }
  void TearDown() override {
    sshd_.reset();
    RemoveTree(dir_);
  }

  // `ssh_yaml`: lines of the resource's ssh block beyond login and pin, 6-space indented.
  // `extra_yaml`: top-level configuration lines (oidc_issuers, ...).
  std::unique_ptr<InterlockdHarness> Daemon(const std::string& pin = "", const std::string& key = "",
                                            const std::string& ssh_yaml = "", const std::string& extra_yaml = "") {
    const std::string yaml = absl::StrCat(
        "    protocol: PROTOCOL_SSH\n    ssh:\n      login: {user: root, private_key_ref: \"file:",
        key.empty() ? sshd_->login_key() : key, "\"}\n      upstream_host_key_sha256: [\"",
        pin.empty() ? sshd_->host_key_sha256() : pin, "\"]\n", ssh_yaml);
    auto h = std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {{"box", "127.0.0.71", sshd_->port(), yaml}},
        .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\n", extra_yaml)});
    CommandResult ca = h->Cli({"ca", "init"});
    EXPECT_EQ(ca.exit_code, 0) << ca.out << ca.err;
    return h;
  }

  // The known_hosts an operator installs for agents (`interlock ssh known-hosts`), readable
  // by the agent.
  std::string KnownHosts(InterlockdHarness& h) {
    CommandResult kh = h.Cli({"ssh", "known-hosts"});
    EXPECT_EQ(kh.exit_code, 0) << kh.err;
    const std::string path = absl::StrCat(dir_, "/known_hosts");
    EXPECT_TRUE(WriteFileAtomic(path, kh.out, 0644).ok());
    MakeReadableByAgent(path);
    return path;
  }

  // OpenSSH's ssh as the enrolled agent (nobody: no key of its own), trusting interlockd
  // through `known_hosts` only.
  std::vector<std::string> SshArgv(const std::string& known_hosts, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o",
                                     "StrictHostKeyChecking=yes", "-o", absl::StrCat("UserKnownHostsFile=", known_hosts),
                                     "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-p",
                                     absl::StrCat(sshd_->port())};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Ssh(InterlockdHarness& h, const std::string& known_hosts, const std::vector<std::string>& args) {
    return h.RunAgent("agent", SshArgv(known_hosts, args));
  }

  std::vector<v1::AuditEvent> Events(InterlockdHarness& h, v1::AuditKind kind) {
    std::vector<v1::AuditEvent> out;
    for (v1::AuditEvent& e : h.AuditEvents()) {
      if (e.kind() == kind) out.push_back(std::move(e));
    }
    return out;
  }

  std::string dir_, policy_file_, data_dir_;
  std::unique_ptr<SshdServer> sshd_;
};

TEST_F(SshTest, AllowedExecPassesOutputStderrAndExitStatus) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  CommandResult r = Ssh(*h, kh, {"root@127.0.0.71", "sh -c 'echo out-line; echo err-line >&2; exit 3'"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << h->DaemonLog() << sshd_->Log();
  EXPECT_EQ(r.out, "out-line\n");
  EXPECT_THAT(r.err, HasSubstr("err-line\n"));
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u) << h->DaemonLog();
  const v1::SshExchange& x = events[0].ssh();
  EXPECT_EQ(x.request(), "exec");
  EXPECT_EQ(x.command(), "sh -c 'echo out-line; echo err-line >&2; exit 3'");
  EXPECT_THAT(x.argv(), ::testing::ElementsAre("sh", "-c", "echo out-line; echo err-line >&2; exit 3"));
  EXPECT_EQ(x.exit_status(), 3);
  EXPECT_TRUE(x.forwarded());
  EXPECT_EQ(x.agent_user(), "root");
  EXPECT_EQ(x.upstream_user(), "root");
  EXPECT_EQ(x.bytes_out(), 18u);
  EXPECT_EQ(events[0].outcome(), "allowed");
  EXPECT_EQ(events[0].decision().rule_id(), "read-only-tools");
  EXPECT_EQ(events[0].protocol(), "ssh");
  EXPECT_EQ(events[0].identity().workload(), "agent");
  // The login key never reaches the audit trail or the recording.
  const std::string key = *ReadFile(sshd_->login_key());
  const std::string key_body = key.substr(key.find('\n') + 1, 40);
  for (const v1::AuditEvent& e : h->AuditEvents()) EXPECT_THAT(e.DebugString(), Not(HasSubstr(key_body)));
  EXPECT_EQ(h->Cli({"verify", events[0].session_id()}).exit_code, 0);
  // The replay shows the command, its decision and its output.
  CommandResult replay = h->Cli({"replay", events[0].session_id()});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("sh -c 'echo out-line; echo err-line >&2; exit 3'"));
  EXPECT_THAT(replay.out, HasSubstr("read-only-tools"));
  EXPECT_THAT(replay.out, HasSubstr("out-line"));
  EXPECT_THAT(replay.out, HasSubstr("err-line"));
  EXPECT_THAT(replay.out, Not(HasSubstr(key_body)));
}

// stdin reaches the command, and its EOF too (cat ends), in both orders of arrival.
TEST_F(SshTest, StdinAndEofReachTheCommand) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  std::string ssh;
  for (const std::string& a : SshArgv(kh, {"root@127.0.0.71", "cat"})) absl::StrAppend(&ssh, "'", a, "' ");
  CommandResult r = h->RunAgent("agent", {"/bin/sh", "-c", absl::StrCat("printf 'line one\\nline two\\n' | ", ssh)});
  EXPECT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "line one\nline two\n");
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ssh().bytes_in(), 18u);
  EXPECT_EQ(events[0].ssh().bytes_out(), 18u);
}

// An interactive shell with a pty (`ssh -tt`): allowed by the policy as a whole session,
// every byte recorded, exportable as asciicast; without a pty the same request is denied.
TEST_F(SshTest, InteractiveShellIsRecordedAndExportedAsAsciicast) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  auto shell = [&](const std::string& flag) {
    std::string ssh;
    for (const std::string& a : SshArgv(kh, {flag, "root@127.0.0.71"})) absl::StrAppend(&ssh, "'", a, "' ");
    return h->RunAgent("agent", {"/bin/sh", "-c",
                                 absl::StrCat("(sleep 1; printf 'echo hi-from-$((6*7))\\n'; sleep 1; "
                                              "printf 'exit 7\\n') | ",
                                              ssh)});
  };
  CommandResult r = shell("-tt");
  EXPECT_EQ(r.exit_code, 7) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("hi-from-42"));
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ssh().request(), "shell");
  EXPECT_FALSE(events[0].ssh().pty_term().empty());
  EXPECT_EQ(events[0].decision().rule_id(), "interactive");
  EXPECT_EQ(events[0].ssh().exit_status(), 7);
  const std::string id = events[0].session_id();
  CommandResult cast = h->Cli({"replay", id, "--asciicast"});
  ASSERT_EQ(cast.exit_code, 0) << cast.err;
  EXPECT_THAT(cast.out, ::testing::StartsWith("{\"version\": 2"));
  EXPECT_THAT(cast.out, HasSubstr("hi-from-42"));
  EXPECT_THAT(cast.out, Not(HasSubstr("\"i\"")));  // typed input only with --input
  CommandResult with_input = h->Cli({"replay", id, "--asciicast", "--input"});
  EXPECT_THAT(with_input.out, HasSubstr("echo hi-from-$((6*7))"));
  EXPECT_EQ(h->Cli({"verify", id}).exit_code, 0);

  r = shell("-T");
  EXPECT_EQ(r.exit_code, 126) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("interlock: denied by policy (resource default)"));
}

// sftp is a subsystem the resource must allow (allow_sftp), and then the policy; when it
// runs, files go both ways and the channel is recorded.
TEST_F(SshTest, SftpRunsOnlyWhereTheResourceAllowsIt) {
  const std::string agent_dir = MakeAgentDir("interlock-ssh-agent-");
  const std::string batch = absl::StrCat(agent_dir, "/batch");
  ASSERT_TRUE(WriteFileAtomic(absl::StrCat(agent_dir, "/up.txt"), "uploaded by the agent\n", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(batch,
                              absl::StrCat("put ", agent_dir, "/up.txt ", data_dir_, "/up.txt\nget ", data_dir_,
                                           "/keep ", agent_dir, "/got.txt\n"),
                              0644)
                  .ok());
  MakeReadableByAgent(batch);
  ASSERT_EQ(::chmod(data_dir_.c_str(), 0777), 0);
  auto sftp = [&](InterlockdHarness& h) {
    return h.RunAgent("agent", {"/usr/bin/sftp", "-F", "/dev/null", "-b", batch, "-o", "BatchMode=yes", "-o",
                                "StrictHostKeyChecking=yes", "-o", absl::StrCat("UserKnownHostsFile=", KnownHosts(h)),
                                "-o", "GlobalKnownHostsFile=/dev/null", "-P", absl::StrCat(sshd_->port()),
                                "root@127.0.0.71"});
  };
  {
    auto h = Daemon();
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    CommandResult r = sftp(*h);
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_FALSE(PathExists(absl::StrCat(data_dir_, "/up.txt")));
    auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].ssh().request(), "subsystem");
    EXPECT_EQ(events[0].ssh().command(), "sftp");
    EXPECT_EQ(events[0].outcome(), "refused");
  }
  auto h = Daemon("", "", "      allow_sftp: true\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = sftp(*h);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(ReadFile(absl::StrCat(data_dir_, "/up.txt")).value_or(""), "uploaded by the agent\n");
  EXPECT_EQ(ReadFile(absl::StrCat(agent_dir, "/got.txt")).value_or(""), "precious\n");
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome(), "allowed");
  EXPECT_EQ(events[0].decision().rule_id(), "file-transfer");
  // Each file the agent touched, with its bytes, read from the SFTP stream as it passed.
  const v1::SshExchange& x = events[0].ssh();
  ASSERT_EQ(x.files_size(), 2) << x.DebugString();
  EXPECT_EQ(x.files(0).op(), "open");
  EXPECT_EQ(x.files(0).path(), absl::StrCat(data_dir_, "/up.txt"));
  EXPECT_THAT(x.files(0).flags(), ::testing::IsSupersetOf({"write", "create"}));
  EXPECT_EQ(x.files(0).bytes_written(), 22u);
  EXPECT_EQ(x.files(0).status(), "ok");
  EXPECT_EQ(x.files(1).path(), absl::StrCat(data_dir_, "/keep"));
  EXPECT_EQ(x.files(1).bytes_read(), 9u);
  EXPECT_TRUE(x.sftp_untracked().empty()) << x.sftp_untracked();
  // scp (OpenSSH 9 speaks SFTP underneath) is the same subsystem, judged and audited alike.
  CommandResult scp = h->RunAgent(
      "agent", {"/usr/bin/scp", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
                absl::StrCat("UserKnownHostsFile=", KnownHosts(*h)), "-o", "GlobalKnownHostsFile=/dev/null", "-P",
                absl::StrCat(sshd_->port()), absl::StrCat(agent_dir, "/up.txt"),
                absl::StrCat("root@127.0.0.71:", data_dir_, "/scp.txt")});
  EXPECT_EQ(scp.exit_code, 0) << scp.err;
  EXPECT_EQ(ReadFile(absl::StrCat(data_dir_, "/scp.txt")).value_or(""), "uploaded by the agent\n");
  RemoveTree(agent_dir);
}

// Another client library: paramiko, logging in with "none" as the agent has no key.
TEST_F(SshTest, ParamikoExecWorks) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  const std::string script = absl::StrCat(R"PY(
import socket, sys, paramiko
known = paramiko.HostKeys(sys.argv[1])
sock = socket.create_connection(("127.0.0.71", int(sys.argv[2])), timeout=20)
t = paramiko.Transport(sock)
t.start_client(timeout=20)
key = t.get_remote_server_key()
entry = known.lookup("[127.0.0.71]:%s" % sys.argv[2])
assert entry is not None and entry[key.get_name()] == key, "host key not trusted"
t.auth_none("root")
ch = t.open_session()
ch.exec_command("touch /tmp/never")
out = b""
while True:
    data = ch.recv(65536)
    if not data:
        break
    out += data
print(out.decode().strip(), ch.recv_exit_status())
t.close()
)PY");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", script, kh, absl::StrCat(sshd_->port())});
  // `touch` is in no rule: the resource's default denies it.
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, " 126\n");
  const std::string script2 = absl::StrCat(script.substr(0, script.find("ch.exec_command")),
                                           "ch.exec_command(\"sh -c 'echo from-paramiko; exit 5'\")",
                                           script.substr(script.find("\nout = b")));
  r = h->RunAgent("agent", {"/usr/bin/python3", "-c", script2, kh, absl::StrCat(sshd_->port())});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "from-paramiko 5\n");

  // More channels, one after the other, than may be open at once: ended ones are freed.
  const std::string many = absl::StrCat(script.substr(0, script.find("ch = t.open_session()")), R"PY(
outs = []
for i in range(15):
    ch = t.open_session()
    ch.exec_command("sh -c 'echo ch%d'" % i)
    outs.append(ch.makefile().read().decode().strip() + ":" + str(ch.recv_exit_status()))
    ch.close()
print(" ".join(outs))
t.close()
)PY");
  r = h->RunAgent("agent", {"/usr/bin/python3", "-c", many, kh, absl::StrCat(sshd_->port())});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "ch0:0 ch1:0 ch2:0 ch3:0 ch4:0 ch5:0 ch6:0 ch7:0 ch8:0 ch9:0 ch10:0 ch11:0 ch12:0 ch13:0 ch14:0\n");
}

// asyncssh, the asyncio client: known_hosts checked, no key of its own, exit status and
// both streams.
TEST_F(SshTest, AsyncsshExecWorks) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string script = R"PY(
import asyncio, sys, asyncssh
async def main():
    async with asyncssh.connect("127.0.0.71", int(sys.argv[2]), username="root", known_hosts=sys.argv[1],
                                client_keys=None, agent_path=None, password=None) as conn:
        r = await conn.run("sh -c 'echo from-asyncssh; echo to-stderr >&2; exit 4'")
        print(r.stdout.strip(), r.stderr.strip(), r.exit_status)
        r = await conn.run("touch /tmp/x")  # in no rule: the resource's default denies it
        print(r.exit_status, r.stderr.strip())
asyncio.run(main())
)PY";
  CommandResult r =
      h->RunAgent("agent", {"/usr/bin/python3", "-c", script, KnownHosts(*h), absl::StrCat(sshd_->port())});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("from-asyncssh to-stderr 4\n"));
  EXPECT_THAT(r.out, HasSubstr("126 interlock: denied by policy (resource default)"));
}

// A large output streams through: every byte arrives, and interlockd's memory stays
// bounded by the windows, not by the output's size.
TEST_F(SshTest, LargeOutputStreamsWithBoundedMemory) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  auto hwm = [&] {
    auto status = ReadFile(absl::StrCat("/proc/", h->pid(), "/status"));
    const size_t at = status.value_or("").find("VmHWM:");
    return at == std::string::npos ? 0L : std::atol(status->c_str() + at + 6);
  };
  const long before = hwm();
  std::string ssh;
  for (const std::string& a : SshArgv(kh, {"root@127.0.0.71", "head -c 268435456 /dev/zero"})) {
    absl::StrAppend(&ssh, "'", a, "' ");
  }
  CommandResult r = h->RunAgent("agent", {"/bin/sh", "-c", absl::StrCat(ssh, " | wc -c")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "268435456\n");
  const long after = hwm();
  std::cout << "interlockd VmHWM " << before << " kB -> " << after << " kB for 256 MiB of output\n";
  EXPECT_LT(after - before, 64 * 1024) << "kB";
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ssh().bytes_out(), 268435456u);
}

// Fuzz-style: 40 connections at once, each an SSH banner and then mutated binary packet
// bytes (random lengths, padding, message numbers; seeded, so a failure replays). Every
// one ends as its own session; interlockd stays up, keeps its memory, serves the next.
TEST_F(SshTest, MutatedHandshakesNeverTakeInterlockdDown) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const pid_t pid = h->pid();
  const std::string script = absl::StrCat(R"PY(
import os, random, socket, struct, sys, threading
port = int(sys.argv[1])
def one(seed):
    rnd = random.Random(seed)
    data = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
    for _ in range(rnd.randint(1, 4)):
        body = bytes([rnd.choice([20, 21, 30, 31, 50, 90, 94, 98, rnd.randint(0, 255)])])
        body += rnd.randbytes(rnd.randint(0, 300))
        pad = rnd.randint(0, 12)
        length = len(body) + pad + 1
        if rnd.random() < 0.3:
            length = rnd.choice([0, 1, 5, 35000, 0x7fffffff, 0xffffffff, rnd.randint(0, 1 << 20)])
        data += struct.pack(">IB", length & 0xffffffff, pad) + body + rnd.randbytes(pad)
    if rnd.random() < 0.3:
        cut = rnd.randint(0, len(data))
        data = data[:cut]
    try:
        s = socket.create_connection(("127.0.0.71", port), timeout=5)
        s.sendall(data)
        s.settimeout(3)
        while s.recv(65536):
            pass
    except OSError:
        pass
ts = [threading.Thread(target=one, args=(1000 + i,)) for i in range(40)]
[t.start() for t in ts]
[t.join() for t in ts]
)PY");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", script, absl::StrCat(sshd_->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(h->pid(), pid);
  ASSERT_EQ(::kill(pid, 0), 0) << h->DaemonLog();
  CommandResult ok = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "uptime"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err << h->DaemonLog();
  // Every mutated session ends (none is left waiting on a half handshake past its timeout).
  ASSERT_TRUE(WaitFor([&] { return h->Status().active_sessions() == 0; }, 40)) << h->DaemonLog();
}

// Both legs re-key every 8 MiB (OpenSSH does so on its own after ~1 GiB with chacha20):
// while a key exchange runs libssh takes no channel data, and not a byte may be lost,
// either way.
TEST_F(SshTest, RekeyingMidStreamLosesNothing) {
  sshd_.reset();
  auto sshd = SshdServer::Start({.address = "127.0.0.71", .extra_config = "RekeyLimit 8M\n"});
  ASSERT_TRUE(sshd.ok()) << sshd.status();
  sshd_ = *std::move(sshd);
  std::string p(kPolicy);
  p += "  - id: counting\n    match: {resources: [box], ssh: {requests: [exec], programs: [wc]}}\n"
       "    action: ACTION_ALLOW\n";
  ASSERT_TRUE(WriteFileAtomic(policy_file_, p, 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  auto ssh = [&](const std::string& command) {
    std::string line;
    for (const std::string& a : SshArgv(kh, {"-o", "RekeyLimit=8M", "root@127.0.0.71", command})) {
      absl::StrAppend(&line, "'", a, "' ");
    }
    return line;
  };
  CommandResult down = h->RunAgent("agent", {"/bin/sh", "-c", absl::StrCat(ssh("head -c 67108864 /dev/zero"), "| wc -c")});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.out, "67108864\n");
  CommandResult up = h->RunAgent("agent", {"/bin/sh", "-c", absl::StrCat("head -c 67108864 /dev/zero | ", ssh("wc -c"))});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(up.out, "67108864\n");
}

// A hostile agent: bytes that are not SSH, or an SSH banner followed by garbage, end its
// own session with an audit event; interlockd serves the next agent as before.
TEST_F(SshTest, MalformedAgentBytesEndOnlyThatSession) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  for (const std::string& bytes : {std::string("GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"),
                                   std::string("SSH-2.0-evil\\r\\n\\x00\\x00\\xff\\xff\\x07garbage"),
                                   std::string("SSH-2.0-evil\\r\\n\\x00\\x00\\x00\\x0c\\x0a\\x14") +
                                       std::string(64, 'A')}) {
    CommandResult r = h->RunAgent(
        "agent", {"/usr/bin/python3", "-c",
                  absl::StrCat("import socket; s=socket.create_connection(('127.0.0.71',", sshd_->port(),
                               "), timeout=20); s.sendall(b'", bytes,
                               "'); s.settimeout(20)\ntry:\n  while s.recv(4096): pass\nexcept OSError: pass\n")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  int protocol_errors = 0;
  ASSERT_TRUE(WaitFor([&] {
    protocol_errors = 0;
    for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_SESSION_END)) {
      protocol_errors += e.outcome() == "agent_protocol_error";
    }
    return protocol_errors == 3;
  }, 30)) << protocol_errors << h->DaemonLog();
  CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "uptime"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("load average"));
}

// A shell line is judged as a whole: an ALLOW rule for `ls` does not let `ls; id` through,
// nor an allowed program smuggled behind a separator, a substitution or a pipe.
TEST_F(SshTest, ShellLinesAreNotJudgedByTheirFirstWord) {
  // `rm` denied outright here (not reviewed): a shell line, whose programs cannot be
  // known, meets that rule too (fail closed) and is refused at once.
  std::string policy(kPolicy);
  policy.replace(policy.find("action: ACTION_REVIEW"), 21, "action: ACTION_DENY  ");
  ASSERT_TRUE(WriteFileAtomic(policy_file_, policy, 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  const std::string marker = absl::StrCat(dir_, "/pwned");
  for (const std::string& line :
       {absl::StrCat("ls; touch ", marker), absl::StrCat("echo $(touch ", marker, ")"),
        absl::StrCat("ls | touch ", marker), absl::StrCat("ls\ntouch ", marker), absl::StrCat("touch ", marker),
        absl::StrCat("FOO=1 touch ", marker), absl::StrCat("/tmp/../usr/bin/touch ", marker)}) {
    CommandResult r = Ssh(*h, kh, {"root@127.0.0.71", line});
    EXPECT_EQ(r.exit_code, 126) << line << "\n" << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("interlock: denied by policy")) << line;
    EXPECT_FALSE(PathExists(marker)) << line;
  }
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_SSH_REQUEST)) {
    EXPECT_EQ(e.outcome(), "denied") << e.ssh().command();
    EXPECT_FALSE(e.ssh().forwarded());
    EXPECT_EQ(e.ssh().exit_status(), 126);
  }
}

TEST_F(SshTest, HeldCommandRunsOnlyAfterApprovalAndDenialReachesTheAgent) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  const std::string out = absl::StrCat(dir_, "/agent.out");
  auto held = [&] {
    std::vector<std::string> argv = h->RunArgv("agent");
    for (const std::string& a : SshArgv(kh, {"root@127.0.0.71", absl::StrCat("rm -rf ", data_dir_)})) {
      argv.push_back(a);
    }
    return Spawn(argv, out);
  };
  // Denied: the directory stays, the agent reads why.
  pid_t agent = held();
  ASSERT_GT(agent, 0);
  std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  auto pending = h->Approvals();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].protocol(), "ssh");
  EXPECT_EQ(pending[0].statement(), absl::StrCat("rm -rf ", data_dir_));
  EXPECT_EQ(pending[0].rule_id(), "review-rm");
  EXPECT_TRUE(PathExists(data_dir_));
  ASSERT_EQ(h->Cli({"deny", id, "--reason", "not today"}).exit_code, 0);
  EXPECT_EQ(WaitProcess(agent, 30), 126);
  EXPECT_TRUE(PathExists(absl::StrCat(data_dir_, "/keep")));
  std::string text = ReadFile(out).value_or("");
  EXPECT_THAT(text, HasSubstr(absl::StrCat("interlock: held for approval (", id, ")")));
  EXPECT_THAT(text, HasSubstr("interlock: denied by an approver: not today"));
  // Approved: it runs, byte for byte what the approver saw.
  agent = held();
  ASSERT_GT(agent, 0);
  id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  EXPECT_TRUE(PathExists(data_dir_));
  ASSERT_EQ(h->Cli({"approve", id, "--reason", "ticket 7"}).exit_code, 0);
  EXPECT_EQ(WaitProcess(agent, 30), 0) << ReadFile(out).value_or("");
  EXPECT_FALSE(PathExists(data_dir_));
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].decision().source(), "review_denied");
  EXPECT_EQ(events[1].decision().source(), "approved");
  EXPECT_EQ(events[1].decision().approval_id(), id);
  EXPECT_EQ(events[1].ssh().exit_status(), 0);
}

// Nobody decides in time: the held command never runs, and the agent is told.
TEST_F(SshTest, HeldCommandTimesOutDenied) {
  std::string policy(kPolicy);
  policy.replace(policy.find("review_timeout_s: 60"), 20, "review_timeout_s: 2 ");
  ASSERT_TRUE(WriteFileAtomic(policy_file_, policy, 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", absl::StrCat("rm -rf ", data_dir_)});
  EXPECT_EQ(r.exit_code, 126) << r.err;
  EXPECT_THAT(r.err, HasSubstr("interlock: held for approval (apr-"));
  EXPECT_THAT(r.err, HasSubstr("interlock: denied: no approver decided in time"));
  EXPECT_TRUE(PathExists(absl::StrCat(data_dir_, "/keep")));
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].decision().source(), "review_timeout");
  EXPECT_FALSE(events[0].ssh().forwarded());
}

// The agent gives up while its command is held: the request expires, it can never be
// approved into running later.
TEST_F(SshTest, HeldRequestExpiresWhenTheAgentLeaves) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  std::vector<std::string> argv = h->RunArgv("agent");
  for (const std::string& a : SshArgv(KnownHosts(*h), {"root@127.0.0.71", absl::StrCat("rm -rf ", data_dir_)})) {
    argv.push_back(a);
  }
  pid_t agent = Spawn(argv, absl::StrCat(dir_, "/agent.out"));
  ASSERT_GT(agent, 0);
  const std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  // The agent's ssh (`interlock run` forks it: the pid the kernel attested) dies.
  auto pending = h->Approvals();
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_GT(pending[0].requester().pid(), 0u);
  ASSERT_EQ(::kill(static_cast<pid_t>(pending[0].requester().pid()), SIGKILL), 0);
  EXPECT_EQ(WaitProcess(agent, 30), 128 + SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    for (const v1::ApprovalRequest& a : h->Approvals(/*all=*/true)) {
      if (a.id() == id) return a.state() == v1::APPROVAL_STATE_EXPIRED;
    }
    return false;
  }, 30)) << h->DaemonLog() << h->Cli({"approvals", "--all"}).out;
  EXPECT_NE(h->Cli({"approve", id, "--reason", "too late"}).exit_code, 0);
  EXPECT_TRUE(PathExists(absl::StrCat(data_dir_, "/keep")));
}

// interlockd stops (SIGTERM, or the old process of an upgrade) while a command is held:
// after drain_ms the request is withdrawn, the agent's ssh is told its command did not run
// (stderr, exit status 126) instead of a reset, and the command
// never runs, not even once interlockd is back.
TEST_F(SshTest, HeldCommandWhenInterlockdStopsIsToldItDidNotRun) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  std::vector<std::string> argv = h->RunArgv("agent");
  for (const std::string& a : SshArgv(KnownHosts(*h), {"root@127.0.0.71", absl::StrCat("rm -rf ", data_dir_)})) {
    argv.push_back(a);
  }
  const std::string out = absl::StrCat(dir_, "/agent.out");
  pid_t agent = Spawn(argv, out);
  ASSERT_GT(agent, 0);
  const std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  ASSERT_EQ(h->Stop(), 0) << h->DaemonLog();
  EXPECT_EQ(WaitProcess(agent, 30), 126);
  const std::string text = ReadFile(out).value_or("");
  EXPECT_THAT(text, HasSubstr("interlock: interlockd is stopping; the command was not run")) << text;
  EXPECT_TRUE(PathExists(absl::StrCat(data_dir_, "/keep")));
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome(), "withdrawn");
  EXPECT_FALSE(events[0].ssh().forwarded());
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  for (const v1::ApprovalRequest& a : h->Approvals(/*all=*/true)) {
    if (a.id() == id) {
      EXPECT_EQ(a.state(), v1::APPROVAL_STATE_EXPIRED);
    }
  }
  EXPECT_NE(h->Cli({"approve", id, "--reason", "too late"}).exit_code, 0);
  EXPECT_TRUE(PathExists(absl::StrCat(data_dir_, "/keep")));
}

// require_grant: no request runs without the workload's just-in-time grant; with one, the
// policy judges as usual.
TEST_F(SshTest, RequireGrantGatesEveryRequest) {
  std::string policy(kPolicy);
  policy.replace(policy.find("default_action: ACTION_DENY}"), 28, "default_action: ACTION_DENY, require_grant: true}");
  ASSERT_TRUE(WriteFileAtomic(policy_file_, policy, 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  CommandResult r = Ssh(*h, kh, {"root@127.0.0.71", "uptime"});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_THAT(r.err, HasSubstr("requires a just-in-time grant; an operator can run: interlock grant --workload agent"));
  CommandResult grant = h->Cli({"grant", "--workload", "agent", "--resource", "box", "--for", "15m", "--reason", "INC-1"});
  ASSERT_EQ(grant.exit_code, 0) << grant.out << grant.err;
  r = Ssh(*h, kh, {"root@127.0.0.71", "uptime"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("load average"));
}

// Agent tokens over SSH: the password userauth carries a JWT of the resource's issuer (or the
// token bound at enrollment does); with require_agent_token nothing reaches the upstream
// without a valid one, and a valid one's subject is what the policy judges.
TEST_F(SshTest, AgentTokenAsPasswordIdentifiesTheAgent) {
  auto idp = TestIssuer::Create("https://idp.test");
  ASSERT_TRUE(idp.ok());
  ASSERT_TRUE((*idp)->AddKey("ec-1", TestKeyKind::kP256).ok());
  auto evil = TestIssuer::Create("https://idp.test");
  ASSERT_TRUE(evil.ok());
  ASSERT_TRUE((*evil)->AddKey("ec-1", TestKeyKind::kP256).ok());  // same issuer and kid, another key
  const std::string jwks = absl::StrCat(dir_, "/jwks.json");
  ASSERT_TRUE(WriteFileAtomic(jwks, (*idp)->Jwks(), 0644).ok());
  auto token = [&](TestIssuer& issuer, const std::string& sub) {
    auto t = issuer.Mint("ec-1", "ES256", issuer.StandardClaims(absl::Now(), sub));
    EXPECT_TRUE(t.ok());
    return t.value_or("");
  };
  // Only the token subject "oncall-7" may run `id`; everyone may run uptime.
  std::string policy(kPolicy);
  policy += "  - id: oncall-id\n    subject: {subs: [oncall-7]}\n"
            "    match: {resources: [box], ssh: {requests: [exec], programs: [whoami]}}\n    action: ACTION_ALLOW\n";
  ASSERT_TRUE(WriteFileAtomic(policy_file_, policy, 0644).ok());
  const std::string yaml = absl::StrCat("      token_issuers: [corp-idp]\n      require_agent_token: true\n");
  auto h = Daemon("", "", yaml,
                  absl::StrCat("oidc_issuers:\n  - name: corp-idp\n    issuer: \"https://idp.test\"\n"
                               "    audiences: [interlock]\n    algorithms: [ES256]\n    jwks_file: ",
                               jwks, "\n"));
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string script = R"PY(
import socket, sys, paramiko
sock = socket.create_connection(("127.0.0.71", int(sys.argv[1])), timeout=20)
t = paramiko.Transport(sock)
t.start_client(timeout=20)
try:
    if sys.argv[2] == "-":
        t.auth_none("root")
    else:
        t.auth_password("root", sys.argv[2])
except paramiko.AuthenticationException as e:
    print("refused", t.get_banner().decode().strip() if t.get_banner() else "")
    sys.exit(0)
for cmd in sys.argv[3:]:
    ch = t.open_session()
    ch.exec_command(cmd)
    out = ch.makefile().read().decode().strip()
    err = ch.makefile_stderr().read().decode().strip()
    print(cmd, ch.recv_exit_status(), out, err)
t.close()
)PY";
  auto paramiko = [&](const std::string& password, std::vector<std::string> cmds) {
    std::vector<std::string> argv = {"/usr/bin/python3", "-c", script, absl::StrCat(sshd_->port()), password};
    argv.insert(argv.end(), cmds.begin(), cmds.end());
    return h->RunAgent("agent", argv);
  };
  // No token, a forged one: refused before any upstream login, the reason in the banner.
  CommandResult r = paramiko("-", {"uptime"});
  EXPECT_THAT(r.out, HasSubstr("refused interlock: box needs an agent token")) << r.err;
  r = paramiko(token(**evil, "oncall-7"), {"uptime"});
  EXPECT_THAT(r.out, HasSubstr("refused interlock: box needs an agent token: the token is not valid")) << r.err;
  EXPECT_THAT(sshd_->Log(), Not(HasSubstr("Accepted publickey")));
  // A valid token: in, and its subject counts for the policy.
  r = paramiko(token(**idp, "dev-1"), {"uptime", "whoami"});
  EXPECT_THAT(r.out, HasSubstr("uptime 0 ")) << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("whoami 126"));
  r = paramiko(token(**idp, "oncall-7"), {"whoami"});
  EXPECT_THAT(r.out, HasSubstr("whoami 0 root")) << r.err << h->DaemonLog();
  bool invalid = false, named = false;
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_AUTH)) invalid |= e.reason() == "agent_token_invalid";
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_SSH_REQUEST)) {
    named |= e.identity().token_subject() == "oncall-7" && e.decision().rule_id() == "oncall-id";
  }
  EXPECT_TRUE(invalid);
  EXPECT_TRUE(named);
  // The token bound at enrollment serves OpenSSH's ssh, which logs in with "none".
  const std::string token_file = absl::StrCat(dir_, "/agent.jwt");
  ASSERT_TRUE(WriteFileAtomic(token_file, token(**idp, "oncall-7"), 0644).ok());
  MakeReadableByAgent(token_file);
  AgentOptions o;
  o.run_args = {"--token-file", token_file};
  r = h->RunAgent("agent", SshArgv(KnownHosts(*h), {"root@127.0.0.71", "whoami"}), o);
  EXPECT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "root\n");
}

// Forwarding would reach past the resource (to any host the upstream can reach): refused
// by interlockd, whatever the upstream allows (this sshd allows it), and audited.
TEST_F(SshTest, PortForwardingIsRefusedAndAudited) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  CommandResult w = Ssh(*h, kh, {"-W", absl::StrCat("127.0.0.71:", sshd_->port()), "root@127.0.0.71"});
  EXPECT_NE(w.exit_code, 0);
  EXPECT_THAT(w.err, HasSubstr("open failed"));
  CommandResult r = Ssh(*h, kh, {"-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.71:9", "root@127.0.0.71", "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("forwarding failed"));
  std::vector<std::string> refused;
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_SSH_REQUEST)) {
    if (e.outcome() == "refused") refused.push_back(e.ssh().request());
  }
  EXPECT_THAT(refused, ::testing::IsSupersetOf({"direct-tcpip", "tcpip-forward"}));
  // Agent forwarding: asked for with the command, refused, the command still runs.
  const std::string agent_dir = MakeAgentDir("interlock-ssh-fwd-");
  CommandResult a = h->RunAgent(
      "agent", {"/bin/sh", "-c",
                absl::StrCat("export SSH_AUTH_SOCK=", agent_dir, "/agent.sock; ssh-agent -a ", agent_dir,
                             "/agent.sock > /dev/null && ",
                             [&] {
                               std::string line;
                               for (const std::string& arg :
                                    SshArgv(kh, {"-A", "root@127.0.0.71", "true"})) {
                                 absl::StrAppend(&line, "'", arg, "' ");
                               }
                               return line;
                             }(),
                             "; rc=$?; ssh-agent -k > /dev/null; exit $rc")});
  EXPECT_EQ(a.exit_code, 0) << a.out << a.err;
  refused.clear();
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_SSH_REQUEST)) {
    if (e.outcome() == "refused") refused.push_back(e.ssh().request());
  }
  EXPECT_THAT(refused, ::testing::Contains("auth-agent-req@openssh.com"));
  RemoveTree(agent_dir);
  // X11: ssh -Y with a display asks for x11-req (fake cookie data without an X server);
  // refused, and the command still runs without it.
  std::vector<std::string> x11 = {"/usr/bin/env", "DISPLAY=127.0.0.1:99"};
  for (const std::string& arg : SshArgv(kh, {"-Y", "root@127.0.0.71", "echo no-x11"})) x11.push_back(arg);
  CommandResult x = h->RunAgent("agent", x11);
  EXPECT_EQ(x.exit_code, 0) << x.out << x.err;
  EXPECT_EQ(x.out, "no-x11\n");
  EXPECT_THAT(x.err, HasSubstr("X11 forwarding request failed"));
  refused.clear();
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_SSH_REQUEST)) {
    if (e.outcome() == "refused") refused.push_back(e.ssh().request());
  }
  EXPECT_THAT(refused, ::testing::Contains("x11-req"));
}

// Output masking. A MASK rule on `cat`, and with it the policy's floor: every request on
// the resource gets its output masked (an allowed `sh` cannot print what `cat` would have
// masked). The data and the profile are the same for both tests below.
constexpr char kMaskPolicy[] = R"YAML(
resources:
  - {resource: box, default_action: ACTION_DENY}
rules:
  - id: mask-cat
    match: {resources: [box], ssh: {requests: [exec], programs: [cat]}}
    action: ACTION_MASK
    mask_profile: pii
  - id: tools
    match: {resources: [box], ssh: {requests: [exec], programs: [sh, echo]}}
    action: ACTION_ALLOW
  - id: review-grep
    match: {resources: [box], ssh: {requests: [exec], programs: [grep]}}
    action: ACTION_REVIEW
mask_profiles:
  - name: pii
    detectors: [{detector: DETECTOR_SSN}, {detector: DETECTOR_CARD}, {detector: DETECTOR_EMAIL}]
)YAML";
constexpr char kCustomers[] = "name Ann\nssn 078-05-1120\ncard 4111 1111 1111 1111 mail ann@example.com\n";

void ExpectNoSecrets(const std::string& text) {
  EXPECT_THAT(text, Not(HasSubstr("078-05-1120")));
  EXPECT_THAT(text, Not(HasSubstr("4111 1111")));
  EXPECT_THAT(text, Not(HasSubstr("ann@example.com")));
}

// With ssh.mask_output the command runs, and what the agent reads — stdout, stderr, a
// prompt that never ends its line — and what the recording keeps are masked; a line that
// cannot be held whole stops the channel instead of passing unmasked.
TEST_F(SshTest, MaskedOutputHidesDetectedValuesLineByLine) {
  ASSERT_TRUE(WriteFileAtomic(policy_file_, kMaskPolicy, 0644).ok());
  const std::string file = absl::StrCat(data_dir_, "/customers.txt");
  ASSERT_TRUE(WriteFileAtomic(file, kCustomers, 0644).ok());
  auto h = Daemon("", "", "      mask_output: true\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);

  CommandResult r = Ssh(*h, kh, {"root@127.0.0.71", absl::StrCat("cat ", file)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "name Ann\nssn [REDACTED]\ncard [REDACTED] mail [REDACTED]\n");
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome(), "masked");
  EXPECT_EQ(events[0].decision().action(), "MASK");
  EXPECT_EQ(events[0].decision().rule_id(), "mask-cat");
  EXPECT_EQ(events[0].decision().mask_profile(), "pii");
  EXPECT_EQ(events[0].ssh().output_masking(), "masked");
  EXPECT_EQ(events[0].ssh().masking().profile(), "pii");
  EXPECT_EQ(events[0].ssh().masking().values_masked(), 3u);
  EXPECT_EQ(events[0].ssh().masking().detector_counts().at("ssn"), 1u);
  EXPECT_EQ(events[0].ssh().bytes_out(), std::string(kCustomers).size());  // as the upstream sent it
  // The recording holds what the agent saw.
  CommandResult replay = h->Cli({"replay", events[0].session_id()});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("[REDACTED]"));
  ExpectNoSecrets(replay.out);
  EXPECT_EQ(h->Cli({"verify", events[0].session_id()}).exit_code, 0);

  // An allowed command under the floor: stderr too, and a line left open for a while (a
  // prompt) is masked and released before the command goes on.
  r = Ssh(*h, kh, {"root@127.0.0.71",
                   "sh -c 'echo mail ann@example.com >&2; printf \"ssn 078-05-1120 $ \"; sleep 1; echo after'"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ssn [REDACTED] $ after\n");
  EXPECT_THAT(r.err, HasSubstr("mail [REDACTED]\n"));
  ExpectNoSecrets(r.out + r.err);
  events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].decision().action(), "ALLOW");
  EXPECT_EQ(events[1].decision().mask_profile(), "pii");
  EXPECT_EQ(events[1].ssh().output_masking(), "masked");
  EXPECT_EQ(events[1].ssh().masking().values_masked(), 2u);
  // The recording keeps the output masked (the command line is the agent's own words, and
  // is recorded as sent).
  CommandResult recorded = h->Cli({"replay", events[1].session_id()});
  EXPECT_THAT(recorded.out, HasSubstr("stdout      ssn [REDACTED] $ after"));
  EXPECT_THAT(recorded.out, HasSubstr("stderr      mail [REDACTED]"));
  // The prompt went out on its own, while the command slept (asciicast keeps each piece).
  CommandResult cast = h->Cli({"replay", events[1].session_id(), "--asciicast", "--channel", "0"});
  EXPECT_THAT(cast.out, HasSubstr("\"o\", \"ssn [REDACTED] $ \"]")) << cast.out;
  EXPECT_THAT(cast.out, HasSubstr("\"o\", \"after")) << cast.out;

  // A held command, once approved, runs under the same masks.
  const std::string out = absl::StrCat(dir_, "/held.out");
  std::vector<std::string> held = h->RunArgv("agent");
  for (const std::string& a : SshArgv(kh, {"root@127.0.0.71", absl::StrCat("grep ssn ", file)})) held.push_back(a);
  pid_t agent = Spawn(held, out);
  ASSERT_GT(agent, 0);
  const std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  ASSERT_EQ(h->Cli({"approve", id, "--reason", "ticket 9"}).exit_code, 0);
  EXPECT_EQ(WaitProcess(agent, 30), 0);
  const std::string held_out = ReadFile(out).value_or("");
  EXPECT_THAT(held_out, HasSubstr("ssn [REDACTED]\n"));
  ExpectNoSecrets(held_out);
  events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].decision().source(), "approved");
  EXPECT_EQ(events[2].ssh().output_masking(), "masked");

  // More than 1 MiB without a line end cannot be masked whole: stopped, never passed.
  r = Ssh(*h, kh, {"root@127.0.0.71", "sh -c 'echo first; head -c 1100000 /dev/zero | tr \"\\000\" 4; echo'"});
  EXPECT_EQ(r.exit_code, 126) << r.err;
  EXPECT_EQ(r.out, "first\n");
  EXPECT_THAT(r.err, HasSubstr("interlock: output stopped: a text line longer than 1048576 bytes cannot be masked"));
  events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].outcome(), "mask_failed");
  EXPECT_THAT(events[3].ssh().output_masking(), ::testing::StartsWith("failed: a text line longer"));
  // The session is still good for the next command.
  r = Ssh(*h, kh, {"root@127.0.0.71", "echo still-here"});
  EXPECT_EQ(r.out, "still-here\n");
}

// Without ssh.mask_output, a request whose output must be masked does not run at all —
// the one the MASK rule names and, through the floor, every other — and the agent reads
// why.
TEST_F(SshTest, OutputThatMustBeMaskedIsDeniedWhereTheResourceDoesNotMask) {
  ASSERT_TRUE(WriteFileAtomic(policy_file_, kMaskPolicy, 0644).ok());
  const std::string file = absl::StrCat(data_dir_, "/customers.txt");
  ASSERT_TRUE(WriteFileAtomic(file, kCustomers, 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string kh = KnownHosts(*h);
  for (const std::string& command : {absl::StrCat("cat ", file), std::string("echo hello")}) {
    CommandResult r = Ssh(*h, kh, {"root@127.0.0.71", command});
    EXPECT_EQ(r.exit_code, 126) << command << r.out << r.err;
    EXPECT_EQ(r.out, "") << command;
    EXPECT_THAT(r.err, HasSubstr("interlock: denied: this command's output must be masked (profile \"pii\"), and "
                                 "this resource does not mask SSH output (ssh.mask_output)"));
  }
  auto events = Events(*h, v1::AUDIT_KIND_SSH_REQUEST);
  ASSERT_EQ(events.size(), 2u);
  for (const v1::AuditEvent& e : events) {
    EXPECT_EQ(e.outcome(), "denied");
    EXPECT_EQ(e.decision().action(), "DENY");
    EXPECT_EQ(e.decision().source(), "mask_required");
    EXPECT_EQ(e.decision().mask_profile(), "pii");
    EXPECT_FALSE(e.ssh().forwarded());
  }
}

// `interlock run` hands the agent the trust its unchanged ssh needs: the known_hosts lines
// in INTERLOCK_SSH_KNOWN_HOSTS, which the packages' ssh_config include adds to ssh's files,
// and GIT_SSH_COMMAND as git runs it. Without the variable the include does nothing and
// ssh refuses interlockd, as it should.
TEST_F(SshTest, InterlockRunGivesTheAgentsSshItsTrust) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string include = INTERLOCK_SOURCE_DIR "/packaging/etc/ssh/interlock.conf";
  const std::vector<std::string> options = {"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
                                            "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-p",
                                            absl::StrCat(sshd_->port()), "root@127.0.0.71"};
  std::vector<std::string> argv = {"/usr/bin/ssh", "-F", include};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("echo through-the-include");
  CommandResult r = h->RunAgent("agent", argv);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "through-the-include\n");
  // The file interlock run wrote holds exactly `interlock ssh known-hosts`' lines.
  CommandResult printed = h->RunAgent("agent", {"/bin/sh", "-c", "cat \"$INTERLOCK_SSH_KNOWN_HOSTS\""});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, h->Cli({"ssh", "known-hosts"}).out);
  // As git runs it: sh -c '<GIT_SSH_COMMAND> "$@"' with ssh's arguments.
  std::vector<std::string> git = {"/bin/sh", "-c", "exec /bin/sh -c \"$GIT_SSH_COMMAND \\\"\\$@\\\"\" ssh \"$@\"", "sh",
                                  "-F", "/dev/null"};
  git.insert(git.end(), options.begin(), options.end());
  git.push_back("echo through-git");
  r = h->RunAgent("agent", git);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "through-git\n");
  // The variable removed: the include adds nothing, and ssh refuses interlockd's key.
  std::vector<std::string> bare = {"/usr/bin/env", "-u", "INTERLOCK_SSH_KNOWN_HOSTS"};
  bare.insert(bare.end(), argv.begin(), argv.end());
  r = h->RunAgent("agent", bare);
  EXPECT_EQ(r.exit_code, 255) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("Host key verification failed"));
}

// The agent's ssh trusts interlockd only through the known_hosts lines: without them it
// refuses to talk (interlockd is not the upstream and does not pretend to hold its key).
TEST_F(SshTest, AgentTrustsInterlockdOnlyThroughKnownHosts) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string empty = absl::StrCat(dir_, "/empty_known_hosts");
  ASSERT_TRUE(WriteFileAtomic(empty, "", 0644).ok());
  MakeReadableByAgent(empty);
  CommandResult r = Ssh(*h, empty, {"root@127.0.0.71", "true"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_THAT(r.err, HasSubstr("Host key verification failed"));
  // The upstream's own known_hosts line does not match interlockd either.
  MakeReadableByAgent(sshd_->known_hosts_file());
  r = Ssh(*h, sshd_->known_hosts_file(), {"root@127.0.0.71", "true"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_THAT(r.err, HasSubstr("REMOTE HOST IDENTIFICATION HAS CHANGED"));
  r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// Someone else's server at the upstream's address (here: the right server, pinned to
// another key) never receives the login: the session is refused before userauth, the agent
// reads why, and the audit event names the mismatch.
TEST_F(SshTest, UpstreamHostKeyMismatchIsRefused) {
  auto h = Daemon("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "true"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("interlock: cannot open box: the upstream's host key ",
                                            sshd_->host_key_sha256(), " is not the one pinned")));
  EXPECT_THAT(sshd_->Log(), Not(HasSubstr("Accepted publickey")));
  bool audited = false;
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_AUTH)) {
    audited |= e.reason() == "upstream_host_key_mismatch" && e.outcome() == "denied";
  }
  EXPECT_TRUE(audited);
}

// The pin as a known_hosts file: the upstream's own line lets it in; the same key listed
// @revoked is refused even with its plain line still in the file.
TEST_F(SshTest, KnownHostsFilePinsAndRevokes) {
  const std::string pin_file = absl::StrCat(dir_, "/upstream_known_hosts");
  const std::string line = *ReadFile(sshd_->known_hosts_file());
  ASSERT_TRUE(WriteFileAtomic(pin_file, line, 0644).ok());
  const std::string yaml = absl::StrCat("      upstream_known_hosts_file: ", pin_file, "\n");
  {
    // A fingerprint that is not the upstream's, so that the file decides.
    auto h = Daemon("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", yaml);
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "uptime"});
    EXPECT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
  }
  const std::string key_fields = line.substr(line.find(' ') + 1);
  ASSERT_TRUE(WriteFileAtomic(pin_file, absl::StrCat(line, "@revoked * ", key_fields), 0644).ok());
  auto h = Daemon(sshd_->host_key_sha256(), "", yaml);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "uptime"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_THAT(r.err, HasSubstr("is revoked"));
}

// Upstream login by an OpenSSH user certificate (the server trusts a user CA, knows no
// key): the resource names the certificate next to the key.
TEST_F(SshTest, LogsInUpstreamWithAUserCertificate) {
  sshd_.reset();
  auto sshd = SshdServer::Start({.address = "127.0.0.71", .certificate_login = true});
  ASSERT_TRUE(sshd.ok()) << sshd.status();
  sshd_ = *std::move(sshd);
  {
    // Without the certificate the bare key is refused: the server knows only the CA.
    auto h = Daemon();
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "uptime"});
    EXPECT_EQ(r.exit_code, 255);
    EXPECT_THAT(r.err, HasSubstr("the upstream refused the resource's key"));
  }
  auto h = Daemon("", "", "");
  std::string yaml = *ReadFile(h->config_path());
  const std::string key_ref = absl::StrCat("private_key_ref: \"file:", sshd_->login_key(), "\"");
  yaml.replace(yaml.find(key_ref), key_ref.size(),
               absl::StrCat(key_ref, ", certificate_file: ", sshd_->login_certificate()));
  ASSERT_TRUE(WriteFileAtomic(h->config_path(), yaml, 0644).ok());
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "uptime"});
  EXPECT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
  EXPECT_THAT(sshd_->Log(), HasSubstr("Accepted publickey for root"));
  EXPECT_THAT(sshd_->Log(), HasSubstr("ID interlock-test"));
}

TEST_F(SshTest, WrongLoginKeyGivesTheAgentAClearError) {
  const std::string other = absl::StrCat(dir_, "/other_key");
  ASSERT_EQ(RunCommand({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other}).exit_code, 0);
  auto h = Daemon("", other);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Ssh(*h, KnownHosts(*h), {"root@127.0.0.71", "true"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_THAT(r.err, HasSubstr("interlock: cannot open box: the upstream refused the resource's key for user root"));
  EXPECT_THAT(r.err, Not(HasSubstr(other)));  // the key's path is the operator's business
  bool audited = false;
  for (const v1::AuditEvent& e : Events(*h, v1::AUDIT_KIND_AUTH)) {
    audited |= e.reason() == "upstream_login_failed" && e.outcome() == "denied";
  }
  EXPECT_TRUE(audited);
}

}  // namespace
}  // namespace interlock::testing
