// RowEstimator against a real PostgreSQL 15 (SCRAM over TCP on 127.0.0.46, optional TLS):
// the planner's estimates through interlockd's own connection, that EXPLAIN of a DELETE
// changes nothing, the session's read-only settings, error mapping, reconnects, and
// teardown with requests in flight. Also the pure JSON extraction, on deep plans.
#include "userspace/proxy/pg/row_estimator.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_ca.h"
#include "userspace/common/clock.h"
#include "userspace/common/file_util.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/socket.h"
#include "userspace/net/tls.h"

namespace interlock::proxy::pg {
namespace {

using ::interlock::testing::MakeTempDir;
using ::interlock::testing::PostgresOptions;
using ::interlock::testing::PostgresServer;
using ::interlock::testing::RemoveTree;
using ::interlock::testing::TestCa;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAppPassword[] = "est-s3cret-only-interlockd-knows";
constexpr char kAddress[] = "127.0.0.46";

// ---------------------------------------------------------------------------------------
// The pure part: [0].Plan["Plan Rows"] out of EXPLAIN (FORMAT JSON) text.

std::string NestedPlan(int depth, int top_rows) {
  std::string s = absl::StrCat(
      "[{\"Plan\": {\"Node Type\": \"Nested Loop\", \"Plan Rows\": ", top_rows, ", \"Plans\": [");
  for (int i = 0; i < depth; ++i) {
    s += absl::StrCat("{\"Node Type\": \"Hash Join\", \"Plan Rows\": ", i, ", \"Plans\": [");
  }
  s += "{\"Node Type\": \"Seq Scan\", \"Plan Rows\": 1}";
  for (int i = 0; i < depth; ++i) s += "]}";
  s += "]}}]";
  return s;
}

TEST(PlanRowsFromExplainJson, TopNodeRows) {
  EXPECT_EQ(*PlanRowsFromExplainJson(NestedPlan(0, 42)), 42);
}

TEST(PlanRowsFromExplainJson, DeepPlansParseDespiteProtobufsDepthLimit) {
  // protobuf alone gives up at ~18 nested plan nodes; pruning keeps only the top.
  EXPECT_EQ(*PlanRowsFromExplainJson(NestedPlan(200, 7)), 7);
}

TEST(PlanRowsFromExplainJson, ModifyTableUsesItsInput) {
  EXPECT_EQ(*PlanRowsFromExplainJson(
                R"([{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Plan Rows": 0,
                     "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 10000,
                                "Plans": [{"Plan Rows": 3}]}]}}])"),
            10000);
  EXPECT_EQ(PlanRowsFromExplainJson(R"([{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 0}}])")
                .status()
                .code(),
            absl::StatusCode::kInternal);
}

TEST(PlanRowsFromExplainJson, HugeEstimatesClampAndFractionsRound) {
  EXPECT_EQ(*PlanRowsFromExplainJson(R"([{"Plan": {"Plan Rows": 1e300}}])"), INT64_MAX);
  EXPECT_EQ(*PlanRowsFromExplainJson(R"([{"Plan": {"Plan Rows": 2.6}}])"), 3);
}

TEST(PlanRowsFromExplainJson, WrongShapesAreInternal) {
  for (const char* bad :
       {"", "garbage", "{}", "[]", "[1]", R"([{"Plan": {}}])", R"([{"Plan": {"Plan Rows": "12"}}])",
        R"([{"Plan": {"Plan Rows": -1}}])", R"([{"Plan": {"Plan Rows": 1}})",
        R"([{"Plan": {"Plan Rows": 1}}]]]]])"}) {
    EXPECT_EQ(PlanRowsFromExplainJson(bad).status().code(), absl::StatusCode::kInternal) << bad;
  }
}

