// Routes around the kernel hook, tried as a hostile local workload would: each test is
// one attack, on the real kernel, through a real interlockd, with an unprivileged agent
// (uid nobody) placed in an enrolled cgroup. SECURITY.md lists each route with its test.
//
// The agents here are started straight into a configured enrollment's cgroup (not with
// `interlock run`), so that they exist independently of interlockd: some tests kill it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/file_util.h"
#include "userspace/common/unique_fd.h"

namespace interlock::testing {
namespace {


std::vector<v1::AuditEvent> Denials(const InterlockdHarness& h, const std::string& reason) {
  std::vector<v1::AuditEvent> out;
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_CONNECT_DENIED)) {
    if (e.reason() == reason) out.push_back(e);
  }
  return out;
}

class BypassTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    ASSERT_TRUE(echo_.Start("127.0.0.42", 0).ok());
    auto mount = FindCgroup2Mount();
    ASSERT_TRUE(mount.ok()) << mount.status();
    cgroup_mount_ = *mount;
  }

  // A harness with the echo resource and one configured enrollment "svc" at
  // <cgroup_root>/agents/svc.
  std::unique_ptr<InterlockdHarness> Harness(bool default_deny, const std::string& extra = "",
                                             std::vector<ResourceSpec> more = {}) {
    std::vector<ResourceSpec> resources = {{"echo", "127.0.0.42", echo_.port()}};
    for (ResourceSpec& r : more) resources.push_back(std::move(r));
    return std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = resources,
        .extra_yaml = absl::StrCat("enrollments:\n  - name: svc\n    cgroup_path: "
                                   "{cgroup_root}/agents/svc\n    default_deny: ",
                                   default_deny ? "true" : "false", "\n", extra)});
  }

  std::string SvcDir(const InterlockdHarness& h) const {
    return absl::StrCat(cgroup_mount_, "/", h.cgroup_root(), "/agents/svc");
  }

  // Runs argv as uid/gid nobody (no supplementary groups) inside cgroup `dir`: the shell
  // moves itself in while still root, then drops privileges and execs.
  CommandResult RunIn(const std::string& dir, std::vector<std::string> argv) {
    std::vector<std::string> cmd = {
        "/bin/sh", "-c",
        absl::StrCat("echo $$ > '", dir, "/cgroup.procs' && exec setpriv --reuid=65534 "
                     "--regid=65534 --clear-groups --inh-caps=-all -- \"$@\""),
        "agent"};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    return RunCommand(cmd);
  }

  std::string Probe() const { return BinaryPath("interlock-probe"); }
  std::string EchoPort() const { return absl::StrCat(echo_.port()); }

  tools::EchoServer echo_;
  std::string cgroup_mount_;
};

// connect(0.0.0.0) from a socket bound to the protected address reaches that address;
// connect(::) reaches ::1. Both must go through interlockd.
TEST_F(BypassTest, UnspecifiedDestinationIsRedirected) {
  tools::EchoServer echo6;
  ASSERT_TRUE(echo6.Start("::1", 0).ok());
  auto h = Harness(false, "", {{"echo6", "::1", echo6.port()}});
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();

  CommandResult r = RunIn(SvcDir(*h), {Probe(), "connect", "0.0.0.0", EchoPort(), "--bind",
                                       "127.0.0.42"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port()));
  EXPECT_EQ(ProbeField(r.out, "reply"), "ping\\n");

  CommandResult r6 = RunIn(SvcDir(*h), {Probe(), "connect", "::", absl::StrCat(echo6.port())});
  ASSERT_EQ(r6.exit_code, 0) << r6.out << r6.err << h->DaemonLog();
  EXPECT_EQ(ProbeField(r6.out, "peer"), absl::StrCat("[::1]:", echo6.port()));

  ASSERT_TRUE(WaitFor([&] { return OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 2; }));
  auto starts = OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START);
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0].resource(), "echo");
  EXPECT_EQ(starts[0].original_destination().address(), "127.0.0.42");
  EXPECT_EQ(starts[0].identity().workload(), "svc");
  EXPECT_EQ(starts[0].identity().uid(), 65534u);
  EXPECT_EQ(starts[1].resource(), "echo6");
  EXPECT_EQ(echo_.accepted(), 1u);
  EXPECT_EQ(echo6.accepted(), 1u);
}

