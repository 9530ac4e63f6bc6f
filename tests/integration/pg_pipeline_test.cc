// A libpq client in pipeline mode through the real redirect, in both relay modes: it sends
// thousands of statements before it reads a result (non-blocking socket, the server's
// results arriving while it still writes; interlock-pg-pipeline, pg_pipeline_client.c),
// as user nobody under `interlock run`, against a real PostgreSQL 15 on 127.0.0.57.
//
// Besides finishing (a stall fails on RunAgent's timeout), the bytes waiting in the
// agent's socket must stay within what TCP would allow while the agent does not read: the
// sockmap splice queues them in a psock ingress queue that no socket buffer limits, so
// interlockd's direction falls back to TCP above 1 MiB (bpf/lib/relay.h). The bytes
// waiting in interlockd's socket are bounded in plain mode only; the splice leaves the
// agent's direction unbounded on purpose (README, "Relay modes"). Both are printed.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

constexpr char kAppPassword[] = "pipeline-only-interlockd-knows";
// What TCP lets wait in one socket: its receive buffer, autotuned up to tcp_rmem's
// maximum (32 MiB on the test VM; plain TCP held up to 13 MiB in these runs), plus 1 MiB
// of slack. The unbounded splice held 64 MB at the agent.
uint64_t MaxQueuedBytes() {
  uint64_t min = 0, def = 0, max = 0;
  auto text = ReadFile("/proc/sys/net/ipv4/tcp_rmem");
  std::vector<std::string> f =
      absl::StrSplit(text.ok() ? *text : "", absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  if (f.size() != 3 || !absl::SimpleAtoi(f[0], &min) || !absl::SimpleAtoi(f[1], &def) ||
      !absl::SimpleAtoi(f[2], &max)) {
    max = 6u << 20;  // the kernel's default
  }
  return max + (1u << 20);
}

// Samples, every 50 ms until destroyed, the largest receive queue (`ss -tm` skmem r: TCP
// receive queue plus psock ingress) of the agents' sockets (connected to the engine port)
// and of interlockd's (accepted on it).
class QueueSampler {
 public:
  explicit QueueSampler(uint16_t engine_port)
      : thread_([this, engine_port] {
          while (!stop_.load()) {
            Sample(absl::StrCat("( dport = :", engine_port, " )"), &agent_max_);
            Sample(absl::StrCat("( sport = :", engine_port, " )"), &engine_max_);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }) {}
  ~QueueSampler() {
    stop_ = true;
    thread_.join();
  }
  uint64_t agent_max() const { return agent_max_.load(); }
  uint64_t engine_max() const { return engine_max_.load(); }
  // Records both as test properties (and prints them), for the README's numbers.
  void Report() const {
    ::testing::Test::RecordProperty("agent_max_queued_bytes", std::to_string(agent_max()));
    ::testing::Test::RecordProperty("engine_max_queued_bytes", std::to_string(engine_max()));
    std::cout << "largest receive queue: agent " << agent_max() << " bytes, interlockd "
              << engine_max() << " bytes\n";
  }

 private:
  static void Sample(const std::string& filter, std::atomic<uint64_t>* max) {
    CommandResult r = RunCommand({"/usr/bin/ss", "-tmnH", filter}, 10);
    for (absl::string_view part : absl::StrSplit(r.out, "skmem:(r")) {
      uint64_t v = 0;
      size_t end = part.find(',');
      if (end != absl::string_view::npos && absl::SimpleAtoi(part.substr(0, end), &v)) {
        *max = std::max(max->load(), v);
      }
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> agent_max_{0};
  std::atomic<uint64_t> engine_max_{0};
  std::thread thread_;
};

class PgPipelineTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-pgpipe-");
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.57"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(
        pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
    ASSERT_TRUE(pg_->Psql("CREATE DATABASE appdb OWNER app").ok());
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, kAppPassword, 0600).ok());
  }
  void TearDown() override {
    pg_.reset();
    RemoveTree(dir_);
  }

  HarnessOptions Options() {
    return {.sockmap = GetParam(),
            .resources = {
                {"appdb", pg_->address(), pg_->port(),
                 absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n",
                              "      login: {user: app, database: appdb, password_ref: \"file:",
                              password_file_, "\"}\n      sslmode: disable\n",
                              "      allow_unverified_upstream: true\n")}}};
  }

  // The client as the agent runs it: its own idea of user and database, no password.
  std::vector<std::string> Client(int count, int bytes, const std::string& sql = "",
                                  int pause_ms = 0) {
    std::vector<std::string> argv = {
        INTERLOCK_PG_PIPELINE_CLIENT,
        absl::StrCat("host=", pg_->address(), " port=", pg_->port(),
                     " user=agent dbname=whatever sslmode=disable connect_timeout=10"),
        absl::StrCat(count), absl::StrCat(bytes)};
    if (!sql.empty()) argv.push_back(sql);
    if (pause_ms > 0) argv.push_back(absl::StrCat(pause_ms));
    return argv;
  }

  std::string dir_;
  std::string password_file_;
  std::unique_ptr<PostgresServer> pg_;
};

