// End-to-end tests of guardrails: a real PostgreSQL 15, a real interlockd with a policy
// file, the real eBPF redirect, unmodified clients (psql, pgbench) started as an enrolled,
// unprivileged workload, and approvers using the `interlock` CLI from outside it. A local
// HTTP receiver started by the test plays the approvers' webhook.
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "interlock/v1/approval.pb.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kAppPassword[] = "guard-test-secret";
constexpr uint32_t kNobody = 65534;

// A one-thread HTTP/1.1 receiver on 127.0.0.1: answers every POST 200 and keeps bodies.
class WebhookReceiver {
 public:
  WebhookReceiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~WebhookReceiver() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/hooks/interlock"); }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_;
  }
  // Request line and headers of each POST, in the order of bodies().
  std::vector<std::string> heads() {
    std::lock_guard<std::mutex> l(mu_);
    return heads_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      size_t need = std::string::npos;
      while (true) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, n);
        size_t hdr = req.find("\r\n\r\n");
        if (hdr != std::string::npos && need == std::string::npos) {
          size_t cl = req.find("Content-Length: ");
          size_t len = 0;
          if (cl != std::string::npos) {
            (void)absl::SimpleAtoi(req.substr(cl + 16, req.find("\r\n", cl) - cl - 16), &len);
          }
          need = hdr + 4 + len;
        }
        if (need != std::string::npos && req.size() >= need) break;
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        size_t hdr = req.find("\r\n\r\n");
        if (hdr != std::string::npos) {
          heads_.push_back(req.substr(0, hdr + 2));
          bodies_.push_back(req.substr(hdr + 4));
        }
      }
      const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(c, kOk, sizeof kOk - 1);
      ::close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> heads_;
};

constexpr char kWebhookKey[] = "guard-test-webhook-signing-key";

// HMAC-SHA256(kWebhookKey, timestamp "." body) as the receiver would check it, computed
// here with OpenSSL directly (not with interlockd's helper).
std::string ExpectedSignature(absl::string_view timestamp, absl::string_view body) {
  std::string msg = absl::StrCat(timestamp, ".", body);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kWebhookKey, sizeof kWebhookKey - 1, reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  return absl::StrCat("v1=", HexEncode(absl::string_view(reinterpret_cast<const char*>(md), len)));
}

// Standard Webhooks v1: "v1," + base64 HMAC-SHA256(key, id "." timestamp "." body), also
// computed here independently.
std::string ExpectedStandardSignature(absl::string_view id, absl::string_view timestamp, absl::string_view body) {
  std::string msg = absl::StrCat(id, ".", timestamp, ".", body);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kWebhookKey, sizeof kWebhookKey - 1, reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  return absl::StrCat("v1,", absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(md), len)));
}

std::string HeaderValue(absl::string_view head, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, absl::StrCat(name, ":"))) {
      return std::string(absl::StripAsciiWhitespace(line.substr(name.size() + 1)));
    }
  }
  return "";
}

