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

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/file_util.h"
#include "userspace/common/unique_fd.h"

namespace interlock::testing {
namespace {


// Refused IP connects and datagrams with `reason`. (A default-deny agent is refused unix
// sockets too — glibc's NSS tries nscd's and systemd-userdb's — which these tests leave
// aside.)
std::vector<v1::AuditEvent> Denials(const InterlockdHarness& h, const std::string& reason) {
  std::vector<v1::AuditEvent> out;
  for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_CONNECT_DENIED)) {
    if (e.reason() == reason && e.protocol() != "unix") out.push_back(e);
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

  // Runs argv as nobody inside cgroup `dir`.
  CommandResult RunIn(const std::string& dir, std::vector<std::string> argv) {
    return RunInCgroup(dir, kAgentUid, argv);
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

// A network namespace made for one test (`ip netns add`, loopback up), deleted at the
// end whatever happened. interlockd may keep it alive a little longer (its listener
// there holds it) until it notices the name is gone.
class TestNetns {
 public:
  TestNetns() : name_(absl::StrCat("il-", UniqueSuffix())) {
    ok_ = RunCommand({"/usr/sbin/ip", "netns", "add", name_}).exit_code == 0 &&
          RunCommand({"/usr/sbin/ip", "-n", name_, "link", "set", "lo", "up"}).exit_code == 0;
  }
  ~TestNetns() { RunCommand({"/usr/sbin/ip", "netns", "delete", name_}); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  std::string path() const { return absl::StrCat("/run/netns/", name_); }

 private:
  std::string name_;
  bool ok_ = false;
};

// Containers and other network namespaces: a PostgreSQL server on the host's loopback,
// enrolled agents (uid nobody, in the test's enrolled cgroup) in namespaces of their own.
class NetnsTest : public BypassTest {
 protected:
  static constexpr char kPassword[] = "netns-secret-only-interlockd-knows";

  void SetUp() override {
    BypassTest::SetUp();
    if (HasFatalFailure()) return;
    dir_ = MakeTempDir("interlock-netns-");
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.44"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kPassword, "'")).ok());
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, kPassword, 0600).ok());
  }
  void TearDown() override {
    pg_.reset();
    if (!dir_.empty()) RemoveTree(dir_);
  }

  std::unique_ptr<InterlockdHarness> PgHarness(const std::string& listener_yaml,
                                               bool sockmap = false) {
    ResourceSpec pg{"appdb", pg_->address(), pg_->port(),
                    absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n"
                                 "      login: {user: app, database: postgres, "
                                 "password_ref: \"file:",
                                 password_file_, "\"}\n      sslmode: disable\n"
                                 "      allow_unverified_upstream: true\n")};
    return std::make_unique<InterlockdHarness>(HarnessOptions{
        .sockmap = sockmap,
        .resources = {pg, {"echo", "127.0.0.42", echo_.port()}},
        .extra_yaml = "enrollments:\n  - name: svc\n    cgroup_path: {cgroup_root}/agents/svc\n",
        .listener_yaml = listener_yaml});
  }

  // The shell line that puts itself in cgroup `dir` (as root), enters namespace `netns`
  // and runs the rest as nobody, no capabilities.
  static std::string EnterAs(const std::string& dir, const std::string& netns) {
    return absl::StrCat("echo $$ > '", dir, "/cgroup.procs' && exec /usr/sbin/ip netns exec ",
                        netns,
                        " setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- ");
  }
  CommandResult RunInNetns(const std::string& dir, const std::string& netns,
                           std::vector<std::string> argv) {
    std::vector<std::string> cmd = {"/bin/sh", "-c", absl::StrCat(EnterAs(dir, netns), "\"$@\""),
                                    "agent"};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    return RunCommand(cmd, 60);
  }
  // psql as an unmodified agent runs it: the protected address, no password.
  std::vector<std::string> Psql(const std::string& sql) const {
    return {"/usr/bin/env", "-u", "PGPASSWORD", "PGCONNECT_TIMEOUT=10", "/usr/bin/psql", "-X",
            "-h", pg_->address(), "-p", absl::StrCat(pg_->port()), "-U", "agent", "-d",
            "whatever", "-Atc", sql};
  }
  // A root (not enrolled) process in `netns` that tries to take the engine's port on
  // `ip`, every way it can, and reports whether anything ever connected to it.
  std::vector<std::string> Squatter(const std::string& netns, const std::string& ip,
                                    uint16_t port, int seconds) const {
    return {"/usr/sbin/ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
            absl::StrCat("import socket, sys\n"
                         "s = socket.socket()\n"
                         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
                         "try:\n"
                         "    s.bind(('", ip, "', ", port, ")); s.listen()\n"
                         "except OSError as e:\n"
                         "    print('squatter bind failed', e.errno, flush=True); sys.exit(0)\n"
                         "print('squatter listening', flush=True)\n"
                         "s.settimeout(", seconds, ")\n"
                         "try:\n"
                         "    print('squatter got', s.accept(), flush=True)\n"
                         "except socket.timeout:\n"
                         "    print('squatter got nothing', flush=True)\n")};
  }

  std::vector<v1::AuditEvent> Daemon(const InterlockdHarness& h, const std::string& outcome) {
    std::vector<v1::AuditEvent> out;
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
      if (e.outcome() == outcome) out.push_back(e);
    }
    return out;
  }