// interlockd is killed and another process takes its port. The enrolled agent is
// refused (EPERM) and the squatter receives nothing; the refusal is audited when
// interlockd is back, and enforcement resumes.
TEST_F(BypassTest, SquatterOnTheEnginePortReceivesNothing) {
  auto h = Harness(false);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  h->Kill();

  CommandResult down = RunIn(SvcDir(*h), {Probe(), "connect", "127.0.0.42", EchoPort()});
  EXPECT_EQ(down.exit_code, 1) << down.out;
  EXPECT_EQ(ProbeField(down.out, "errno"), "1") << down.out;  // EPERM, nothing listens

  UniqueFd squatter(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(h->engine_port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  ::setsockopt(squatter.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(::bind(squatter.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(::listen(squatter.get(), 16), 0);
  CommandResult squatted = RunIn(SvcDir(*h), {Probe(), "connect", "127.0.0.42", EchoPort()});
  EXPECT_EQ(squatted.exit_code, 1) << squatted.out;
  EXPECT_EQ(ProbeField(squatted.out, "errno"), "1") << squatted.out;
  pollfd p{squatter.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 200), 0) << "the squatter received a connection";
  squatter.Reset();
  EXPECT_EQ(echo_.accepted(), 0u);

  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return !Denials(*h, "engine_unverified").empty(); }));
  EXPECT_EQ(Denials(*h, "engine_down").size(), 1u);
  auto unverified = Denials(*h, "engine_unverified");
  ASSERT_EQ(unverified.size(), 1u);
  EXPECT_EQ(unverified[0].identity().workload(), "svc");
  EXPECT_EQ(unverified[0].resource(), "echo");

  CommandResult back = RunIn(SvcDir(*h), {Probe(), "connect", "127.0.0.42", EchoPort()});
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err << h->DaemonLog();
  EXPECT_EQ(echo_.accepted(), 1u);
}

// An enrolled cgroup that is removed and created again while interlockd runs (a systemd
// unit restarting) is enforced from the first connect of the first process in it. A path
// missing at start is created by interlockd.
TEST_F(BypassTest, EnrolledCgroupRecreatedWhileRunningIsEnforced) {
  auto h = Harness(/*default_deny=*/true);
  const std::string dir = SvcDir(*h);
  struct stat st {};
  ASSERT_NE(::stat(dir.c_str(), &st), 0) << "the path exists before interlockd starts";
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  ASSERT_EQ(::stat(dir.c_str(), &st), 0) << "interlockd did not create the enrolled path";

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    // The last agent may take a moment to leave the cgroup after it was reaped.
    ASSERT_TRUE(WaitFor([&] { return ::rmdir(dir.c_str()) == 0; })) << strerror(errno);
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << strerror(errno);
    CommandResult r = RunIn(dir, {Probe(), "connect", "127.0.0.42", EchoPort()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
    EXPECT_EQ(ProbeField(r.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port()));
    // default_deny holds for the new cgroup too.
    CommandResult denied = RunIn(dir, {Probe(), "connect", "127.0.0.43", "9"});
    EXPECT_EQ(ProbeField(denied.out, "errno"), "1") << denied.out;
  }
  ASSERT_TRUE(WaitFor([&] { return OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 2; }));
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START)) {
    EXPECT_EQ(e.identity().workload(), "svc");
    EXPECT_EQ(e.identity().cgroup_path(), absl::StrCat("/", h->cgroup_root(), "/agents/svc"));
  }
  EXPECT_EQ(Denials(*h, "default_deny").size(), 2u);
  EXPECT_EQ(echo_.accepted(), 2u);
}