std::string PolicyYaml(uint32_t review_timeout_s, bool require_grant = false) {
  return absl::StrCat(R"YAML(resources:
  - resource: appdb
    default_action: ACTION_REVIEW
)YAML",
                      require_grant ? "    require_grant: true\n" : "", R"YAML(rules:
  - id: allow-reads
    match: {kinds: [STATEMENT_KIND_SELECT, STATEMENT_KIND_SHOW, STATEMENT_KIND_SET, STATEMENT_KIND_TRANSACTION]}
    action: ACTION_ALLOW
  - id: allow-row-writes
    match: {kinds: [STATEMENT_KIND_UPDATE, STATEMENT_KIND_INSERT]}
    action: ACTION_ALLOW
  - id: review-deletes
    match: {kinds: [STATEMENT_KIND_DELETE]}
    action: ACTION_REVIEW
    reason: deleting accounts needs a human
    review_timeout_s: )YAML",
                      review_timeout_s, R"YAML(
  - id: deny-ddl
    match: {kinds: [STATEMENT_KIND_DDL]}
    action: ACTION_DENY
    reason: no schema changes from agents
)YAML");
}

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-guardtest-");
    ::chmod(dir_.c_str(), 0755);
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.45"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
    ASSERT_TRUE(pg_->Psql("CREATE DATABASE appdb OWNER app").ok());
    ASSERT_TRUE(pg_->Psql("CREATE TABLE accounts(id int primary key, owner text, balance numeric);"
                          "INSERT INTO accounts SELECT g, 'owner' || g, g * 10 FROM generate_series(1, 100) g;"
                          "ALTER TABLE accounts OWNER TO app",
                          "appdb")
                    .ok());
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, kAppPassword, 0600).ok());
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
  }
  void TearDown() override {
    pg_.reset();
    RemoveTree(dir_);
  }

  void WritePolicy(const std::string& yaml) { ASSERT_TRUE(WriteFileAtomic(policy_file_, yaml, 0644).ok()); }

  std::unique_ptr<InterlockdHarness> Daemon(const std::string& webhook_url = "", const std::string& more_yaml = "") {
    ResourceSpec r{"appdb", pg_->address(), pg_->port(),
                   absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n"
                                "      login: {user: app, database: appdb, password_ref: \"file:",
                                password_file_, "\"}\n      sslmode: disable\n      allow_unverified_upstream: true\n")};
    std::string extra = absl::StrCat("policy_file: ", policy_file_, "\n");
    if (!webhook_url.empty()) {
      std::string key_file = absl::StrCat(dir_, "/webhook.key");
      EXPECT_TRUE(WriteFileAtomic(key_file, absl::StrCat(kWebhookKey, "\n"), 0600).ok());
      absl::StrAppend(&extra, "approvals:\n  webhook_url: ", webhook_url, "\n  webhook_signing_key_ref: \"file:",
                      key_file, "\"\n");
    }
    absl::StrAppend(&extra, more_yaml);
    return std::make_unique<InterlockdHarness>(HarnessOptions{.resources = {r}, .extra_yaml = extra});
  }

  // psql with no password; each -c is one Query on the same connection. The agent is
  // unprivileged (uid nobody, no capabilities) because `interlock run` drops to it.
  std::vector<std::string> Psql(const std::vector<std::string>& commands, bool stop_on_error = true) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "PGPASSWORD", "PGCONNECT_TIMEOUT=10",
                                     "/usr/bin/psql", "-X", "-h", pg_->address(), "-p", absl::StrCat(pg_->port()),
                                     "-U", "agent", "-d", "whatever", "-v", "VERBOSITY=verbose", "-v",
                                     stop_on_error ? "ON_ERROR_STOP=1" : "ON_ERROR_STOP=0", "-At"};
    for (const auto& c : commands) argv.insert(argv.end(), {"-c", c});
    return argv;
  }

  std::string Count(const std::string& where = "") {
    auto r = pg_->Psql(absl::StrCat("SELECT count(*) FROM accounts", where), "appdb");
    return r.ok() ? std::string(absl::StripAsciiWhitespace(*r)) : "error";
  }

  static std::vector<v1::ApprovalRequest> Approvals(InterlockdHarness& h, bool all = false) {
    std::vector<std::string> args = {"approvals", "--json"};
    if (all) args.push_back("--all");
    CommandResult r = h.Cli(args);
    std::vector<v1::ApprovalRequest> out;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      v1::ApprovalRequest a;
      if (google::protobuf::util::JsonStringToMessage(std::string(line), &a).ok()) out.push_back(a);
    }
    return out;
  }

  static std::string WaitForPending(InterlockdHarness& h) {
    std::string id;
    WaitFor([&] {
      auto p = Approvals(h);
      if (p.empty()) return false;
      id = p[0].id();
      return true;
    }, 20);
    return id;
  }

  std::string dir_, password_file_, policy_file_;
  std::unique_ptr<PostgresServer> pg_;
};