TEST(PlanRowsFromExplainJson, AmbiguousOrOddlySpelledOutputIsReadStrictly) {
  // A member twice: which one a reader takes differs between parsers, so neither is taken.
  EXPECT_EQ(PlanRowsFromExplainJson(R"([{"Plan": {"Plan Rows": 1, "Plan Rows": 100000}}])").status().code(),
            absl::StatusCode::kInternal);
  // Escapes are decoded before the node type is compared.
  EXPECT_EQ(*PlanRowsFromExplainJson(
                R"([{"Plan": {"Node Type": "Modify\u0054able", "Plan Rows": 0, "Plans": [{"Plan Rows": 9}]}}])"),
            9);
  // Only the first element's plan counts, and only its own first child.
  EXPECT_EQ(*PlanRowsFromExplainJson(
                R"([{"Plan": {"Plan Rows": 5, "Plans": [{"Plan Rows": 6}]}}, {"Plan": {"Plan Rows": 7}}])"),
            5);
  EXPECT_EQ(PlanRowsFromExplainJson(R"([{"Plan": 3}])").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(PlanRowsFromExplainJson(R"([{"Plan": {"Plan Rows": true}}])").status().code(),
            absl::StatusCode::kInternal);
}

TEST(PruneJsonDepth, ReplacesDeepContainersAndRespectsStrings) {
  EXPECT_EQ(PruneJsonDepth(R"([{"a": [1, {"b": 2}], "c": "x"}])", 2), R"([{"a": null, "c": "x"}])");
  // Brackets and escaped quotes inside strings are text, not structure.
  EXPECT_EQ(PruneJsonDepth(R"j([{"Filter": "(s = '[{\"')", "x": [[1]]}])j", 2),
            R"j([{"Filter": "(s = '[{\"')", "x": null}])j");
  EXPECT_EQ(PruneJsonDepth(R"({"k": "\\", "v": [1]})", 1), R"({"k": "\\", "v": null})");
}

// ---------------------------------------------------------------------------------------
// Against a real server.

// One server for the suite (initdb takes seconds): role `app` (SCRAM) owning database
// `appdb` with t(id int primary key, v int) of 10000 analyzed rows.
class RowEstimatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() {
    pg_.reset();
    if (!dir_.empty()) RemoveTree(dir_);
    dir_.clear();
  }

  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    if (pg_ == nullptr) {
      dir_ = MakeTempDir("interlock-esttest-");
      auto pg = std::make_unique<PostgresServer>(PostgresOptions{.address = kAddress});
      ASSERT_TRUE(pg->Start().ok()) << pg->Log();
      ASSERT_TRUE(
          pg->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
      ASSERT_TRUE(pg->Psql("CREATE DATABASE appdb OWNER app").ok());
      ASSERT_TRUE(pg->Psql("SET ROLE app;"
                           "CREATE TABLE t(id int PRIMARY KEY, v int);"
                           "INSERT INTO t SELECT g, g % 100 FROM generate_series(1, 10000) g;"
                           "CREATE TABLE locked(id int);"
                           "CREATE SEQUENCE s;"
                           "ANALYZE t;",
                           "appdb")
                      .ok());
      password_file_ = absl::StrCat(dir_, "/app.pw");
      ASSERT_TRUE(WriteFileAtomic(password_file_, kAppPassword, 0600).ok());
      pg_ = std::move(pg);
    }
    auto loop = net::EventLoop::Create(RealClock::Get());
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  void TearDown() override {
    // Every callback ran exactly once, and nothing arrives late.
    RunLoopFor(absl::Milliseconds(100));
    est_.reset();
    loop_.reset();
  }

  RowEstimatorOptions Options() {
    auto addr = net::SockAddr::Parse(kAddress, pg_->port());
    EXPECT_TRUE(addr.ok());
    return {.upstream = *addr,
            .user = "app",
            .database = "appdb",
            .password_ref = absl::StrCat("file:", password_file_),
            .sslmode = "prefer",
            // The throwaway server is plain TCP on loopback.
            .allow_unverified_upstream = true,
            .tls = nullptr};
  }

  void MakeEstimator(RowEstimatorOptions options) {
    auto est = RowEstimator::Create(std::move(options), loop_.get());
    ASSERT_TRUE(est.ok()) << est.status();
    est_ = *std::move(est);
  }

  void RunLoopFor(absl::Duration d) {
    if (loop_ == nullptr) return;
    net::EventLoop::TimerId t = loop_->RunAfter(d, [this] { loop_->Stop(); });
    ASSERT_TRUE(loop_->Run().ok());
    loop_->Cancel(t);
  }

  // Queues a request whose result lands in `*out` (checked: once, on this thread).
  void Start(EstimateRequest req, std::optional<absl::StatusOr<int64_t>>* out) {
    ++outstanding_;
    est_->Estimate(std::move(req),
                   [this, out, tid = std::this_thread::get_id()](absl::StatusOr<int64_t> rows) {
                     EXPECT_EQ(std::this_thread::get_id(), tid)
                         << "done must run on the loop thread";
                     EXPECT_FALSE(out->has_value()) << "done called twice";
                     *out = std::move(rows);
                     if (--outstanding_ == 0) loop_->Stop();
                   });
  }

  // Runs the loop until every started request has its answer (or 60 s).
  void AwaitAll() {
    net::EventLoop::TimerId t = loop_->RunAfter(absl::Seconds(60), [this] { loop_->Stop(); });
    if (outstanding_ > 0) {
      ASSERT_TRUE(loop_->Run().ok());
    }
    loop_->Cancel(t);
    ASSERT_EQ(outstanding_, 0) << "callbacks missing after 60 s";
  }

  absl::StatusOr<int64_t> Estimate(EstimateRequest req) {
    std::optional<absl::StatusOr<int64_t>> out;
    Start(std::move(req), &out);
    AwaitAll();
    if (!out.has_value()) return absl::DeadlineExceededError("no answer");
    return *out;
  }

  std::string AppPsql(const std::string& sql) {
    auto r = pg_->Psql(sql, "appdb");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : "";
  }

  // Polls `sql` until it prints `want` (backends of earlier tests take a moment to exit).
  std::string AppPsqlEventually(const std::string& sql, const std::string& want) {
    std::string got;
    for (int i = 0; i < 100; ++i) {
      got = AppPsql(sql);
      if (got == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return got;
  }

  // The estimator's backend pid, through the planner: LIMIT folds the stable
  // pg_backend_pid() to estimate the Limit node's rows.
  int64_t EstimatorPid() {
    auto r =
        Estimate({.sql = "SELECT * FROM generate_series(1, 100000000) LIMIT pg_backend_pid()"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : -1;
  }

  static std::unique_ptr<PostgresServer> pg_;
  static std::string dir_;
  static std::string password_file_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<RowEstimator> est_;
  int outstanding_ = 0;
};

std::unique_ptr<PostgresServer> RowEstimatorTest::pg_;
std::string RowEstimatorTest::dir_;
std::string RowEstimatorTest::password_file_;

TEST_F(RowEstimatorTest, EstimatesWholeTableAndParameterisedLookup) {
  MakeEstimator(Options());
  auto all = Estimate({.sql = "SELECT * FROM t"});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, 10000);

  // Text parameter, type inferred by the server.
  auto one = Estimate({.sql = "SELECT * FROM t WHERE id = $1", .params = {std::string("42")}});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
  // Binary int4 with its type OID given, as a driver would send it.
  auto bin = Estimate({.sql = "SELECT * FROM t WHERE id = $1",
                       .param_type_oids = {23},
                       .param_formats = {1},
                       .params = {std::string("\0\0\0\x2a", 4)}});
  ASSERT_TRUE(bin.ok()) << bin.status();
  EXPECT_EQ(*bin, 1);
  // The estimate uses the value: v has 100 distinct values of 100 rows each.
  auto some = Estimate({.sql = "SELECT * FROM t WHERE v = $1 AND id > $2",
                        .params = {std::string("7"), std::string("0")}});
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_NEAR(static_cast<double>(*some), 100, 30);
  // NULL parameter: nothing equals NULL.
  auto none = Estimate({.sql = "SELECT * FROM t WHERE id = $1", .params = {std::nullopt}});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_LE(*none, 1);
}

TEST_F(RowEstimatorTest, DataModifyingStatementsAreEstimatedNotExecuted) {
  MakeEstimator(Options());
  auto del = Estimate({.sql = "DELETE FROM t"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(*del, 10000);
  auto upd =
      Estimate({.sql = "UPDATE t SET v = v + 1 WHERE id <= $1", .params = {std::string("250")}});
  ASSERT_TRUE(upd.ok()) << upd.status();
  EXPECT_NEAR(static_cast<double>(*upd), 250, 50);
  auto ins = Estimate({.sql = "INSERT INTO t SELECT g + 20000, 0 FROM generate_series(1, 500) g"});
  ASSERT_TRUE(ins.ok()) << ins.status();
  EXPECT_EQ(*ins, 500);
  auto ret = Estimate({.sql = "DELETE FROM t WHERE id > 9000 RETURNING id"});
  ASSERT_TRUE(ret.ok()) << ret.status();
  EXPECT_NEAR(static_cast<double>(*ret), 1000, 100);
  auto seq = Estimate({.sql = "SELECT nextval('s')"});
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 1);

  EXPECT_EQ(AppPsql("SELECT count(*), sum(v) FROM t"), "10000|495000\n");
  EXPECT_EQ(AppPsql("SELECT last_value, is_called FROM s"), "1|f\n");
}

TEST_F(RowEstimatorTest, SessionIsReadOnlyWithStatementTimeoutAndItsOwnName) {
  RowEstimatorOptions o = Options();
  o.query_timeout = absl::Seconds(3);
  MakeEstimator(std::move(o));
  // The planner folds stable functions in LIMIT to estimate it: the Limit node's rows
  // reveal the session's settings without executing anything.
  auto probe = [&](const std::string& setting, const std::string& value) {
    auto r = Estimate({.sql = absl::StrCat("SELECT * FROM t LIMIT CASE WHEN current_setting('",
                                           setting, "') = '", value, "' THEN 7 ELSE 8 END")});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : -1;
  };
  EXPECT_EQ(probe("transaction_read_only", "on"), 7);
  EXPECT_EQ(probe("default_transaction_read_only", "on"), 7);
  EXPECT_EQ(probe("statement_timeout", "3s"), 7);
  EXPECT_EQ(probe("application_name", "interlockd-estimator"), 7);
  EXPECT_EQ(probe("client_encoding", "UTF8"), 7);
  // One connection, reused, visible under its name.
  int64_t pid = EstimatorPid();
  EXPECT_EQ(AppPsqlEventually("SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
                              "WHERE application_name = 'interlockd-estimator' AND usename = 'app'",
                              absl::StrCat(pid, "\n")),
            absl::StrCat(pid, "\n"));
}

TEST_F(RowEstimatorTest, RejectedStatementsAreInvalidArgumentWithSqlstate) {
  MakeEstimator(Options());
  int64_t pid = EstimatorPid();
  ASSERT_GT(pid, 0);
  auto syntax = Estimate({.sql = "SELEC * FROM t"});
  EXPECT_EQ(syntax.status().code(), absl::StatusCode::kInvalidArgument) << syntax.status();
  EXPECT_THAT(syntax.status().message(), AllOf(HasSubstr("42601"), HasSubstr("syntax error")));
  auto multi = Estimate({.sql = "SELECT 1; SELECT 2"});
  EXPECT_EQ(multi.status().code(), absl::StatusCode::kInvalidArgument) << multi.status();
  EXPECT_THAT(multi.status().message(), HasSubstr("42601"));
  auto missing = Estimate({.sql = "SELECT * FROM nosuchtable"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("42P01"));
  auto utility = Estimate({.sql = "VACUUM t"});
  EXPECT_EQ(utility.status().code(), absl::StatusCode::kInvalidArgument);
  auto arity = Estimate({.sql = "SELECT * FROM t WHERE id = $1"});  // no parameter bound
  EXPECT_EQ(arity.status().code(), absl::StatusCode::kInvalidArgument) << arity.status();
  auto formats =
      Estimate({.sql = "SELECT $1::int", .param_formats = {0, 0}, .params = {std::string("1")}});
  EXPECT_EQ(formats.status().code(), absl::StatusCode::kInvalidArgument) << formats.status();
  auto nul = Estimate({.sql = std::string("SELECT 1\0; DROP TABLE t", 24)});
  EXPECT_EQ(nul.status().code(), absl::StatusCode::kInvalidArgument) << nul.status();
  // The connection survives all of that.
  auto ok = Estimate({.sql = "SELECT * FROM t"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, 10000);
  EXPECT_EQ(EstimatorPid(), pid);
}

TEST_F(RowEstimatorTest, RequestsWaitingTogetherAreSentTogetherAndAnsweredEachAsItself) {
  // Queued back to back, the requests reach the worker while it connects, so they go out
  // as batches (one write, each with its own Sync): a rejected statement, one that cannot
  // be sent and a catalog query among them fail or answer alone, in order.
  MakeEstimator(Options());
  const int64_t pid = EstimatorPid();
  ASSERT_GT(pid, 0);
  std::vector<std::optional<absl::StatusOr<int64_t>>> out(40);
  std::optional<absl::StatusOr<QueryRows>> rows;
  for (size_t i = 0; i < out.size(); ++i) {
    EstimateRequest r;
    if (i % 10 == 3) r.sql = "SELEC * FROM t";                            // the server rejects it
    else if (i % 10 == 7) r.sql = std::string("SELECT 1\0; DROP TABLE t", 24);  // never sent
    else if (i % 2 == 0) r.sql = "SELECT * FROM t";
    else r = {.sql = "SELECT * FROM t WHERE id < $1", .params = {std::string("100")}};
    Start(std::move(r), &out[i]);
    if (i == 20) {
      ++outstanding_;
      est_->Query({.sql = "SELECT count(*) FROM t"}, [this, &rows](absl::StatusOr<QueryRows> r) {
        rows = std::move(r);
        if (--outstanding_ == 0) loop_->Stop();
      });
    }
  }
  AwaitAll();
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].has_value()) << i;
    const absl::StatusOr<int64_t>& r = *out[i];
    if (i % 10 == 3) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << i << r.status();
      EXPECT_THAT(r.status().message(), HasSubstr("42601")) << i;
    } else if (i % 10 == 7) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << i << r.status();
      EXPECT_THAT(r.status().message(), HasSubstr("NUL")) << i;
    } else if (i % 2 == 0) {
      ASSERT_TRUE(r.ok()) << i << r.status();
      EXPECT_EQ(*r, 10000) << i;
    } else {
      ASSERT_TRUE(r.ok()) << i << r.status();
      EXPECT_LT(*r, 1000) << i;
    }
  }
  ASSERT_TRUE(rows.has_value());
  ASSERT_TRUE(rows->ok()) << rows->status();
  ASSERT_EQ((*rows)->size(), 1u);
  EXPECT_EQ((**rows)[0][0], std::optional<std::string>("10000"));
  EXPECT_EQ(EstimatorPid(), pid);  // one connection throughout
}

TEST_F(RowEstimatorTest, DeepPlansFromTheServer) {
  MakeEstimator(Options());
  // 25 self-joins on the primary key: a plan far deeper than protobuf's JSON nesting limit.
  std::string sql = "SELECT * FROM t t0";
  for (int i = 1; i <= 25; ++i) sql += absl::StrCat(" JOIN t t", i, " USING (id)");
  auto r = Estimate({.sql = sql});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(static_cast<double>(*r), 10000, 1000);
}

// Issue 12 item 8: the estimator's own login obeys the same rule as sessions.
TEST_F(RowEstimatorTest, UnverifiedServerIsNotSentThePassword) {
  RowEstimatorOptions o = Options();
  o.allow_unverified_upstream = false;
  MakeEstimator(std::move(o));
  auto r = Estimate({.sql = "SELECT * FROM t"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("upstream_unverified"), Not(HasSubstr(kAppPassword))));
}

TEST_F(RowEstimatorTest, WrongPasswordIsUnavailableAndNeverShowsThePassword) {
  const std::string wrong = "wrong-Pa55word-for-estimator";
  std::string file = absl::StrCat(dir_, "/wrong.pw");
  ASSERT_TRUE(WriteFileAtomic(file, wrong, 0600).ok());
  RowEstimatorOptions o = Options();
  o.password_ref = absl::StrCat("file:", file);
  MakeEstimator(std::move(o));
  auto r = Estimate({.sql = "SELECT * FROM t"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr(absl::StrCat(kAddress, ":")), HasSubstr("log in as app"),
                    HasSubstr("28P01"), HasSubstr("password authentication failed"),
                    Not(HasSubstr(wrong)), Not(HasSubstr(kAppPassword))));

  // A credential that cannot be read names the file, and is UNAVAILABLE too.
  RowEstimatorOptions missing = Options();
  missing.password_ref = absl::StrCat("file:", dir_, "/nosuch.pw");
  MakeEstimator(std::move(missing));
  auto m = Estimate({.sql = "SELECT 1"});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr("nosuch.pw"));
}

TEST_F(RowEstimatorTest, ReconnectsAfterTheServerRestarts) {
  MakeEstimator(Options());
  int64_t before = EstimatorPid();
  ASSERT_GT(before, 0);

  // Restarted behind an idle connection: the dead connection is noticed and the request
  // retried once on a fresh one, invisibly.
  pg_->Stop();
  ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
  auto after_restart = Estimate({.sql = "SELECT * FROM t"});
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  EXPECT_EQ(*after_restart, 10000);
  EXPECT_NE(EstimatorPid(), before);

  // Down: UNAVAILABLE, and every request waiting at that moment fails with it.
  pg_->Stop();
  std::optional<absl::StatusOr<int64_t>> a, b, c;
  Start({.sql = "SELECT 1"}, &a);
  Start({.sql = "SELECT 2"}, &b);
  Start({.sql = "SELECT 3"}, &c);
  AwaitAll();
  for (auto* r : {&a, &b, &c}) {
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->status().code(), absl::StatusCode::kUnavailable) << (*r)->status();
    EXPECT_THAT((*r)->status().message(), HasSubstr(kAddress));
  }

  // Back: the next request connects again.
  ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
  auto back = Estimate({.sql = "SELECT * FROM t WHERE id = $1", .params = {std::string("5")}});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, 1);
}

