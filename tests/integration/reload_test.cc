// `interlock reload` under live sessions: two real PostgreSQL servers, a real interlockd,
// the real redirect and an unprivileged psycopg2 agent holding a session open across the
// reload. A changed resource (its upstream) applies to new sessions while the live one
// carries on where it was; a changed mask profile applies at once; a configuration whose
// resources cannot be put in force changes nothing.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAppPassword[] = "reload-test-secret";
constexpr char kSsn[] = "078-05-1120";

constexpr char kPolicyBefore[] = R"YAML(
mask_profiles:
  - name: pii
    columns:
      - {column: public.customers.ssn, mask: {style: MASK_STYLE_REDACT}}
rules:
  - id: mask-reads
    match: {kinds: [STATEMENT_KIND_SELECT]}
    action: ACTION_MASK
    mask_profile: pii
  - id: housekeeping
    match: {kinds: [STATEMENT_KIND_TRANSACTION, STATEMENT_KIND_SET, STATEMENT_KIND_SHOW]}
    action: ACTION_ALLOW
)YAML";

// The same profile, now also masking the name.
std::string PolicyAfter() {
  return absl::StrReplaceAll(
      kPolicyBefore, {{"      - {column: public.customers.ssn, mask: {style: MASK_STYLE_REDACT}}\n",
                       "      - {column: public.customers.ssn, mask: {style: MASK_STYLE_REDACT}}\n"
                       "      - {column: public.customers.name, mask: {style: MASK_STYLE_REDACT}}\n"}});
}

// The agent: one session before the reload, kept open; after the test says the reload is
// done (the flag file), the same session again and then a new one. Each query line is
// "TAG SERVER SSN NAME".
constexpr char kAgent[] = R"PY(
import os, sys, time
import psycopg2
host, port, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def query(conn, tag):
    cur = conn.cursor()
    cur.execute("SELECT who FROM whoami")
    who = cur.fetchone()[0]
    cur.execute("SELECT ssn, name FROM customers ORDER BY id")
    ssn, name = cur.fetchone()
    print(tag, who, ssn, name, flush=True)
def connect():
    c = psycopg2.connect(host=host, port=port, user="agent", dbname="x", sslmode="disable", connect_timeout=10)
    c.autocommit = True
    return c
live = connect()
query(live, "live-before")
print("waiting", flush=True)
deadline = time.time() + 60
while not os.path.exists(flag):
    if time.time() > deadline:
        sys.exit(3)
    time.sleep(0.05)