TEST_F(GuardTest, HeldDeleteRunsOnlyAfterApproveFromAnotherProcess) {
  WebhookReceiver hook;
  WritePolicy(PolicyYaml(120));
  auto h = Daemon(hook.url());
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();

  CommandResult agent_result;
  JoinedThread agent([&] {
    agent_result = h->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 1 RETURNING id"}));
  });
  std::string id = WaitForPending(*h);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  auto pending = Approvals(*h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].statement(), "DELETE FROM accounts WHERE id = 1 RETURNING id");
  EXPECT_EQ(pending[0].rule_id(), "review-deletes");
  EXPECT_EQ(pending[0].requester().workload(), "billing-agent");
  EXPECT_EQ(pending[0].requester().uid(), kNobody);
  // Held: not run.
  EXPECT_EQ(Count(" WHERE id = 1"), "1");

  // A process inside an enrolled workload cannot approve (the agent approving itself),
  // even as root (--allow-root): the control API refuses it for its cgroup.
  CommandResult rogue =
      h->RunAgent("rogue-approver", {BinaryPath("interlock"), "--config", h->config_path(), "approve", id},
                  AgentOptions{.as_root = true});
  EXPECT_NE(rogue.exit_code, 0);
  EXPECT_THAT(rogue.err, HasSubstr("enrolled"));
  EXPECT_EQ(Count(" WHERE id = 1"), "1");

  CommandResult ok = h->Cli({"approve", id, "--reason", "ticket CHG-42"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  agent.join();
  EXPECT_EQ(agent_result.exit_code, 0) << agent_result.err << h->DaemonLog();
  EXPECT_EQ(agent_result.out, "1\nDELETE 1\n");
  EXPECT_EQ(Count(" WHERE id = 1"), "0");

  // Evidence: requested and approved, with requester, approver and the exact statement.
  ASSERT_TRUE(WaitFor([&] { return OfKind(h->AuditEvents(), v1::AUDIT_KIND_APPROVAL).size() >= 2; }));
  auto approvals = OfKind(h->AuditEvents(), v1::AUDIT_KIND_APPROVAL);
  EXPECT_EQ(approvals[0].outcome(), "requested");
  const auto& decided = approvals.back();
  EXPECT_EQ(decided.outcome(), "approved");
  EXPECT_EQ(decided.approval().approver().uid(), 0u);
  EXPECT_EQ(decided.approval().decision_reason(), "ticket CHG-42");
  // Events and notifications show the statement with its literals replaced (PCI DSS 3.5.1);
  // the approver's own view (above) has the exact text.
  EXPECT_EQ(decided.approval().statement(), "DELETE FROM accounts WHERE id = $1 RETURNING id");
  bool held = false, released = false;
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_POLICY_DECISION)) {
    held |= e.outcome() == "held" && e.decision().rule_id() == "review-deletes";
    released |= e.outcome() == "released" && e.decision().source() == "approved";
  }
  EXPECT_TRUE(held);
  EXPECT_TRUE(released);
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h->AuditEvents(), v1::AUDIT_KIND_STATEMENT).empty(); }));
  auto st = OfKind(h->AuditEvents(), v1::AUDIT_KIND_STATEMENT);
  EXPECT_EQ(st.back().statement().decision().rule_id(), "review-deletes");
  EXPECT_EQ(st.back().statement().status(), "ok");
  // The webhook got the request.
  ASSERT_TRUE(WaitFor([&] { return !hook.bodies().empty(); }));
  EXPECT_THAT(hook.bodies()[0], HasSubstr(id));
  EXPECT_THAT(hook.bodies()[0], HasSubstr("DELETE FROM accounts WHERE id = $1"));
  EXPECT_THAT(hook.bodies()[0], HasSubstr("approval.requested"));
  // Signed: the receiver can check it came from interlockd, unchanged.
  const std::string head = hook.heads()[0];
  const std::string ts = HeaderValue(head, "X-Interlock-Timestamp");
  ASSERT_FALSE(ts.empty()) << head;
  EXPECT_EQ(HeaderValue(head, "X-Interlock-Signature"), ExpectedSignature(ts, hook.bodies()[0])) << head;
  EXPECT_THAT(head, ::testing::Not(HasSubstr(kWebhookKey)));
  // And per Standard Webhooks, with the same timestamp.
  EXPECT_EQ(HeaderValue(head, "webhook-id"), absl::StrCat("msg_", id)) << head;
  EXPECT_EQ(HeaderValue(head, "webhook-timestamp"), ts) << head;
  EXPECT_EQ(HeaderValue(head, "webhook-signature"),
            ExpectedStandardSignature(absl::StrCat("msg_", id), ts, hook.bodies()[0]))
      << head;
}

// webhook_format: WEBHOOK_FORMAT_SLACK: the approvers' channel gets a Slack/Teams message
// whose text holds the audited statement (no literals), who asked, and the commands; text
// the agent wrote cannot become a mention or a link.
TEST_F(GuardTest, SlackFormatNotificationIsAuditedAndInert) {
  WebhookReceiver hook;
  WritePolicy(PolicyYaml(120));
  auto h = Daemon(hook.url(), "  webhook_format: WEBHOOK_FORMAT_SLACK\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult agent_result;
  JoinedThread agent([&] {
    agent_result = h->RunAgent(
        "billing-agent", Psql({"DELETE /* <!channel> <http://evil.example|approve> */ FROM accounts WHERE id = 7"},
                              /*stop_on_error=*/false));
  });
  std::string id = WaitForPending(*h);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return !hook.bodies().empty(); }));
  const std::string body = hook.bodies()[0];
  google::protobuf::Struct msg;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &msg).ok()) << body;
  const std::string text = msg.fields().at("text").string_value();
  EXPECT_THAT(text, HasSubstr(id));
  EXPECT_THAT(text, HasSubstr("billing-agent"));
  EXPECT_THAT(text, HasSubstr("review-deletes"));
  EXPECT_THAT(text, HasSubstr("WHERE id = $1"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("WHERE id = 7")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("interlock approve ", id)));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("interlock deny ", id, " --reason")));
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(msg.fields().at("blocks").list_value().values_size(), 4);
  // Still signed.
  EXPECT_EQ(HeaderValue(hook.heads()[0], "webhook-signature"),
            ExpectedStandardSignature(absl::StrCat("msg_", id), HeaderValue(hook.heads()[0], "webhook-timestamp"),
                                      body));
  CommandResult no = h->Cli({"deny", id, "--reason", "test"});
  EXPECT_EQ(no.exit_code, 0) << no.err;
  agent.join();
  EXPECT_EQ(Count(" WHERE id = 7"), "1");
}

