// A libpq client in pipeline mode through the real redirect, in both relay modes: it sends
// thousands of statements before it reads a result (non-blocking socket, the server's
// results arriving while it still writes; interlock-pg-pipeline, pg_pipeline_client.c),
// as user nobody under `interlock run`, against a real PostgreSQL 15 on 127.0.0.57.
//
// Besides finishing (a stall fails on RunAgent's timeout), the bytes the kernel holds on
// the agent <-> interlockd leg must stay bounded while one side does not read: with the
// sockmap splice they sit in a socket's psock ingress queue, which no socket buffer
// limits (README, "Relay modes").
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
// What plain TCP holds here in the same runs is ~3 MiB (socket buffers); the sockmap
// splice without a bound held 26-74 MiB.
constexpr uint64_t kMaxQueuedBytes = 8u << 20;

// Samples, every 50 ms until destroyed, the largest receive queue (`ss -tm` skmem r:
// TCP receive queue plus psock ingress) of any socket on the engine port: interlockd's
// accepted sockets and the agents' connected ones.
class QueueSampler {
 public:
  explicit QueueSampler(uint16_t engine_port)
      : thread_([this, engine_port] {
          const std::string filter = absl::StrCat("( sport = :", engine_port, " or dport = :", engine_port, " )");
          while (!stop_.load()) {
            CommandResult r = RunCommand({"/usr/bin/ss", "-tmnH", filter}, 10);
            for (absl::string_view part : absl::StrSplit(r.out, "skmem:(r")) {
              uint64_t v = 0;
              size_t end = part.find(',');
              if (end != absl::string_view::npos && absl::SimpleAtoi(part.substr(0, end), &v)) {
                max_ = std::max(max_.load(), v);
              }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }) {}
  ~QueueSampler() {
    stop_ = true;
    thread_.join();
  }
  uint64_t max() const { return max_.load(); }
  // Records the largest queue seen as a test property (and prints it), for the README's
  // numbers.
  void Report() const {
    ::testing::Test::RecordProperty("max_queued_bytes", std::to_string(max()));
    std::cout << "largest receive queue on the agent leg: " << max() << " bytes\n";
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> max_{0};
  std::thread thread_;
};

class PgPipelineTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-pgpipe-");
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.57"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
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
            .resources = {{"appdb", pg_->address(), pg_->port(),
                           absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n",
                                        "      login: {user: app, database: appdb, password_ref: \"file:",
                                        password_file_, "\"}\n      sslmode: disable\n",
                                        "      allow_unverified_upstream: true\n")}}};
  }

  // The client as the agent runs it: its own idea of user and database, no password.
  std::vector<std::string> Client(int count, int bytes, const std::string& sql = "") {
    std::vector<std::string> argv = {
        INTERLOCK_PG_PIPELINE_CLIENT,
        absl::StrCat("host=", pg_->address(), " port=", pg_->port(),
                     " user=agent dbname=whatever sslmode=disable connect_timeout=10"),
        absl::StrCat(count), absl::StrCat(bytes)};
    if (!sql.empty()) argv.push_back(sql);
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
  EXPECT_LT(queued.max(), kMaxQueuedBytes);

  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  auto statements = OfKind(h.AuditEvents(), v1::AUDIT_KIND_STATEMENT);
  EXPECT_EQ(statements.size(), 5000u);
}

// The server takes ~1 ms a statement while the client has long sent them all: the
// statements wait in the kernel on the way in (interlockd stops reading the agent above
// its high-water mark), and that queue must stay bounded as it does over TCP.
TEST_P(PgPipelineTest, SlowServerKeepsTheQueueOnTheAgentLegBounded) {
  InterlockdHarness h(Options());
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  QueueSampler queued(h.engine_port());
  CommandResult r = h.RunAgent("pipeline",
                               Client(2000, 16384, "SELECT $1::int, $2::text FROM pg_sleep(0.001)"),
                               {.timeout_s = 90});
  ASSERT_EQ(r.exit_code, 0) << "a stall is killed after 90 s\n" << r.out << r.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(r.out, "results"), "2000") << r.out;
  queued.Report();
  EXPECT_LT(queued.max(), kMaxQueuedBytes) << "bytes held in one socket's receive queue";
}

INSTANTIATE_TEST_SUITE_P(Modes, PgPipelineTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Sockmap" : "Plain"; });

}  // namespace
}  // namespace interlock::testing