query(live, "live-after")
fresh = connect()
query(fresh, "new-after")
live.close()
fresh.close()
)PY";

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-reloadtest-");
    ::chmod(dir_.c_str(), 0755);
    agent_dir_ = MakeAgentDir("interlock-reloadtest-agent-");
    for (auto [server, address, who] : {std::tuple{&a_, "127.0.0.71", "server-a"}, {&b_, "127.0.0.72", "server-b"}}) {
      *server = std::make_unique<PostgresServer>(PostgresOptions{.address = address});
      ASSERT_TRUE((*server)->Start().ok()) << (*server)->Log();
      ASSERT_TRUE((*server)->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
      ASSERT_TRUE((*server)->Psql("CREATE DATABASE appdb OWNER app").ok());
      ASSERT_TRUE((*server)
                      ->Psql(absl::StrCat("CREATE TABLE whoami(who text); INSERT INTO whoami VALUES ('", who,
                                          "'); CREATE TABLE customers(id int primary key, name text, ssn text);"
                                          "INSERT INTO customers VALUES (1, 'Ada', '",
                                          kSsn,
                                          "');"
                                          "ALTER TABLE whoami OWNER TO app; ALTER TABLE customers OWNER TO app;"),
                             "appdb")
                      .ok());
    }
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, kAppPassword, 0600).ok());
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, kPolicyBefore, 0644).ok());
    script_ = absl::StrCat(agent_dir_, "/agent.py");
    ASSERT_TRUE(WriteFileAtomic(script_, kAgent, 0644).ok());
    MakeReadableByAgent(script_);
    flag_ = absl::StrCat(agent_dir_, "/reloaded");
    h_ = std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {{"appdb", a_->address(), a_->port(),
                       absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    # upstream\n    postgres:\n"
                                    "      login: {user: app, database: appdb, password_ref: \"file:",
                                    password_file_, "\"}\n      sslmode: disable\n      allow_unverified_upstream: true\n")}},
        .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\n")});
    ASSERT_TRUE(h_->Start().ok()) << h_->DaemonLog();
    auto text = ReadFile(h_->config_path());
    ASSERT_TRUE(text.ok());
    config_ = *text;
    ASSERT_THAT(config_, HasSubstr("    # upstream\n"));
  }
  void TearDown() override {
    if (agent_ > 0) KillProcess(agent_);
    h_.reset();
    a_.reset();
    b_.reset();
    RemoveTree(dir_);
    RemoveTree(agent_dir_);
  }

  // Rewrites the configuration with the resource's upstream moved to server B.
  void PointAtServerB() {
    const std::string text =
        absl::StrReplaceAll(config_, {{"    # upstream\n", absl::StrCat("    upstream_address: ", b_->address(),
                                                                         "\n    upstream_port: ", b_->port(), "\n")}});
    ASSERT_TRUE(WriteFileAtomic(h_->config_path(), text, 0644).ok());
  }

  std::string dir_, agent_dir_, password_file_, policy_file_, script_, flag_, config_;
  std::unique_ptr<PostgresServer> a_, b_;
  std::unique_ptr<InterlockdHarness> h_;
  pid_t agent_ = -1;
};

// The lines of `log` starting with `tag`, split: {tag, server, ssn, name}.
std::vector<std::string> Line(const std::string& log, const std::string& tag) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StartsWith(line, absl::StrCat(tag, " "))) return absl::StrSplit(line, ' ');
  }
  return {};
}