TEST_F(GuardTest, DeniedStatementGets42501AndTheConnectionStaysUsable) {
  WritePolicy(PolicyYaml(120));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = h->RunAgent(
      "billing-agent", Psql({"DROP TABLE accounts", "SELECT count(*) FROM accounts"}, /*stop_on_error=*/false));
  EXPECT_THAT(r.err, HasSubstr("42501"));
  EXPECT_THAT(r.err, HasSubstr("interlock: no schema changes from agents"));
  EXPECT_THAT(r.err, HasSubstr("deny-ddl"));
  EXPECT_EQ(r.out, "100\n");  // same connection, next statement ran
  EXPECT_EQ(Count(), "100");

  // Inside a transaction the denial aborts it, exactly like a server error: the earlier
  // UPDATE is rolled back and COMMIT reports ROLLBACK.
  r = h->RunAgent("billing-agent", Psql({"BEGIN", "UPDATE accounts SET balance = 0 WHERE id = 2",
                                         "DROP TABLE accounts", "COMMIT"},
                                        /*stop_on_error=*/false));
  EXPECT_THAT(r.out, HasSubstr("ROLLBACK"));
  EXPECT_EQ(Count(" WHERE id = 2 AND balance = 20"), "1");

  ASSERT_TRUE(WaitFor([&] { return !OfKind(h->AuditEvents(), v1::AUDIT_KIND_POLICY_DECISION).empty(); }));
  auto d = OfKind(h->AuditEvents(), v1::AUDIT_KIND_POLICY_DECISION)[0];
  EXPECT_EQ(d.outcome(), "denied");
  EXPECT_EQ(d.decision().rule_id(), "deny-ddl");
  EXPECT_EQ(d.decision().action(), "DENY");
  ASSERT_EQ(d.decision().classification().statements_size(), 1);
  EXPECT_EQ(d.decision().classification().statements(0).kind(), v1::STATEMENT_KIND_DDL);
}

TEST_F(GuardTest, Psycopg2SeesDenialsAsInsufficientPrivilegeAndWaitsOnHolds) {
  WritePolicy(PolicyYaml(120));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  std::string script = absl::StrCat(dir_, "/agent.py");
  std::ofstream(script) << R"PY(
import sys, psycopg2, psycopg2.errors
conn = psycopg2.connect("host=%s port=%s user=agent dbname=whatever connect_timeout=10" % (sys.argv[1], sys.argv[2]))
cur = conn.cursor()
cur.execute("SELECT count(*) FROM accounts WHERE balance > %s", (500,))
assert cur.fetchone()[0] == 50
try:
    cur.execute("CREATE TABLE exfil AS SELECT * FROM accounts")
    print("ddl was not denied"); sys.exit(1)
except psycopg2.errors.InsufficientPrivilege as e:
    assert "no schema changes from agents" in str(e), str(e)
conn.rollback()
# held until the test approves it; psycopg2 just waits for the result
cur.execute("DELETE FROM accounts WHERE id = %s", (8,))
assert cur.rowcount == 1
conn.commit()
cur.execute("SELECT count(*) FROM accounts")
print(cur.fetchone()[0])
)PY";
  ::chmod(script.c_str(), 0644);
  CommandResult r;
  JoinedThread agent([&] {
    r = h->RunAgent("py-agent", {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/python3", script, pg_->address(),
                                 absl::StrCat(pg_->port())});
  });
  std::string id = WaitForPending(*h);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  EXPECT_EQ(Approvals(*h)[0].statement(), "DELETE FROM accounts WHERE id = 8");
  EXPECT_EQ(Count(" WHERE id = 8"), "1");
  EXPECT_EQ(h->Cli({"approve", id}).exit_code, 0);
  agent.join();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "99\n");
}

TEST_F(GuardTest, ReviewTimesOutAndApproverDenialReachesTheAgent) {
  WritePolicy(PolicyYaml(2));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  auto start = std::chrono::steady_clock::now();
  CommandResult r = h->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 3"}));
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("42501"));
  EXPECT_THAT(r.err, HasSubstr("timed out"));
  EXPECT_GE(waited, 1.5);
  EXPECT_EQ(Count(" WHERE id = 3"), "1");

  CommandResult denied;
  JoinedThread agent([&] {
    denied = h->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 4", "SELECT 'still here'"},
                                               /*stop_on_error=*/false));
  });
  // The deadline is 2 s: deny quickly.
  std::string id = WaitForPending(*h);
  ASSERT_FALSE(id.empty());
  EXPECT_NE(h->Cli({"deny", id}).exit_code, 0);  // a denial needs a reason
  CommandResult d = h->Cli({"deny", id, "--reason", "not during business hours"});
  agent.join();
  if (d.exit_code == 0) {
    EXPECT_THAT(denied.err, HasSubstr("not during business hours"));
  } else {
    EXPECT_THAT(d.err, HasSubstr("timed_out"));  // lost the race against the 2 s deadline
  }
  EXPECT_THAT(denied.out, HasSubstr("still here"));
  EXPECT_EQ(Count(" WHERE id = 4"), "1");
}

// interlockd goes while a statement is held — killed, or stopped cleanly (SIGTERM, or the
// old process of an upgrade) — and comes back: the request is expired, never approvable,
// and the statement never ran. Stopped cleanly, it first tells psql why in PostgreSQL's
// words once drain_ms has passed (FATAL 57P01, as a server shutting down says it) instead
// of a reset.
class GuardGoneTest : public GuardTest, public ::testing::WithParamInterface<bool> {};