// Unconnected UDP (sendto with an address) from a default-deny workload: refused unless
// the destination is allowed (the DNS resolver here); UDP to a protected resource is
// refused for everyone.
TEST_F(BypassTest, UnconnectedUdpFollowsDefaultDeny) {
  auto h = Harness(/*default_deny=*/true,
                   "default_deny_allow:\n  - {address: 127.0.0.53, port: 53}\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult denied = RunIn(SvcDir(*h), {Probe(), "sendto", "127.0.0.60", "9999"});
  EXPECT_EQ(denied.exit_code, 1) << denied.out;
  EXPECT_EQ(ProbeField(denied.out, "errno"), "1") << denied.out;
  CommandResult mapped =
      RunIn(SvcDir(*h), {Probe(), "sendto", "127.0.0.60", "9999", "--v6socket"});
  EXPECT_EQ(ProbeField(mapped.out, "errno"), "1") << mapped.out;
  CommandResult resource = RunIn(SvcDir(*h), {Probe(), "sendto", "127.0.0.42", EchoPort()});
  EXPECT_EQ(ProbeField(resource.out, "errno"), "1") << resource.out;
  CommandResult dns = RunIn(SvcDir(*h), {Probe(), "sendto", "127.0.0.53", "53"});
  EXPECT_EQ(dns.exit_code, 0) << dns.out;

  ASSERT_TRUE(WaitFor([&] { return !Denials(*h, "not_stream").empty(); }));
  EXPECT_EQ(Denials(*h, "default_deny").size(), 2u);
  EXPECT_EQ(Denials(*h, "not_stream").size(), 1u);
}

// Routes that were already closed, kept closed: TCP Fast Open in both spellings, and a
// connect submitted through io_uring, go through the connect hook and so through
// interlockd.
TEST_F(BypassTest, TcpFastOpenAndIoUringConnectAreRedirected) {
  auto h = Harness(false);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  for (const char* flag : {"--fastopen", "--fastopen-connect", "--io-uring"}) {
    CommandResult r = RunIn(SvcDir(*h), {Probe(), "connect", "127.0.0.42", EchoPort(), flag});
    EXPECT_EQ(r.exit_code, 0) << flag << ": " << r.out << r.err << h->DaemonLog();
    EXPECT_EQ(ProbeField(r.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port())) << flag;
    EXPECT_EQ(ProbeField(r.out, "reply"), "ping\\n") << flag;
  }
  ASSERT_TRUE(WaitFor([&] { return OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 3; }));
  EXPECT_EQ(echo_.accepted(), 3u);
}

// A process outside every enrollment dials interlockd's port itself, hoping to be taken
// for some workload: there is no kernel record for its socket, so no session — the
// connection is closed before a byte reaches the resource, and audited.
TEST_F(BypassTest, DirectDialToTheEngineIsRejected) {
  auto h = Harness(false);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                Probe(), "connect", "127.0.0.1", absl::StrCat(h->engine_port())});
  EXPECT_EQ(ProbeField(r.out, "reply"), "") << r.out;
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_REJECTED).empty(); }))
      << r.out << r.err << h->DaemonLog() << ReadFile(h->state_dir() + "/audit/audit.jsonl").value_or("");
  auto rejected = OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_REJECTED);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].reason(), "no_identity");
  EXPECT_TRUE(OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START).empty());
  EXPECT_EQ(echo_.accepted(), 0u);
}