  std::string dir_;
  std::string password_file_;
  std::unique_ptr<PostgresServer> pg_;
};

// A configured namespace (listener.network_namespaces): interlockd listens there from
// the start, and an enrolled psql in it reaches the protected PostgreSQL through
// interlockd with the injected credential and its own identity (cgroup, uid, pid).
// Nobody else can take the engine's port there. A namespace interlockd does not serve
// (discovery off) fails closed: refused, and a listener someone else put on the engine
// port there gets nothing.
TEST_F(NetnsTest, ConfiguredNamespaceIsServedAndOthersFailClosed) {
  TestNetns served, other;
  ASSERT_TRUE(served.ok() && other.ok());
  auto h = PgHarness(absl::StrCat("  network_namespaces: [", served.path(),
                                  "]\n  netns_discovery: NETNS_DISCOVERY_OFF\n"));
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  ASSERT_EQ(Daemon(*h, "netns_listening").size(), 1u) << h->DaemonLog();
  EXPECT_THAT(Daemon(*h, "netns_listening")[0].detail(), ::testing::HasSubstr(served.path()));
  const std::string dir = SvcDir(*h);

  // The shell prints its pid, then becomes psql: the pid the audit event must carry.
  std::vector<std::string> client = {"/bin/sh", "-c", "echo $$ >&2; exec \"$@\"", "agent"};
  for (const std::string& a : Psql("SELECT current_user, inet_client_addr() IS NOT NULL")) {
    client.push_back(a);
  }
  CommandResult ok = RunInNetns(dir, served.name(), client);
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err << h->DaemonLog();
  EXPECT_EQ(ok.out, "app|t\n");
  const uint32_t agent_pid = static_cast<uint32_t>(std::stoul(ok.err));

  ASSERT_TRUE(WaitFor(
      [&] { return !OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto starts = OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START);
  ASSERT_FALSE(starts.empty());
  const v1::AuditEvent& s = starts.back();
  EXPECT_EQ(s.resource(), "appdb");
  EXPECT_EQ(s.protocol(), "postgres");
  EXPECT_EQ(s.original_destination().address(), "127.0.0.44");
  EXPECT_EQ(s.identity().workload(), "svc");
  EXPECT_EQ(s.identity().uid(), 65534u);
  EXPECT_EQ(s.identity().pid(), agent_pid);
  EXPECT_EQ(s.identity().comm(), "psql");
  EXPECT_EQ(s.identity().cgroup_path(), absl::StrCat("/", h->cgroup_root(), "/agents/svc"));
  EXPECT_EQ(s.identity().cgroup_id(), *CgroupIdOfDir(dir));

  // Someone else (root in that namespace, not enrolled) cannot take the engine's port
  // there while interlockd holds it; the agent keeps going through interlockd.
  for (const char* ip : {"127.0.0.1", "0.0.0.0"}) {
    CommandResult squat = RunCommand(Squatter(served.name(), ip, h->engine_port(), 1));
    EXPECT_THAT(squat.out, ::testing::HasSubstr("squatter bind failed"))
        << ip << squat.out << squat.err;
  }

  // A namespace interlockd does not serve: refused (nothing of interlockd's listens
  // there), also with a squatter on the engine port, which gets nothing.
  CommandResult refused =
      RunInNetns(dir, other.name(), {Probe(), "connect", "127.0.0.42", EchoPort()});
  EXPECT_EQ(ProbeField(refused.out, "errno"), "1") << refused.out << refused.err;
  ASSERT_TRUE(WaitFor([&] { return Denials(*h, "engine_down").size() == 1; })) << h->DaemonLog();
  {
    const std::string log = absl::StrCat(dir_, "/squatter.log");
    pid_t squatter = Spawn(Squatter(other.name(), "127.0.0.1", h->engine_port(), 3), log);
    ASSERT_TRUE(WaitFor([&] {
      return absl::StrContains(ReadFile(log).value_or(""), "squatter listening");
    })) << ReadFile(log).value_or("");
    CommandResult squatted =
        RunInNetns(dir, other.name(), {Probe(), "connect", "127.0.0.42", EchoPort()});
    EXPECT_EQ(ProbeField(squatted.out, "errno"), "1") << squatted.out << squatted.err;
    EXPECT_EQ(WaitProcess(squatter, 10), 0);
    EXPECT_THAT(ReadFile(log).value_or(""), ::testing::HasSubstr("squatter got nothing"));
  }
  ASSERT_TRUE(WaitFor([&] { return !Denials(*h, "engine_unverified").empty(); })) << h->DaemonLog();
  EXPECT_EQ(echo_.accepted(), 0u);
  // Still one served namespace: the unserved one was never opened.
  EXPECT_EQ(Daemon(*h, "netns_listening").size(), 1u);
}

// The sockmap relay in a served namespace: the agent and engine sockets are paired and
// spliced by 4-tuple *and* namespace, so the namespace's loopback tuples never meet the
// host's. Two agents, one in the namespace and one on the host, at once.
TEST_F(NetnsTest, SockmapRelayPairsWithinTheNamespace) {
  TestNetns served;
  ASSERT_TRUE(served.ok());
  auto h = PgHarness(absl::StrCat("  network_namespaces: [", served.path(), "]\n"),
                     /*sockmap=*/true);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string dir = SvcDir(*h);
  const std::string sql = "SELECT current_user, count(*) FROM generate_series(1, 20000)";
  // Alone first: the namespace's pair is spliced through sk_msg.
  CommandResult first = RunInNetns(dir, served.name(), Psql(sql));
  EXPECT_EQ(first.out, "app|20000\n") << first.err << h->DaemonLog();
  CommandResult st = h->Cli({"status", "--json"});
  uint64_t spliced = 0;
  (void)absl::SimpleAtoi(ProbeField(st.out, "spliced_messages"), &spliced);
  EXPECT_GT(spliced, 0u) << "the namespace's connection was not spliced\n" << st.out;

  CommandResult in_ns, on_host;
  {
    JoinedThread host([&] { on_host = RunIn(dir, Psql(sql)); });
    in_ns = RunInNetns(dir, served.name(), Psql(sql));
  }
  EXPECT_EQ(in_ns.exit_code, 0) << in_ns.out << in_ns.err << h->DaemonLog();
  EXPECT_EQ(in_ns.out, "app|20000\n");
  EXPECT_EQ(on_host.exit_code, 0) << on_host.out << on_host.err;
  EXPECT_EQ(on_host.out, "app|20000\n");
  ASSERT_TRUE(WaitFor(
      [&] { return OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 3; }));
}

// Discovery (the default): a namespace nobody configured, where an enrolled process
// lives (a container), gets interlockd's listener without being named; an enrolled psql
// there goes through interlockd with its identity. When no enrolled process is left in
// it, the listener closes. A namespace where someone else took the engine's port first
// is not served: interlockd says so, enrolled connects there are refused, and that
// listener gets nothing.
TEST_F(NetnsTest, NamespacesOfEnrolledProcessesAreFoundAndSquattedOnesFailClosed) {
  TestNetns container, squatted;
  ASSERT_TRUE(container.ok() && squatted.ok());
  auto h = PgHarness("");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string dir = SvcDir(*h);
  EXPECT_TRUE(Daemon(*h, "netns_listening").empty());

  // The container's long-lived process, enrolled.
  const std::string sleeper_log = absl::StrCat(dir_, "/sleeper.log");
  pid_t sleeper = Spawn({"/bin/sh", "-c", absl::StrCat(EnterAs(dir, container.name()), "sleep 60")},
                        sleeper_log);
  ASSERT_TRUE(WaitFor([&] { return Daemon(*h, "netns_listening").size() == 1; }))
      << ReadFile(sleeper_log).value_or("") << h->DaemonLog();
  EXPECT_THAT(Daemon(*h, "netns_listening")[0].detail(), ::testing::HasSubstr("pid "));

  std::vector<std::string> client = {"/bin/sh", "-c", "echo $$ >&2; exec \"$@\"", "agent"};
  for (const std::string& a : Psql("SELECT current_user")) client.push_back(a);
  CommandResult ok = RunInNetns(dir, container.name(), client);
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err << h->DaemonLog();
  EXPECT_EQ(ok.out, "app\n");
  ASSERT_TRUE(WaitFor(
      [&] { return !OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto starts = OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].identity().workload(), "svc");
  EXPECT_EQ(starts[0].identity().uid(), 65534u);
  EXPECT_EQ(starts[0].identity().pid(), static_cast<uint32_t>(std::stoul(ok.err)));
  EXPECT_EQ(starts[0].identity().comm(), "psql");

  KillProcess(sleeper);
  ASSERT_TRUE(WaitFor([&] { return Daemon(*h, "netns_closed").size() == 1; })) << h->DaemonLog();

  // Someone else listens on the engine's port in a namespace first; then an enrolled
  // process appears there.
  const std::string squat_log = absl::StrCat(dir_, "/squatter.log");
  pid_t squatter = Spawn(Squatter(squatted.name(), "127.0.0.1", h->engine_port(), 8), squat_log);
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadFile(squat_log).value_or(""), "squatter listening");
  })) << ReadFile(squat_log).value_or("");
  pid_t sleeper2 = Spawn({"/bin/sh", "-c", absl::StrCat(EnterAs(dir, squatted.name()), "sleep 60")},
                         sleeper_log);
  ASSERT_TRUE(WaitFor([&] { return !Daemon(*h, "netns_listen_failed").empty(); }))
      << h->DaemonLog();
  CommandResult refused = RunInNetns(dir, squatted.name(), Psql("SELECT 1"));
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_THAT(refused.err, ::testing::HasSubstr("Operation not permitted")) << refused.err;
  KillProcess(sleeper2);
  EXPECT_EQ(WaitProcess(squatter, 15), 0);
  EXPECT_THAT(ReadFile(squat_log).value_or(""), ::testing::HasSubstr("squatter got nothing"));
  ASSERT_TRUE(WaitFor([&] { return !Denials(*h, "engine_unverified").empty(); })) << h->DaemonLog();
  EXPECT_EQ(OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START).size(), 1u);
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