TEST_P(GuardGoneTest, DuringAHoldTheRequestExpiresAndNeverRuns) {
  const bool stopped = GetParam();
  WritePolicy(PolicyYaml(120));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult agent_result;
  JoinedThread agent([&] { agent_result = h->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 5"})); });
  std::string id = WaitForPending(*h);
  ASSERT_FALSE(id.empty());
  if (stopped) {
    ASSERT_EQ(h->Stop(), 0) << h->DaemonLog();
  } else {
    h->Kill();
  }
  agent.join();
  EXPECT_NE(agent_result.exit_code, 0);
  if (stopped) {
    EXPECT_THAT(agent_result.err,
                HasSubstr("FATAL:  57P01: interlock: terminating connection because interlockd is stopping"))
        << agent_result.err;
  }
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  auto all = Approvals(*h, /*all=*/true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state(), v1::APPROVAL_STATE_EXPIRED);
  CommandResult late = h->Cli({"approve", id});
  EXPECT_NE(late.exit_code, 0);
  EXPECT_THAT(late.err, HasSubstr("expired"));
  EXPECT_EQ(Count(" WHERE id = 5"), "1");
}

INSTANTIATE_TEST_SUITE_P(KilledOrStopped, GuardGoneTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Stopped" : "Killed"; });

TEST_F(GuardTest, ExtendedProtocolExecuteIsHeldUntilApproved) {
  WritePolicy(PolicyYaml(120));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  std::string script = absl::StrCat(dir_, "/delete.sql");
  std::ofstream(script) << "DELETE FROM accounts WHERE id = 6;\nSELECT count(*) FROM accounts;\n";
  ::chmod(script.c_str(), 0644);
  std::vector<std::string> argv = {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/pgbench", "-n", "-M", "prepared", "-t", "3",
                                   "-f", script, "-h", pg_->address(), "-p", absl::StrCat(pg_->port()), "-U",
                                   "agent", "whatever"};
  CommandResult r;
  JoinedThread agent([&] { r = h->RunAgent("bench-agent", argv); });
  std::string id = WaitForPending(*h);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  EXPECT_EQ(Approvals(*h)[0].statement(), "DELETE FROM accounts WHERE id = 6;");
  EXPECT_EQ(Count(" WHERE id = 6"), "1");
  // Approve with a window: the same prepared statement runs twice more without review.
  EXPECT_EQ(h->Cli({"approve", id, "--for", "10m"}).exit_code, 0);
  agent.join();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("number of transactions actually processed: 3/3"));
  EXPECT_EQ(Count(" WHERE id = 6"), "0");
  int by_window = 0;
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_APPROVAL)) by_window += e.outcome() == "approved_by_window";
  EXPECT_EQ(by_window, 2);
}

TEST_F(GuardTest, GrantRequiredAndItsExpiryClosesTheSession) {
  WritePolicy(PolicyYaml(120, /*require_grant=*/true));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = h->RunAgent("billing-agent", Psql({"SELECT 1"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("requires a just-in-time grant"));
  CommandResult g = h->Cli({"grant", "--workload", "billing-agent", "--resource", "appdb", "--for", "3s",
                            "--reason", "incident INC-7"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_THAT(h->Cli({"grants"}).out, HasSubstr("incident INC-7"));
  // The grant names its operator (SO_PEERCRED of `interlock grant`): here root.
  EXPECT_THAT(h->Cli({"grants"}).out, HasSubstr("granted by root uid 0"));
  auto start = std::chrono::steady_clock::now();
  r = h->RunAgent("billing-agent", Psql({"SELECT 1", "SELECT pg_sleep(30)"}));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.out, "1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("expired"));
  EXPECT_LT(took, 20);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_GRANT)) {
      if (e.outcome() == "closed") return true;
    }
    return false;
  }));
  // And after expiry, no grant: refused again.
  r = h->RunAgent("billing-agent", Psql({"SELECT 1"}));
  EXPECT_THAT(r.err, HasSubstr("requires a just-in-time grant"));
}

