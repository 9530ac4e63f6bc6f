// End-to-end tests of the interception core: real eBPF redirect, real interlockd, real
// TCP upstream (EchoServer on a 127.0.0.x alias), the agent is `interlock-probe` started
// by `interlock run`.
#include <sys/resource.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/file_util.h"
#include "userspace/record/reader.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    // The in-process echo service holds one fd per session (1,000 at once below).
    rlimit rl;
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
    ASSERT_GE(rl.rlim_cur, 4096u) << "the 1,000-session test needs more file descriptors";
    ASSERT_TRUE(echo_.Start("127.0.0.42", 0).ok());
  }
  std::string Probe() { return BinaryPath("interlock-probe"); }
  std::string EchoPort() { return absl::StrCat(echo_.port()); }

  tools::EchoServer echo_;
};

TEST_F(RelayTest, EnrolledAgentReachesUpstreamThroughInterlockdAndSeesOriginalPeer) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();

  CommandResult r = h.RunAgent("billing-agent", {Probe(), "connect", "127.0.0.42", EchoPort()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port()));
  EXPECT_EQ(ProbeField(r.out, "reply"), "ping\\n");
  EXPECT_EQ(echo_.accepted(), 1u);

  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto events = h.AuditEvents();
  auto starts = OfKind(events, v1::AUDIT_KIND_SESSION_START);
  auto ends = OfKind(events, v1::AUDIT_KIND_SESSION_END);
  ASSERT_EQ(starts.size(), 1u);
  ASSERT_EQ(ends.size(), 1u);
  const v1::WorkloadIdentity& who = ends[0].identity();
  EXPECT_EQ(who.workload(), "billing-agent");
  EXPECT_EQ(who.comm(), "interlock-probe");
  EXPECT_EQ(who.exe(), Probe());
  EXPECT_EQ(who.uid(), kAgentUid);  // agents run as nobody (RunAgent's default)
  EXPECT_GT(who.pid(), 0u);
  EXPECT_THAT(who.cgroup_path(), HasSubstr(absl::StrCat("/", h.cgroup_root(), "/workloads/billing-agent.")));
  EXPECT_EQ(ends[0].resource(), "echo");
  EXPECT_EQ(ends[0].original_destination().address(), "127.0.0.42");
  EXPECT_EQ(ends[0].original_destination().port(), echo_.port());
  EXPECT_EQ(ends[0].bytes_to_upstream(), 5u);
  EXPECT_EQ(ends[0].bytes_to_agent(), 5u);
  EXPECT_EQ(ends[0].outcome(), "closed");
  EXPECT_EQ(ends[0].session_id(), starts[0].session_id());

  // The session is listed, replays with its bytes and verifies.
  CommandResult list = h.Cli({"sessions", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr(ends[0].session_id()));
  EXPECT_THAT(list.out, HasSubstr("\"state\":\"sealed\""));
  CommandResult replay = h.Cli({"replay", ends[0].session_id().substr(0, 10)});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("billing-agent"));
  EXPECT_THAT(replay.out, HasSubstr("ping\\n"));
  CommandResult verify = h.Cli({"verify", ends[0].session_id()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // One flipped byte in the recording and verify fails.
  std::string path = absl::StrCat(h.state_dir(), "/recordings/", ends[0].session_id(), ".rec");
  auto bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  std::string tampered = *bytes;
  size_t at = tampered.find("ping");
  ASSERT_NE(at, std::string::npos);
  tampered[at] = 'P';
  ASSERT_TRUE(WriteFileAtomic(path, tampered, 0600).ok());
  verify = h.Cli({"verify", ends[0].session_id()});
  EXPECT_EQ(verify.exit_code, 4) << verify.out << verify.err;
}

TEST_F(RelayTest, Ipv6AndV4MappedDestinationsAreRedirected) {
  tools::EchoServer echo6;
  ASSERT_TRUE(echo6.Start("::1", 0).ok());
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()},
                                     {"echo6", "::1", echo6.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();

  // An AF_INET6 socket dialling ::ffff:127.0.0.42 is the IPv4 resource, not a bypass.
  CommandResult mapped =
      h.RunAgent("agent", {Probe(), "connect", "127.0.0.42", EchoPort(), "--v6socket"});
  ASSERT_EQ(mapped.exit_code, 0) << mapped.out << mapped.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(mapped.out, "peer"), absl::StrCat("[::ffff:127.0.0.42]:", echo_.port()));

  CommandResult v6 = h.RunAgent("agent", {Probe(), "connect", "::1", absl::StrCat(echo6.port())});
  ASSERT_EQ(v6.exit_code, 0) << v6.out << v6.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(v6.out, "peer"), absl::StrCat("[::1]:", echo6.port()));

  ASSERT_TRUE(WaitFor([&] { return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 2; }));
  auto ends = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END);
  std::vector<std::string> resources = {ends[0].resource(), ends[1].resource()};
  EXPECT_THAT(resources, ::testing::UnorderedElementsAre("echo", "echo6"));
  echo6.Stop();
}