TEST_F(ReloadTest, ChangedUpstreamAndMaskProfileApplyWithoutDroppingTheLiveSession) {
  const std::string log = absl::StrCat(dir_, "/agent.log");
  std::vector<std::string> argv = h_->RunArgv("analyst");
  for (const std::string& a : {std::string("/usr/bin/python3"), script_, a_->address(), absl::StrCat(a_->port()), flag_}) {
    argv.push_back(a);
  }
  agent_ = Spawn(argv, log);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(log).value_or(""), "waiting"); }, 30))
      << ReadFile(log).value_or("") << h_->DaemonLog();

  PointAtServerB();
  ASSERT_TRUE(WriteFileAtomic(policy_file_, PolicyAfter(), 0644).ok());
  CommandResult reload = h_->Cli({"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload.out << reload.err << h_->DaemonLog();
  EXPECT_THAT(reload.out, HasSubstr("1 resources"));
  EXPECT_THAT(reload.out, HasSubstr("applied now"));
  EXPECT_THAT(reload.out, HasSubstr("resources"));
  EXPECT_THAT(reload.out, Not(HasSubstr("next start"))) << "a resource change must not wait for a restart";

  ASSERT_TRUE(WriteFileAtomic(flag_, "", 0644).ok());
  const int rc = WaitProcess(agent_, 60);
  agent_ = -1;
  const std::string out = ReadFile(log).value_or("");
  ASSERT_EQ(rc, 0) << out << h_->DaemonLog();

  // Before: server A, the ssn masked, the name not.
  std::vector<std::string> before = Line(out, "live-before");
  ASSERT_EQ(before.size(), 4u) << out;
  EXPECT_EQ(before[1], "server-a");
  EXPECT_NE(before[2], kSsn);
  EXPECT_EQ(before[3], "Ada");
  // The live session carried on, still to server A; the new mask profile applies to its
  // next statement at once (masking is never loosened or tightened only for new sessions).
  std::vector<std::string> live = Line(out, "live-after");
  ASSERT_EQ(live.size(), 4u) << out;
  EXPECT_EQ(live[1], "server-a") << "the live session must keep the upstream it started with";
  EXPECT_NE(live[2], kSsn);
  EXPECT_NE(live[3], "Ada") << "the reloaded mask profile applies to the live session's next statement";
  // A new session: server B and the new profile.
  std::vector<std::string> fresh = Line(out, "new-after");
  ASSERT_EQ(fresh.size(), 4u) << out;
  EXPECT_EQ(fresh[1], "server-b") << "a new session must use the reloaded upstream";
  EXPECT_NE(fresh[2], kSsn);
  EXPECT_NE(fresh[3], "Ada");

  // The audit trail: the reload says what it applied; two sessions, one to each server;
  // none ended before the agent closed it.
  int reloaded = 0;
  std::vector<std::string> upstreams;
  for (const v1::AuditEvent& ev : h_->AuditEvents()) {
    if (ev.outcome() == "config_reloaded") {
      ++reloaded;
      EXPECT_THAT(ev.detail(), HasSubstr("applied: resources")) << ev.DebugString();
    }
    if (ev.kind() == v1::AUDIT_KIND_SESSION_START) upstreams.push_back(ev.upstream().address());
    if (ev.kind() == v1::AUDIT_KIND_SESSION_END) {
      EXPECT_EQ(ev.outcome(), "closed") << ev.DebugString();
    }
  }
  EXPECT_EQ(reloaded, 1);
  EXPECT_THAT(upstreams, ::testing::ElementsAre(a_->address(), b_->address()));
}

TEST_F(ReloadTest, AResourceThatCannotBePutInForceChangesNothing) {
  // Server B, but with an agent-side TLS certificate that does not exist: the whole file
  // is refused, also its (valid) upstream change.
  PointAtServerB();
  std::string text = ReadFile(h_->config_path()).value_or("");
  text = absl::StrReplaceAll(text, {{"      sslmode: disable\n", absl::StrCat("      sslmode: disable\n      agent_tls_cert_file: ", dir_,
                                                                           "/missing.crt\n      agent_tls_key_file: ", dir_,
                                                                           "/missing.key\n")}});
  ASSERT_TRUE(WriteFileAtomic(h_->config_path(), text, 0644).ok());
  CommandResult reload = h_->Cli({"reload"});
  EXPECT_NE(reload.exit_code, 0) << reload.out;
  EXPECT_THAT(reload.err, HasSubstr("missing.crt")) << reload.out << reload.err;

  const std::string log = absl::StrCat(dir_, "/agent.log");
  ASSERT_TRUE(WriteFileAtomic(flag_, "", 0644).ok());
  std::vector<std::string> argv = h_->RunArgv("analyst");
  for (const std::string& a : {std::string("/usr/bin/python3"), script_, a_->address(), absl::StrCat(a_->port()), flag_}) {
    argv.push_back(a);
  }
  CommandResult agent = RunCommand(argv, 60);
  ASSERT_EQ(agent.exit_code, 0) << agent.out << agent.err << h_->DaemonLog();
  EXPECT_EQ(Line(agent.out, "new-after").at(1), "server-a") << "a refused reload must leave the upstream as it was";

  int rejected = 0;
  for (const v1::AuditEvent& ev : h_->AuditEvents()) rejected += ev.outcome() == "config_reload_rejected";
  EXPECT_EQ(rejected, 1);
}

// The agent for the race: waits for the flag, connects, sends a line and prints what came
// back ("echo: ...") or "closed".
constexpr char kRaceAgent[] = R"PY(
import os, socket, sys, time
host, port, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print("waiting", flush=True)
while not os.path.exists(flag):
    time.sleep(0.02)
s = socket.create_connection((host, port), timeout=20)
print("connected", flush=True)
s.sendall(b"hello\n")
try:
    data = s.recv(100)
except OSError as e:
    data = b""
print("echo: " + data.decode().strip() if data else "closed", flush=True)
)PY";