// Issue 12 item 10: a workload cannot grant itself access. The agent here runs as root,
// the operator too: refused (audited, nothing stored) unless approvals.allow_same_uid.
TEST_F(GuardTest, SelfGrantByTheWorkloadsUidIsRefused) {
  WritePolicy(PolicyYaml(120, /*require_grant=*/true));
  for (bool allow : {false, true}) {
    SCOPED_TRACE(allow ? "allow_same_uid" : "default");
    auto h = Daemon("", allow ? "approvals:\n  allow_same_uid: true\n" : "");
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    CommandResult agent_result;
    // The file appears once the agent runs inside its cgroup (it moves itself, then execs).
    std::string ready = absl::StrCat(dir_, allow ? "/ready-allow" : "/ready-default");
    JoinedThread agent([&] {
      // As root on purpose: the workload's uid is then the operator's.
      agent_result = h->RunAgent("billing-agent", {"/bin/sh", "-c", absl::StrCat("touch ", ready, " && exec sleep 3")},
                                 AgentOptions{.as_root = true});
    });
    if (!WaitFor([&] { return ::access(ready.c_str(), F_OK) == 0; })) {
      agent.join();
      FAIL() << "the agent never ran: " << agent_result.err << h->DaemonLog();
    }
    CommandResult g = h->Cli({"grant", "--workload", "billing-agent", "--resource", "appdb", "--for", "1m",
                              "--reason", "let me in"});
    agent.join();
    std::vector<v1::AuditEvent> grants = OfKind(h->AuditEvents(), v1::AUDIT_KIND_GRANT);
    ASSERT_EQ(grants.size(), 1u);
    EXPECT_EQ(grants[0].grant().granted_by().uid(), 0u);
    EXPECT_EQ(grants[0].grant().granted_by().user(), "root");
    if (allow) {
      EXPECT_EQ(g.exit_code, 0) << g.err;
      EXPECT_EQ(grants[0].outcome(), "granted");
      continue;
    }
    EXPECT_NE(g.exit_code, 0);
    EXPECT_THAT(g.err, HasSubstr("operator uid 0 is a uid workload billing-agent runs as"));
    EXPECT_EQ(grants[0].outcome(), "granter_refused");
    EXPECT_THAT(h->Cli({"grants", "--all"}).out, HasSubstr("no grants"));
  }
}

TEST_F(GuardTest, PlannerEstimatesDecideBigReads) {
  ASSERT_TRUE(pg_->Psql("ANALYZE accounts", "appdb").ok());
  WritePolicy(R"YAML(resources:
  - {resource: appdb, default_action: ACTION_DENY}
rules:
  - {id: reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_ALLOW}
  - id: big-reads
    match: {kinds: [STATEMENT_KIND_SELECT], tables: [accounts], estimated_rows_gt: 50}
    action: ACTION_DENY
    reason: reads of more than 50 accounts
)YAML");
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = h->RunAgent("billing-agent", Psql({"SELECT owner FROM accounts WHERE id = 7"}));
  EXPECT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
  EXPECT_EQ(r.out, "owner7\n");
  r = h->RunAgent("billing-agent", Psql({"SELECT owner FROM accounts WHERE balance > 100"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("reads of more than 50 accounts"));
  // The estimate came from interlockd's own connection, not the agent's.
  auto who = pg_->Psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'interlockd-estimator'");
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(std::string(absl::StripAsciiWhitespace(*who)), "1");
}

TEST_F(GuardTest, PolicyReloadOnFileChangeRejectsInvalidAndAppliesValid) {
  WritePolicy(PolicyYaml(120));
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  auto reloads = [&](const std::string& outcome) {
    int n = 0;
    for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_POLICY)) n += e.outcome() == outcome;
    return n;
  };
  WritePolicy("rules:\n  - id: broken\n    action: ACTION_SOMETIMES\n");
  ASSERT_TRUE(WaitFor([&] { return reloads("rejected") == 1; })) << h->DaemonLog();
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_POLICY)) {
    if (e.outcome() == "rejected") {
      EXPECT_THAT(e.detail(), HasSubstr("policy.yaml:3"));
    }
  }
  // The old policy is still in force.
  CommandResult r = h->RunAgent("billing-agent", Psql({"DROP TABLE accounts"}));
  EXPECT_THAT(r.err, HasSubstr("no schema changes from agents"));
  // A valid one applies to the next statement.
  WritePolicy("rules:\n  - {id: read-only, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_DENY, "
              "reason: reads are closed}\n");
  ASSERT_TRUE(WaitFor([&] { return reloads("loaded") >= 2; })) << h->DaemonLog();
  r = h->RunAgent("billing-agent", Psql({"SELECT 1"}));
  EXPECT_THAT(r.err, HasSubstr("reads are closed"));
  // SIGHUP and `interlock reload` reload too.
  EXPECT_EQ(h->Cli({"reload"}).exit_code, 0);
  EXPECT_GE(reloads("loaded"), 3);
}


// ---- A fleet sharing one approval store (approvals.store: postgres://...) ----
//
// Two interlockd instances on this machine (two state dirs, pin paths and cgroup roots:
// two hosts as far as approvals go) share an approval store in a PostgreSQL of its own.
class FleetTest : public GuardTest {
 protected:
  static constexpr char kStorePassword[] = "fleet-store-secret";

  void SetUp() override {
    GuardTest::SetUp();
    if (HasFatalFailure()) return;
    store_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.47"});
    ASSERT_TRUE(store_->Start().ok()) << store_->Log();
    ASSERT_TRUE(store_->Psql(absl::StrCat("CREATE ROLE interlock LOGIN PASSWORD '", kStorePassword, "'")).ok());
    ASSERT_TRUE(store_->Psql("CREATE DATABASE approvals OWNER interlock").ok());
    store_password_file_ = absl::StrCat(dir_, "/store.pw");
    ASSERT_TRUE(WriteFileAtomic(store_password_file_, kStorePassword, 0600).ok());
  }
  void TearDown() override {
    store_.reset();
    GuardTest::TearDown();
  }