TEST_F(RelayTest, NonEnrolledProcessIsUntouched) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = RunCommand({Probe(), "connect", "127.0.0.42", EchoPort()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(ProbeField(r.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port()));
  // It reached the service directly: no session, and the agent's local address is the
  // alias route's, not interlockd's loopback pair.
  EXPECT_EQ(echo_.accepted(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START).empty());
}

TEST_F(RelayTest, DefaultDenyRefusesUnlistedDestinationWithEpermAndAudit) {
  tools::EchoServer other;
  ASSERT_TRUE(other.Start("127.0.0.43", 0).ok());
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();

  CommandResult denied = h.RunAgent(
      "locked", {Probe(), "connect", "127.0.0.43", absl::StrCat(other.port())}, /*default_deny=*/true);
  EXPECT_EQ(denied.exit_code, 1) << denied.out;
  EXPECT_EQ(ProbeField(denied.out, "errno"), "1") << denied.out;  // EPERM
  EXPECT_EQ(other.accepted(), 0u);

  // The protected resource still works for the same default-deny workload.
  CommandResult allowed =
      h.RunAgent("locked", {Probe(), "connect", "127.0.0.42", EchoPort()}, /*default_deny=*/true);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err << h.DaemonLog();

  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_CONNECT_DENIED).empty(); }));
  auto denials = OfKind(h.AuditEvents(), v1::AUDIT_KIND_CONNECT_DENIED);
  ASSERT_EQ(denials.size(), 1u);
  EXPECT_EQ(denials[0].reason(), "default_deny");
  EXPECT_EQ(denials[0].identity().workload(), "locked");
  EXPECT_EQ(denials[0].identity().comm(), "interlock-probe");
  EXPECT_EQ(denials[0].original_destination().address(), "127.0.0.43");
  EXPECT_EQ(denials[0].original_destination().port(), other.port());
  other.Stop();
}

// A hostile agent cannot take interlockd's port (to receive other agents' redirected
// connects while interlockd is down): EPERM on any address, with an audit event.
TEST_F(RelayTest, EnrolledAgentCannotBindTheEnginePort) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  const std::string port = absl::StrCat(h.engine_port());
  for (const char* ip : {"127.0.0.1", "127.0.0.9", "0.0.0.0", "::"}) {
    CommandResult r = h.RunAgent("squatter", {Probe(), "listen", ip, port});
    EXPECT_EQ(r.exit_code, 1) << ip << ": " << r.out;
    EXPECT_EQ(ProbeField(r.out, "errno"), "1") << ip << ": " << r.out;  // EPERM
  }
  // Any other port is the agent's to use.
  CommandResult free_port = h.RunAgent("squatter", {Probe(), "listen", "127.0.0.9", "0"});
  EXPECT_EQ(free_port.exit_code, 0) << free_port.out;
  ASSERT_TRUE(WaitFor([&] { return OfKind(h.AuditEvents(), v1::AUDIT_KIND_CONNECT_DENIED).size() >= 4; }));
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_CONNECT_DENIED)) {
    EXPECT_EQ(e.reason(), "engine_port_bind");
    EXPECT_EQ(e.identity().workload(), "squatter");
    EXPECT_EQ(e.original_destination().port(), h.engine_port());
  }
}

TEST_F(RelayTest, KilledDaemonFailsClosedAndRestartResumesEnforcement) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::string dir = MakeAgentDir("interlock-agent-");
  // An agent that is already enrolled when interlockd dies: it connects once while the
  // daemon is down and once after the restart, on cue.
  std::string script = absl::StrCat(
      "while [ ! -e ", dir, "/go1 ]; do sleep 0.02; done; ", Probe(), " connect 127.0.0.42 ",
      EchoPort(), " > ", dir, "/out1; touch ", dir, "/done1; while [ ! -e ", dir,
      "/go2 ]; do sleep 0.02; done; ", Probe(), " connect 127.0.0.42 ", EchoPort(), " > ", dir,
      "/out2");
  std::vector<std::string> argv = h.RunArgv("survivor");
  argv.insert(argv.end(), {"/bin/sh", "-c", script});
  pid_t agent = Spawn(argv, absl::StrCat(dir, "/run.log"));
  ASSERT_TRUE(WaitFor([&] {
    return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_ENROLLMENT).empty();
  }));

  h.Kill();
  std::ofstream(absl::StrCat(dir, "/go1")).put('\n');
  ASSERT_TRUE(WaitFor([&] { return ::access(absl::StrCat(dir, "/done1").c_str(), F_OK) == 0; }));
  std::string out1 = ReadFile(absl::StrCat(dir, "/out1")).value_or("(no output)");
  EXPECT_EQ(ProbeField(out1, "ok"), "false") << out1;
  // EPERM: the hook finds no listener of interlockd's at the engine address (the dead
  // daemon's sockets went with it) and refuses the connect itself.
  EXPECT_EQ(ProbeField(out1, "errno"), "1") << out1;
  EXPECT_EQ(echo_.accepted(), 0u) << "the upstream must see nothing while interlockd is down";

  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  EXPECT_THAT(h.DaemonLog(), HasSubstr("re-adopted"));
  std::ofstream(absl::StrCat(dir, "/go2")).put('\n');
  int rc = WaitProcess(agent, 30);
  if (rc < 0) StopProcess(agent, 1);
  EXPECT_EQ(rc, 0) << *ReadFile(absl::StrCat(dir, "/run.log"));
  std::string out2 = ReadFile(absl::StrCat(dir, "/out2")).value_or("(no output)");
  EXPECT_EQ(ProbeField(out2, "ok"), "true") << out2 << h.DaemonLog();
  EXPECT_EQ(echo_.accepted(), 1u);
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  EXPECT_EQ(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)[0].identity().workload(), "survivor");
  RemoveTree(dir);
}