// 5,000 statements of 8 KiB each, then a Sync, then the results (40 MB each way).
TEST_P(PgPipelineTest, FiveThousandStatementsBeforeReadingAllComeBack) {
  InterlockdHarness h(Options());
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  QueueSampler queued(h.engine_port());
  CommandResult r = h.RunAgent("pipeline", Client(5000, 8192), {.timeout_s = 60});
  ASSERT_EQ(r.exit_code, 0) << "a stall is killed after 60 s\n" << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "results"), "5000") << r.out;
  queued.Report();
  EXPECT_LT(queued.agent_max(), MaxQueuedBytes()) << "bytes waiting for the agent";
  if (!GetParam()) {
    EXPECT_LT(queued.engine_max(), MaxQueuedBytes()) << "bytes waiting for interlockd";
  }

  ASSERT_TRUE(
      WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto statements = OfKind(h.AuditEvents(), v1::AUDIT_KIND_STATEMENT);
  EXPECT_EQ(statements.size(), 5000u);
}

// The server takes ~1 ms a statement while the client has long sent them all: the
// statements wait in the kernel on the way in (interlockd stops reading the agent above
// its high-water mark), and that queue must stay bounded as it does over TCP.
TEST_P(PgPipelineTest, WithASlowServerAllComeBack) {
  InterlockdHarness h(Options());
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  QueueSampler queued(h.engine_port());
  CommandResult r =
      h.RunAgent("pipeline", Client(2000, 16384, "SELECT $1::int, $2::text FROM pg_sleep(0.001)"),
                 {.timeout_s = 90});
  ASSERT_EQ(r.exit_code, 0) << "a stall is killed after 90 s\n" << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "results"), "2000") << r.out;
  queued.Report();
  EXPECT_LT(queued.agent_max(), MaxQueuedBytes()) << "bytes waiting for the agent";
  // Over TCP the window bounds what waits for interlockd too; the splice leaves that
  // direction unbounded on purpose (bpf/lib/relay.h, README "Relay modes").
  if (!GetParam()) {
    EXPECT_LT(queued.engine_max(), MaxQueuedBytes()) << "bytes waiting for interlockd";
  }
}

// A slow consumer: 1,000 statements whose results are 64 KiB each (64 MB), read only
// after a 3 s pause. Over TCP the window stops interlockd, interlockd stops reading the
// server; spliced, interlockd's writes never block, so without a bound all 64 MB would
// wait in the agent's socket (a 256 MiB transfer left 29 MB there).
TEST_P(PgPipelineTest, SlowConsumerKeepsTheQueueAtTheAgentBounded) {
  InterlockdHarness h(Options());
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  QueueSampler queued(h.engine_port());
  CommandResult r =
      h.RunAgent("pipeline", Client(1000, 8192, "SELECT $1::int, repeat($2::text, 8)", 3000),
                 {.timeout_s = 90});
  ASSERT_EQ(r.exit_code, 0) << "a stall is killed after 90 s\n" << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "results"), "1000") << r.out;
  queued.Report();
  EXPECT_LT(queued.agent_max(), MaxQueuedBytes()) << "bytes waiting for the agent";
  // `interlock status` counts the direction that left the splice (sockmap only).
  CommandResult st = h.Cli({"status", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  uint64_t fallbacks = 0;
  const std::string field = ProbeField(st.out, "splice_fallbacks");  // proto3 JSON: a string, omitted at 0
  if (!field.empty()) {
    ASSERT_TRUE(absl::SimpleAtoi(field, &fallbacks)) << st.out;
  }
  EXPECT_EQ(fallbacks, GetParam() ? 1u : 0u) << st.out;
  EXPECT_EQ(ProbeField(st.out, "splice_bounded"), "true") << "this kernel has bpf_cast_to_kern_ctx\n" << st.out;
}

INSTANTIATE_TEST_SUITE_P(Modes, PgPipelineTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Sockmap" : "Plain"; });

}  // namespace
}  // namespace interlock::testing