// An enrolled process in its own network namespace (a container's, or one it made):
// there is no interlockd listener there, so its connects to protected resources are
// refused (EPERM, engine_down) — never rewritten to a listener someone else put in that
// namespace (engine_unverified).
TEST_F(BypassTest, AnotherNetworkNamespaceFailsClosed) {
  auto h = Harness(false);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string port = absl::StrCat(h->engine_port());
  const std::string drop = "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --";
  // A new namespace with loopback up; `outside` runs there before the shell joins the
  // enrolled cgroup, the agent (as nobody) after.
  auto in_netns = [&](const std::string& outside, const std::string& agent) {
    return RunCommand({"/bin/sh", "-c",
                       absl::StrCat("exec unshare -n /bin/sh -c 'ip link set lo up && ", outside,
                                    " echo $$ > ", SvcDir(*h), "/cgroup.procs && ", drop, " ",
                                    agent, "'")});
  };
  const std::string agent = absl::StrCat(Probe(), " connect 127.0.0.42 ", EchoPort());
  CommandResult plain = in_netns("", agent);
  EXPECT_EQ(ProbeField(plain.out, "errno"), "1") << plain.out << plain.err;
  // A listener on the engine's address and port inside that namespace, by a process that
  // is not enrolled (root there): the agent's connect is refused, the listener gets nothing.
  CommandResult squatted = in_netns(
      absl::StrCat("/usr/bin/python3 -c \"import socket,time; s=socket.socket(); "
                   "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                   "s.bind((\\\"127.0.0.1\\\", ", port, ")); s.listen(); s.settimeout(3); "
                   "print(\\\"squatter got\\\", s.accept())\" & sleep 0.5;"),
      agent);
  EXPECT_EQ(ProbeField(squatted.out, "errno"), "1") << squatted.out << squatted.err;
  EXPECT_THAT(squatted.out, ::testing::Not(::testing::HasSubstr("squatter got")));
  ASSERT_TRUE(WaitFor([&] { return !Denials(*h, "engine_unverified").empty(); }))
      << squatted.out << squatted.err << h->DaemonLog();
  EXPECT_EQ(Denials(*h, "engine_down").size(), 1u);
  EXPECT_EQ(echo_.accepted(), 0u);
}

// Children and threads inherit the cgroup: a forked child's connect is redirected like
// its parent's. An unprivileged agent cannot move itself (or a child) out of its cgroup,
// nor open raw or packet sockets to hand-craft a connection the hooks never see.
TEST_F(BypassTest, ForkedChildrenStayEnrolledAndTheAgentCannotLeaveOrGoRaw) {
  auto h = Harness(false);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string dir = SvcDir(*h);

  CommandResult forked = RunIn(
      dir, {"/bin/sh", "-c", absl::StrCat("(", Probe(), " connect 127.0.0.42 ", EchoPort(), ") & wait $!")});
  EXPECT_EQ(forked.exit_code, 0) << forked.out << forked.err;
  EXPECT_EQ(ProbeField(forked.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port()));

  for (const std::string& target :
       {absl::StrCat(cgroup_mount_, "/cgroup.procs"),
        absl::StrCat(cgroup_mount_, "/", h->cgroup_root(), "/cgroup.procs"),
        absl::StrCat(cgroup_mount_, "/", h->cgroup_root(), "/daemon/cgroup.procs")}) {
    CommandResult leave = RunIn(dir, {"/bin/sh", "-c", absl::StrCat("echo $$ > ", target)});
    EXPECT_NE(leave.exit_code, 0) << "the agent moved itself to " << target;
  }
  // The agent also cannot detach or unpin the programs: bpf(2) needs capabilities.
  CommandResult unpin = RunIn(dir, {"/bin/rm", "-rf", h->pin_path()});
  EXPECT_NE(unpin.exit_code, 0);

  const char* raw_py =
      "import socket, sys\n"
      "for fam, typ, proto in [(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),\n"
      "                        (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP),\n"
      "                        (socket.AF_PACKET, socket.SOCK_RAW, 0)]:\n"
      "    try:\n"
      "        socket.socket(fam, typ, proto)\n"
      "        print('opened', fam); sys.exit(1)\n"
      "    except PermissionError:\n"
      "        pass\n"
      "print('refused')\n";
  CommandResult raw = RunIn(dir, {"/usr/bin/python3", "-c", raw_py});
  EXPECT_EQ(raw.exit_code, 0) << raw.out << raw.err;
  EXPECT_EQ(raw.out, "refused\n");

  // Still enforced after all that.
  CommandResult after = RunIn(dir, {Probe(), "connect", "127.0.0.42", EchoPort()});
  EXPECT_EQ(after.exit_code, 0) << after.out;
  ASSERT_TRUE(WaitFor([&] { return OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 2; }));
  EXPECT_EQ(echo_.accepted(), 2u);
}

}  // namespace
}  // namespace interlock::testing