class RelayModeTest : public RelayTest, public ::testing::WithParamInterface<bool> {};

TEST_P(RelayModeTest, Carries16MiBBothWaysByteExact) {
  const bool sockmap = GetParam();
  InterlockdHarness h({.sockmap = sockmap, .resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // With sockmap on, the agent does not half-close: a blocking reader on a socket in a
  // sockmap can get a spurious EAGAIN from the kernel after its own FIN (see README,
  // "Relay modes"). The plain path is also tested with the half-close.
  std::vector<std::string> cmd = {Probe(), "transfer", "127.0.0.42", EchoPort(), "16777216"};
  if (sockmap) cmd.push_back("--no-half-close");
  CommandResult r = h.RunAgent("bulk", cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "match"), "true");
  EXPECT_EQ(ProbeField(r.out, "bytes_received"), "16777216");

  CommandResult st = h.Cli({"status", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  uint64_t spliced = 0;
  std::string field = ProbeField(st.out, "spliced_messages");
  // proto3 JSON prints uint64 as a string and omits zero.
  if (!field.empty()) {
    ASSERT_TRUE(absl::SimpleAtoi(field, &spliced)) << st.out;
  }
  if (sockmap) {
    EXPECT_GT(spliced, 0u) << "sockmap mode must splice through sk_msg\n" << st.out;
  } else {
    EXPECT_EQ(spliced, 0u) << st.out;
  }
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto end = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)[0];
  EXPECT_EQ(end.bytes_to_upstream(), 16777216u);
  EXPECT_EQ(end.bytes_to_agent(), 16777216u);
  CommandResult verify = h.Cli({"verify", end.session_id()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

INSTANTIATE_TEST_SUITE_P(Modes, RelayModeTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Sockmap" : "Plain"; });

TEST_F(RelayTest, ThousandConcurrentSessions) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r =
      h.RunAgent("swarm", {Probe(), "concurrent", "127.0.0.42", EchoPort(), "1000"}, false, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "succeeded"), "1000");
  ASSERT_TRUE(WaitFor([&] {
    return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 1000;
  }, 60)) << OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size();
  EXPECT_EQ(echo_.accepted(), 1000u);
}

TEST_F(RelayTest, ControlApiRefusesEnrolledCallers) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // An agent cannot drive the control API from inside its cgroup. Run as root here
  // (--allow-root): the peer check must refuse it for its cgroup alone, root or not.
  CommandResult r = h.RunAgent(
      "sneaky", {BinaryPath("interlock"), "--config", h.config_path(), "status"},
      AgentOptions{.as_root = true});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("is an enrolled workload"));
  // As the default unprivileged agent it does not get that far.
  CommandResult unprivileged = h.RunAgent(
      "sneaky", {BinaryPath("interlock"), "--config", h.config_path(), "status"});
  EXPECT_NE(unprivileged.exit_code, 0) << unprivileged.out;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
      if (e.reason() == "control_refused") return true;
    }
    return false;
  }));
  // From outside it works.
  EXPECT_EQ(h.Cli({"status"}).exit_code, 0);
}

TEST_F(RelayTest, RunPassesExitCodeThrough) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  EXPECT_EQ(h.RunAgent("x", {"/bin/sh", "-c", "exit 7"}).exit_code, 7);
  EXPECT_EQ(h.RunAgent("x", {"/bin/sh", "-c", "kill -TERM $$"}).exit_code, 128 + 15);
  EXPECT_EQ(h.RunAgent("x", {"/nonexistent/binary"}).exit_code, 127);
}