  std::unique_ptr<InterlockdHarness> Host(const std::string& name) {
    return Daemon("", absl::StrCat("approvals:\n  store: \"postgres://interlock@", store_->address(), ":",
                                   store_->port(), "/approvals\"\n  store_password_ref: \"file:",
                                   store_password_file_, "\"\n  instance_name: ", name, "\n"));
  }

  static std::string Status(InterlockdHarness& h) { return h.Cli({"status"}).out; }

  std::unique_ptr<PostgresServer> store_;
  std::string store_password_file_;
};

TEST_F(FleetTest, AStatementHeldOnOneHostIsDecidedFromAnother) {
  WritePolicy(PolicyYaml(120));
  auto h1 = Host("host-1");
  auto h2 = Host("host-2");
  ASSERT_TRUE(h1->Start().ok()) << h1->DaemonLog();
  ASSERT_TRUE(h2->Start().ok()) << h2->DaemonLog();
  EXPECT_THAT(Status(*h1), HasSubstr("instance host-1; store postgres, connected to"));
  EXPECT_THAT(Status(*h2), HasSubstr("instance host-2; store postgres, connected to"));

  // Held on host-1, seen and approved on host-2.
  CommandResult agent_result;
  {
    JoinedThread agent([&] {
      agent_result = h1->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 1 RETURNING id"}));
    });
    std::string id = WaitForPending(*h2);
    ASSERT_FALSE(id.empty()) << h1->DaemonLog() << h2->DaemonLog();
    auto pending = Approvals(*h2);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].host(), "host-1");
    EXPECT_EQ(pending[0].statement(), "DELETE FROM accounts WHERE id = 1 RETURNING id");
    EXPECT_THAT(h2->Cli({"approvals"}).out, HasSubstr("(uid 65534, pid ")) << "the requester, as attested on host-1";
    EXPECT_THAT(h2->Cli({"approvals"}).out, HasSubstr(" on host-1\n"));
    EXPECT_EQ(Count(" WHERE id = 1"), "1") << "held: not run";
    CommandResult approve = h2->Cli({"approve", id, "--reason", "checked by the on-call DBA"});
    ASSERT_EQ(approve.exit_code, 0) << approve.err << h2->DaemonLog();
  }
  EXPECT_EQ(agent_result.exit_code, 0) << agent_result.err << h1->DaemonLog();
  EXPECT_EQ(agent_result.out, "1\nDELETE 1\n");
  EXPECT_EQ(Count(" WHERE id = 1"), "0");
  // Each host's audit trail tells its part: host-1 released the statement on host-2's
  // approver's word; host-2 records that its approver decided a statement held elsewhere.
  auto released = OfKind(h1->AuditEvents(), v1::AUDIT_KIND_APPROVAL);
  bool h1_saw = false;
  for (const auto& e : released) {
    if (e.outcome() != "approved") continue;
    h1_saw = true;
    EXPECT_EQ(e.approval().approver().host(), "host-2");
    EXPECT_EQ(e.approval().host(), "host-1");
    EXPECT_EQ(e.approval().decision_reason(), "checked by the on-call DBA");
  }
  EXPECT_TRUE(h1_saw) << h1->DaemonLog();
  bool h2_saw = false;
  for (const auto& e : OfKind(h2->AuditEvents(), v1::AUDIT_KIND_APPROVAL)) {
    if (e.outcome() == "approved") {
      h2_saw = true;
      EXPECT_THAT(e.detail(), HasSubstr("decided on host-2 for the operation held by host-1"));
    }
  }
  EXPECT_TRUE(h2_saw);

  // Denied from host-2: the agent on host-1 hears the reason, nothing runs.
  {
    JoinedThread agent([&] {
      agent_result = h1->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 2"}));
    });
    std::string id = WaitForPending(*h2);
    ASSERT_FALSE(id.empty());
    CommandResult deny = h2->Cli({"deny", id, "--reason", "not during the freeze"});
    ASSERT_EQ(deny.exit_code, 0) << deny.err;
    // Decided once: host-1 cannot decide it again.
    CommandResult again = h1->Cli({"approve", id, "--reason", "x"});
    EXPECT_NE(again.exit_code, 0);
    EXPECT_THAT(again.err, HasSubstr("already denied"));
  }
  EXPECT_NE(agent_result.exit_code, 0);
  EXPECT_THAT(agent_result.err, HasSubstr("not during the freeze"));
  EXPECT_EQ(Count(" WHERE id = 2"), "1");
}