TEST_F(RowEstimatorTest, QueueLimitIsResourceExhausted) {
  RowEstimatorOptions o = Options();
  o.max_queue = 2;
  MakeEstimator(std::move(o));
  // Queued back to back: the worker, still connecting, takes at most the first one off
  // the queue meanwhile, so most of the rest find two requests waiting.
  std::vector<std::optional<absl::StatusOr<int64_t>>> out(20);
  for (auto& r : out) Start({.sql = "SELECT * FROM t"}, &r);
  AwaitAll();
  int ok = 0, exhausted = 0;
  for (auto& r : out) {
    ASSERT_TRUE(r.has_value());
    if (r->ok()) {
      EXPECT_EQ(**r, 10000);
      ++ok;
    } else {
      EXPECT_EQ(r->status().code(), absl::StatusCode::kResourceExhausted) << r->status();
      EXPECT_THAT(r->status().message(), HasSubstr("2 requests already waiting"));
      ++exhausted;
    }
  }
  EXPECT_GE(ok, 2);
  EXPECT_GE(exhausted, 10);
  EXPECT_EQ(ok + exhausted, 20);
}

TEST_F(RowEstimatorTest, PlannerWaitingOnALockTimesOutAndDestructionInterruptsIt) {
  // A session holds an exclusive lock on `locked`: planning anything on it waits.
  struct Locker {
    PostgresServer* pg;
    pid_t pid;
    ~Locker() {
      (void)pg->Psql(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()");
      ::interlock::testing::KillProcess(pid);
    }
  } locker{pg_.get(),
           ::interlock::testing::Spawn(
               {"/usr/bin/psql", "-h", pg_->socket_dir(), "-p", absl::StrCat(pg_->port()), "-U",
                "postgres", "-d", "appdb", "-Atqc",
                "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT"},
               absl::StrCat(dir_, "/locker.log"))};
  bool locked = false;
  for (int i = 0; i < 100 && !locked; ++i) {
    locked =
        AppPsql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'locked' AND l.mode = 'AccessExclusiveLock' AND l.granted") == "1\n";
    if (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(locked) << "the locking session did not start";

  // statement_timeout (= query_timeout) ends the wait: UNAVAILABLE, not the statement's fault.
  RowEstimatorOptions o = Options();
  o.query_timeout = absl::Seconds(1);
  MakeEstimator(std::move(o));
  absl::Duration t0 = RealClock::Get().Monotonic();
  auto timed_out = Estimate({.sql = "DELETE FROM locked"});
  absl::Duration took = RealClock::Get().Monotonic() - t0;
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kUnavailable) << timed_out.status();
  EXPECT_THAT(timed_out.status().message(), HasSubstr("57014"));
  EXPECT_LT(took, absl::Seconds(5));
  // The connection is still good after a server-side timeout.
  auto fine = Estimate({.sql = "SELECT * FROM t"});
  EXPECT_TRUE(fine.ok()) << fine.status();

  // Destroyed with one request waiting on the lock and more queued behind it: the worker
  // stops promptly and no callback ever runs.
  RowEstimatorOptions slow = Options();
  slow.query_timeout = absl::Seconds(30);
  MakeEstimator(std::move(slow));
  int called = 0;
  est_->Estimate({.sql = "SELECT * FROM locked"}, [&](absl::StatusOr<int64_t>) { ++called; });
  for (int i = 0; i < 20; ++i) {
    est_->Estimate({.sql = "SELECT * FROM t"}, [&](absl::StatusOr<int64_t>) { ++called; });
  }
  RunLoopFor(absl::Milliseconds(500));  // connected, and blocked in the planner
  EXPECT_EQ(called, 0);
  t0 = RealClock::Get().Monotonic();
  est_.reset();
  EXPECT_LT(RealClock::Get().Monotonic() - t0, absl::Seconds(2));
  RunLoopFor(absl::Milliseconds(200));
  EXPECT_EQ(called, 0);
}

TEST_F(RowEstimatorTest, DestroyingRightAfterQueueingNeverCallsBack) {
  int called = 0;
  for (int round = 0; round < 5; ++round) {
    MakeEstimator(Options());
    for (int i = 0; i < 50; ++i) {
      est_->Estimate({.sql = "SELECT * FROM t WHERE id = $1", .params = {std::to_string(i)}},
                     [&](absl::StatusOr<int64_t>) { ++called; });
    }
    // Let the worker finish (and post) some of them, without running the loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * round));
    est_.reset();
  }
  RunLoopFor(absl::Milliseconds(300));  // results posted before destruction are dropped
  EXPECT_EQ(called, 0);
}

TEST_F(RowEstimatorTest, CreateRejectsBadOptions) {
  RowEstimatorOptions o = Options();
  o.sslmode = "sometimes";
  EXPECT_EQ(RowEstimator::Create(o, loop_.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.sslmode = "verify-full";  // without a TLS context
  EXPECT_EQ(RowEstimator::Create(o, loop_.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.password_ref = "hunter2";
  auto bad_ref = RowEstimator::Create(o, loop_.get());
  EXPECT_EQ(bad_ref.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_ref.status().message(), Not(HasSubstr("hunter2")));
  o = Options();
  o.query_timeout = absl::ZeroDuration();
  EXPECT_EQ(RowEstimator::Create(o, loop_.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RowEstimatorTest, TlsPerSslmode) {
  std::string certs = absl::StrCat(dir_, "/certs");
  ::mkdir(certs.c_str(), 0755);
  auto ca = TestCa::Create(certs);
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto leaf = (*ca)->Issue("server", {.ips = {kAddress}});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  PostgresServer tls_pg(
      {.address = kAddress, .ssl_cert_file = leaf->cert_file, .ssl_key_file = leaf->key_file});
  ASSERT_TRUE(tls_pg.Start().ok()) << tls_pg.Log();
  ASSERT_TRUE(
      tls_pg.Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
  auto made = tls_pg.Psql(
      "CREATE TABLE t2 AS SELECT g FROM generate_series(1, 300) g;"
      "ANALYZE t2; GRANT SELECT ON t2 TO app");
  ASSERT_TRUE(made.ok()) << made.status();
  auto ctx = net::TlsClientContext::Create(
      {.mode = net::SslMode::kVerifyFull, .ca_file = (*ca)->cert_file(), .server_name = kAddress});
  ASSERT_TRUE(ctx.ok()) << ctx.status();

  RowEstimatorOptions o = Options();
  o.upstream = *net::SockAddr::Parse(kAddress, tls_pg.port());
  o.database = "postgres";
  o.sslmode = "verify-full";
  o.tls = ctx->get();
  MakeEstimator(o);
  auto r = Estimate({.sql = "SELECT * FROM t2"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 300);
  auto ssl = tls_pg.Psql(
      "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
      "WHERE a.application_name = 'interlockd-estimator'");
  ASSERT_TRUE(ssl.ok()) << ssl.status();
  EXPECT_EQ(*ssl, "t\n");
  // A certificate for another name fails verify-full.
  auto other = net::TlsClientContext::Create({.mode = net::SslMode::kVerifyFull,
                                              .ca_file = (*ca)->cert_file(),
                                              .server_name = "other.test"});
  ASSERT_TRUE(other.ok()) << other.status();
  o.tls = other->get();
  MakeEstimator(o);
  auto bad = Estimate({.sql = "SELECT * FROM t2"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable) << bad.status();
  EXPECT_THAT(bad.status().message(), HasSubstr("verify-full"));
  est_.reset();

  // A plaintext-only server with sslmode require: refused, not downgraded.
  RowEstimatorOptions plain = Options();
  plain.sslmode = "require";
  auto req_ctx = net::TlsClientContext::Create({.mode = net::SslMode::kRequire});
  ASSERT_TRUE(req_ctx.ok()) << req_ctx.status();
  plain.tls = req_ctx->get();
  MakeEstimator(plain);
  auto refused = Estimate({.sql = "SELECT 1"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("does not offer TLS"));
  // prefer falls back to plaintext with the same server.
  plain.sslmode = "prefer";
  MakeEstimator(plain);
  auto fallback = Estimate({.sql = "SELECT * FROM t"});
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ(*fallback, 10000);
  est_.reset();  // before tls_pg and the contexts go away
}

}  // namespace
}  // namespace interlock::proxy::pg