TEST_F(RelayTest, SigtermDrainsLiveSessionsAndRefusesNewConnects) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::string dir = MakeAgentDir("interlock-agent-");
  // The agent opens a session, then waits; interlockd is told to stop; the agent then
  // uses its session (which must still work) and tries a new connect (which must not).
  std::string script = absl::StrCat(
      "exec 3<>/dev/tcp/127.0.0.42/", EchoPort(), " || exit 9; touch ", dir,
      "/open; while [ ! -e ", dir, "/go ]; do sleep 0.02; done; echo still-here >&3; ",
      "read -r line <&3; echo \"$line\" > ", dir, "/out1; ", Probe(), " connect 127.0.0.42 ",
      EchoPort(), " > ", dir, "/out2; exec 3>&-");
  std::vector<std::string> argv = h.RunArgv("drainee");
  argv.insert(argv.end(), {"/bin/bash", "-c", script});
  pid_t agent = Spawn(argv, absl::StrCat(dir, "/run.log"));
  ASSERT_TRUE(WaitFor([&] { return ::access(absl::StrCat(dir, "/open").c_str(), F_OK) == 0; }))
      << ReadFile(absl::StrCat(dir, "/run.log")).value_or("");
  ::kill(h.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::ofstream(absl::StrCat(dir, "/go")).put('\n');
  WaitProcess(agent, 30);
  EXPECT_EQ(ReadFile(absl::StrCat(dir, "/out1")).value_or(""), "still-here\n");
  std::string out2 = ReadFile(absl::StrCat(dir, "/out2")).value_or("");
  EXPECT_EQ(ProbeField(out2, "errno"), "1") << "a new connect while draining must get EPERM: " << out2;
  EXPECT_EQ(h.Stop(), 0) << h.DaemonLog();  // exits by itself once the session ended
  auto ends = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].bytes_to_upstream(), 11u);
  auto daemon = OfKind(h.AuditEvents(), v1::AUDIT_KIND_DAEMON);
  ASSERT_FALSE(daemon.empty());
  EXPECT_EQ(daemon.back().outcome(), "stopped");
  RemoveTree(dir);
}

TEST_F(RelayTest, IdleSessionIsClosedAndAudited) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}, .idle_ms = 1500});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // Connect, say nothing, and wait for interlockd to end it.
  CommandResult r = h.RunAgent(
      "sleeper", {"/bin/bash", "-c",
                  absl::StrCat("exec 3<>/dev/tcp/127.0.0.42/", EchoPort(),
                               "; read -r -t 20 line <&3; echo \"rc=$?\"")});
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("rc=142"))) << "read timed out: not closed by idle timeout";
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  EXPECT_EQ(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)[0].outcome(), "idle_timeout");
}

// interlockd writes each batch only the sessions that recorded something (proxy::FlushList),
// not every session: a session that goes quiet right after its bytes must still have them
// on disk within the batch, while it stays open, for a crash to keep them.
TEST_F(RelayTest, AQuietSessionsBytesAreOnDiskWhileItIsStillOpen) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::string dir = MakeAgentDir("interlock-quiet-");
  std::vector<std::string> argv = h.RunArgv("quiet");
  argv.insert(argv.end(), {Probe(), "idle", "127.0.0.42", EchoPort(), "3", "60"});
  pid_t agent = Spawn(argv, absl::StrCat(dir, "/probe.out"));
  absl::Cleanup stop_agent = [&] {  // also when an assertion ends the test early
    StopProcess(agent, 1);
    RemoveTree(dir);
  };
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadFile(absl::StrCat(dir, "/probe.out")).value_or(""), "\"op\":\"idle\"");
  })) << ReadFile(absl::StrCat(dir, "/probe.out")).value_or("") << h.DaemonLog();
  std::vector<v1::AuditEvent> starts;
  ASSERT_TRUE(WaitFor([&] {
    starts = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START);
    return starts.size() == 3;
  }));
  // Each session sent one byte ('a', 'b', 'c') and got it back, then went quiet.
  for (const v1::AuditEvent& start : starts) {
    const std::string path = absl::StrCat(h.state_dir(), "/recordings/", start.session_id(), ".rec");
    std::string seen;
    EXPECT_TRUE(WaitFor([&] {
      auto rec = record::ReadRecordingFile(path);
      if (!rec.ok()) return false;
      seen.clear();
      for (const v1::Record& r : rec->records) {
        if (r.has_data()) absl::StrAppend(&seen, r.data().direction() == v1::DIRECTION_TO_UPSTREAM ? ">" : "<", r.data().payload());
      }
      return seen.size() == 4;
    })) << path << ": " << seen;
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[1], seen[3]) << seen;
  }
  EXPECT_EQ(h.Status().active_sessions(), 3u) << "the sessions are still open";
}

}  // namespace
}  // namespace interlock::testing