// The store goes away: nothing is approved for want of it. A hold already pending times
// out on its host as it would; an approver elsewhere cannot decide it; a new statement
// that would be held is refused at once. When the store is back, holds work again.
TEST_F(FleetTest, WithoutTheStoreNothingIsApprovedAndHoldsTimeOut) {
  WritePolicy(PolicyYaml(6));
  auto h1 = Host("host-1");
  auto h2 = Host("host-2");
  ASSERT_TRUE(h1->Start().ok()) << h1->DaemonLog();
  ASSERT_TRUE(h2->Start().ok()) << h2->DaemonLog();
  CommandResult agent_result;
  {
    JoinedThread agent([&] {
      agent_result = h1->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 3"}));
    });
    std::string id = WaitForPending(*h2);
    ASSERT_FALSE(id.empty()) << h1->DaemonLog();
    store_->Stop();
    CommandResult approve = h2->Cli({"approve", id, "--reason", "ok"});
    EXPECT_NE(approve.exit_code, 0);
    EXPECT_THAT(approve.err, HasSubstr("unavailable"));
  }
  EXPECT_NE(agent_result.exit_code, 0);
  EXPECT_EQ(Count(" WHERE id = 3"), "1");
  bool timed_out = false;
  for (const auto& e : OfKind(h1->AuditEvents(), v1::AUDIT_KIND_APPROVAL)) timed_out |= e.outcome() == "timed_out";
  EXPECT_TRUE(timed_out) << "the timeout is audited even though the store could not record it";
  EXPECT_THAT(Status(*h1), HasSubstr("store postgres, unavailable"));

  // A new statement that needs a human: refused now, not held without a store.
  auto start = std::chrono::steady_clock::now();
  CommandResult refused = h1->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 4"}));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10);
  EXPECT_EQ(Count(" WHERE id = 4"), "1");

  // The store comes back: host-1 reconnects by itself, and a hold is decided across hosts again.
  ASSERT_TRUE(store_->Start().ok()) << store_->Log();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Status(*h1), "store postgres, connected"); }, 20))
      << Status(*h1);
  {
    JoinedThread agent([&] {
      agent_result = h1->RunAgent("billing-agent", Psql({"DELETE FROM accounts WHERE id = 5"}));
    });
    std::string id;
    ASSERT_TRUE(WaitFor([&] {
      for (const auto& p : Approvals(*h2)) {
        if (absl::StrContains(p.statement(), "id = 5")) id = p.id();
      }
      return !id.empty();
    }, 20)) << h1->DaemonLog() << h2->DaemonLog();
    CommandResult approve = h2->Cli({"approve", id, "--reason", "ok"});
    EXPECT_EQ(approve.exit_code, 0) << approve.err;
  }
  EXPECT_EQ(agent_result.exit_code, 0) << agent_result.err;
  EXPECT_EQ(Count(" WHERE id = 5"), "0");
  // The hold that timed out without the store was not left pending for someone to approve.
  for (const auto& p : Approvals(*h2)) EXPECT_THAT(p.statement(), ::testing::Not(HasSubstr("id = 3")));
}

// A grant made on one host lets the workload in on another; revoking it on a third
// (here: the first again) ends the session it allowed there at once.
TEST_F(FleetTest, AGrantMadeOnOneHostAppliesOnAnotherAndItsRevocationEndsSessionsThere) {
  WritePolicy(PolicyYaml(120, /*require_grant=*/true));
  auto h1 = Host("host-1");
  auto h2 = Host("host-2");
  ASSERT_TRUE(h1->Start().ok()) << h1->DaemonLog();
  ASSERT_TRUE(h2->Start().ok()) << h2->DaemonLog();
  CommandResult r = h1->RunAgent("billing-agent", Psql({"SELECT 1"}));
  EXPECT_THAT(r.err, HasSubstr("requires a just-in-time grant"));
  CommandResult g = h2->Cli({"grant", "--workload", "billing-agent", "--resource", "appdb", "--for", "10m",
                             "--reason", "incident INC-9"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_THAT(h1->Cli({"grants"}).out, HasSubstr("incident INC-9"));
  r = h1->RunAgent("billing-agent", Psql({"SELECT 1"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");

  // A long session on host-1; the grant is revoked from host-2.
  CommandResult long_session;
  auto start = std::chrono::steady_clock::now();
  {
    JoinedThread agent([&] {
      long_session = h1->RunAgent("billing-agent", Psql({"SELECT 1", "SELECT pg_sleep(60)"}));
    });
    // Revoked once the session is inside its second statement.
    ASSERT_TRUE(WaitFor([&] {
      auto n = pg_->Psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'");
      return n.ok() && absl::StripAsciiWhitespace(*n) == "1";
    }, 20)) << h1->DaemonLog();
    std::string grant_id;
    for (absl::string_view line : absl::StrSplit(h2->Cli({"grants"}).out, '\n')) {
      if (absl::StrContains(line, "grt-")) {
        size_t at = line.find("grt-");
        grant_id = std::string(line.substr(at, 20));
      }
    }
    ASSERT_EQ(grant_id.size(), 20u) << h2->Cli({"grants"}).out;
    CommandResult revoke = h2->Cli({"revoke", grant_id});
    ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(long_session.exit_code, 0);
  EXPECT_EQ(long_session.out, "1\n");
  EXPECT_LT(took, 30) << "the revocation on host-2 ended the session on host-1";
  r = h1->RunAgent("billing-agent", Psql({"SELECT 1"}));
  EXPECT_THAT(r.err, HasSubstr("requires a just-in-time grant"));
}

}  // namespace
}  // namespace interlock::testing