// A connect the kernel redirected (and stamped with its resource) while a reload that
// removes that resource was already waiting: interlockd handles the reload first, then
// accepts. Resource ids are positional in the file; were they reused, the removed
// resource's id would now name the other one and the agent would be served as it (its
// upstream, its credential, its policy). It must be refused instead.
TEST(ReloadRaceTest, AConnectRedirectedBeforeAReloadIsNeverServedAsAnotherResource) {
  INTERLOCK_REQUIRE_ROOT();
  tools::EchoServer a, b;
  ASSERT_TRUE(a.Start("127.0.0.73", 0).ok());
  ASSERT_TRUE(b.Start("127.0.0.74", 0).ok());
  const std::string dir = MakeAgentDir("interlock-reloadrace-");
  const std::string script = absl::StrCat(dir, "/agent.py"), flag = absl::StrCat(dir, "/go"),
                    log = absl::StrCat(dir, "/agent.log");
  ASSERT_TRUE(WriteFileAtomic(script, kRaceAgent, 0644).ok());
  MakeReadableByAgent(script);
  auto h = std::make_unique<InterlockdHarness>(
      HarnessOptions{.resources = {{"first", "127.0.0.73", a.port()}, {"second", "127.0.0.74", b.port()}}});
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  std::vector<std::string> argv = h->RunArgv("racer");
  for (const std::string& x : {std::string("/usr/bin/python3"), script, std::string("127.0.0.73"),
                               absl::StrCat(a.port()), flag}) {
    argv.push_back(x);
  }
  pid_t agent = Spawn(argv, log);
  // Also when an assertion fails half-way: interlockd running again, the agent gone.
  absl::Cleanup cleanup = [&] {
    ::kill(h->pid(), SIGCONT);
    if (agent > 0) KillProcess(agent);
    h.reset();
    RemoveTree(dir);
  };
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(log).value_or(""), "waiting"); }, 30))
      << ReadFile(log).value_or("");

  // The file without "first": "second" comes first now.
  std::string text = ReadFile(h->config_path()).value_or("");
  const size_t at = text.find("  - name: first\n");
  const size_t next = text.find("  - name: second\n");
  ASSERT_TRUE(at != std::string::npos && next != std::string::npos && at < next) << text;
  text.erase(at, next - at);
  ASSERT_TRUE(WriteFileAtomic(h->config_path(), text, 0644).ok());

  // interlockd stopped; the reload signal queued first, the connect second (the kernel
  // completes the handshake into the listener's backlog); then it runs again and sees them
  // in that order.
  ASSERT_EQ(::kill(h->pid(), SIGSTOP), 0);
  ASSERT_EQ(::kill(h->pid(), SIGHUP), 0);
  ASSERT_TRUE(WriteFileAtomic(flag, "", 0644).ok());
  const bool connected = WaitFor([&] { return absl::StrContains(ReadFile(log).value_or(""), "connected"); }, 10);
  ::kill(h->pid(), SIGCONT);
  ASSERT_TRUE(connected) << ReadFile(log).value_or("");
  if (WaitProcess(agent, 30) >= 0) agent = -1;
  const std::string out = ReadFile(log).value_or("");
  EXPECT_THAT(out, HasSubstr("closed")) << out;
  EXPECT_THAT(out, Not(HasSubstr("echo: hello"))) << "the connect was served after its resource was removed";
  EXPECT_EQ(b.accepted(), 0u) << "the connect to the removed resource reached the other resource's upstream";
  EXPECT_EQ(a.accepted(), 0u);

  bool refused = false, reloaded = false;
  for (const v1::AuditEvent& ev : h->AuditEvents()) {
    reloaded |= ev.outcome() == "config_reloaded";
    if (ev.reason() == "unknown_resource") {
      refused = true;
      EXPECT_THAT(ev.detail(), HasSubstr("the configuration changed after the connect")) << ev.DebugString();
    }
  }
  EXPECT_TRUE(reloaded) << h->DaemonLog();
  EXPECT_TRUE(refused) << h->DaemonLog();
}

}  // namespace
}  // namespace interlock::testing
