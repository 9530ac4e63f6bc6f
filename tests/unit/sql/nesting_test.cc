// The depth guard in front of libpg_query's unguarded recursion: adversarially deep statements
// are parse errors (never a crash), statements at the limit fit a small thread stack, and wide
// but shallow statements (long OR chains, IN lists, VALUES, CASE arms) are not rejected.
#include "userspace/sql/nesting.h"

#include <pthread.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/sql/classify.h"
#include "userspace/sql/parser.h"

namespace interlock::sql {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

std::string Repeat(absl::string_view s, int n) {
  std::string out;
  out.reserve(s.size() * n);
  for (int i = 0; i < n; ++i) out.append(s.data(), s.size());
  return out;
}

int Estimate(const std::string& sql) {
  absl::StatusOr<ScanOutcome> scanned = ScanSql(sql);
  EXPECT_TRUE(scanned.ok()) << scanned.status();
  if (!scanned.ok() || std::holds_alternative<SyntaxError>(*scanned)) return -1;
  return EstimateNestingDepth(std::get<std::vector<pg_query::Token>>(*scanned));
}

// Ways to nest deeply: left-deep operator / set-operation / join chains the grammar builds
// without growing its own stack, and bracketed nesting up to the grammar's stack limit.
struct Pattern {
  const char* name;
  std::function<std::string(int)> make;
};

const std::vector<Pattern>& DeepPatterns() {
  static const auto* patterns = new std::vector<Pattern>{
      {"plus", [](int n) { return "SELECT 1" + Repeat("+1", n); }},
      {"concat", [](int n) { return "SELECT 'a'" + Repeat(" || 'b'", n); }},
      {"json_arrow", [](int n) { return "SELECT a" + Repeat("->'k'", n); }},
      {"cast", [](int n) { return "SELECT 1" + Repeat("::int", n); }},
      {"collate", [](int n) { return "SELECT 'a'" + Repeat(" COLLATE \"C\"", n); }},
      {"at_time_zone", [](int n) { return "SELECT now()" + Repeat(" AT TIME ZONE 'UTC'", n); }},
      {"union", [](int n) { return "SELECT 1" + Repeat(" UNION SELECT 1", n); }},
      {"union_with_boolean_where",
       [](int n) { return "SELECT 1, 2" + Repeat(" UNION SELECT 1, 2 WHERE a AND b", n); }},
      {"join", [](int n) { return "SELECT * FROM t0" + Repeat(" CROSS JOIN t", n); }},
      {"not", [](int n) { return "SELECT " + Repeat("NOT ", n) + "a"; }},
      {"unary_minus", [](int n) { return "SELECT " + Repeat("- ", n) + "a"; }},
      {"scalar_subquery",
       [](int n) { return "SELECT " + Repeat("(SELECT ", n) + "1" + Repeat(")", n); }},
      {"derived_table",
       [](int n) {
         return "SELECT * FROM " + Repeat("(SELECT * FROM ", n) + "t" + Repeat(") s", n);
       }},
      {"function_args", [](int n) { return "SELECT " + Repeat("f(", n) + "1" + Repeat(")", n); }},
      {"array", [](int n) { return "SELECT " + Repeat("ARRAY[", n) + "1" + Repeat("]", n); }},
      {"case",
       [](int n) {
         return "SELECT " + Repeat("CASE WHEN a AND b THEN ", n) + "1" + Repeat("+1 END", n);
       }},
      {"boolean_parens",
       [](int n) {
         return "SELECT 1 WHERE " + Repeat("(a OR (b AND ", n) + "c" + Repeat("))", n);
       }},
      {"in_subquery",
       [](int n) {
         return "SELECT 1 WHERE " + Repeat("a IN (SELECT 1 WHERE ", n) + "true" + Repeat(")", n);
       }},
      {"nested_with",
       [](int n) {
         return Repeat("WITH c AS (", n) + "SELECT 1" + Repeat(") SELECT * FROM c", n);
       }},
      {"set_operation_parens",
       [](int n) { return Repeat("(", n) + "SELECT 1" + Repeat(") UNION SELECT 1", n); }},
      {"between_not", [](int n) { return "SELECT 1 WHERE a" + Repeat(" BETWEEN 1 AND NOT b", n); }},
      {"distinct_not",
       [](int n) { return "SELECT 1 WHERE a" + Repeat(" IS DISTINCT FROM NOT b", n); }},
      {"equals_not", [](int n) { return "SELECT 1 WHERE a" + Repeat(" = NOT b", n); }},
      {"begin_atomic",
       [](int n) {
         return Repeat("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; ", n) +
                "SELECT 1;" + Repeat(" END;", n);
       }},
  };
  return *patterns;
}

TEST(EstimateNestingDepth, Basics) {
  EXPECT_EQ(Estimate(""), 0);
  EXPECT_EQ(Estimate("-- only a comment"), 0);
  EXPECT_LE(Estimate("SELECT a, b FROM t WHERE x = 1"), 2);
  // Operator chains grow; boolean operators and commas end them.
  EXPECT_GE(Estimate("SELECT 1" + Repeat("+1", 10)), 10);
  EXPECT_LE(Estimate("SELECT 1 WHERE a = 1 OR a = 2 OR a = 3 OR a = 4 OR a = 5 OR a = 6"), 2);
  // Set operations keep growing across WHERE clauses and boolean operators.
  EXPECT_GE(Estimate("SELECT 1" + Repeat(" UNION SELECT 1 WHERE a AND b", 50)), 50);
  // Brackets and CASE nest; comments and literals are free.
  EXPECT_GE(Estimate("SELECT " + Repeat("(", 20) + "1" + Repeat(")", 20)), 40);
  EXPECT_GE(Estimate("SELECT " + Repeat("CASE WHEN a AND b THEN ", 20) + "1" + Repeat(" END", 20)),
            40);
  EXPECT_LE(Estimate("SELECT 1 /* ((((((((( */ , '(((((((', $$ ((( $$"), 2);
  // Each statement starts afresh.
  EXPECT_LE(Estimate(Repeat("SELECT 1+1+1; ", 1000)), 4);
  // END outside CASE (END TRANSACTION) does not pop anything.
  EXPECT_LE(Estimate("END; SELECT (1)"), 4);
}

TEST(EstimateNestingDepth, WideButShallowStatementsPass) {
  const std::vector<std::string> wide = {
      "SELECT * FROM t WHERE id = 0" + Repeat(" OR id = 1", 20000),
      "SELECT * FROM t WHERE a LIKE 'x'" + Repeat(" AND a BETWEEN 1 AND 2", 20000),
      "SELECT * FROM t WHERE id IN (0" + Repeat(", 1", 100000) + ")",
      "INSERT INTO t VALUES (0, 'a')" + Repeat(", (1, 'b' || 'c')", 20000),
      "SELECT CASE" + Repeat(" WHEN a = 1 THEN 'x' || 'y'", 5000) + " END",
      "SELECT " + Repeat("a + b, ", 5000) + "1 FROM t",
      "CREATE TABLE t (" + Repeat("c int NOT NULL DEFAULT 1 + 2, ", 1000) + "z int)",
  };
  for (const std::string& sql : wide) {
    EXPECT_LE(Estimate(sql), 10) << sql.substr(0, 60);
    absl::StatusOr<v1::SqlClassification> c = Classify(sql);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->parse_error()) << c->error() << " in " << sql.substr(0, 60);
  }
}

// Input far past the limit (about 1 MiB of each pattern) is a parse error: either the guard or
// the grammar's own stack limit ("memory exhausted") refuses it. Without the guard the left-deep
// patterns overflow an 8 MiB stack inside libpg_query.
TEST(NestingGuard, DeepInputIsAParseErrorNotACrash) {
  for (const Pattern& p : DeepPatterns()) {
    std::string sql = p.make(1);
    int n = 1;
    while (sql.size() < (1u << 20)) sql = p.make(n *= 2);
    absl::StatusOr<v1::SqlClassification> c = Classify(sql);
    ASSERT_TRUE(c.ok()) << p.name << ": " << c.status();
    EXPECT_TRUE(c->parse_error()) << p.name;
    EXPECT_THAT(c->error(), AnyOf(HasSubstr("too deeply nested"), HasSubstr("memory exhausted")))
        << p.name;
  }
}

// The largest n for which `fits` holds (fits(1) must hold).
int Largest(const Pattern& p, const std::function<bool(const std::string&)>& fits) {
  int lo = 1, hi = 2;
  while (fits(p.make(hi))) hi *= 2;
  while (lo + 1 < hi) {
    int mid = (lo + hi) / 2;
    (fits(p.make(mid)) ? lo : hi) = mid;
  }
  return lo;
}

size_t TokenCount(const std::string& sql) {
  absl::StatusOr<ScanOutcome> scanned = ScanSql(sql);
  if (!scanned.ok() || std::holds_alternative<SyntaxError>(*scanned)) return 0;
  return std::get<std::vector<pg_query::Token>>(*scanned).size();
}

struct ThreadRun {
  std::string sql;
  absl::StatusOr<v1::SqlClassification> result = absl::UnknownError("not run");
};

void* RunClassify(void* arg) {
  auto* run = static_cast<ThreadRun*>(arg);
  run->result = Classify(run->sql);
  return nullptr;
}

// Classifies `sql` on a thread with a `stack_bytes` stack.
absl::StatusOr<v1::SqlClassification> ClassifyOnStack(std::string sql, size_t stack_bytes) {
  ThreadRun run{.sql = std::move(sql)};
  pthread_attr_t attr;
  EXPECT_EQ(pthread_attr_init(&attr), 0);
  EXPECT_EQ(pthread_attr_setstacksize(&attr, stack_bytes), 0);
  pthread_t thread;
  EXPECT_EQ(pthread_create(&thread, &attr, RunClassify, &run), 0);
  EXPECT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
  return run.result;
}

void ExpectParsedOrGrammarLimit(const absl::StatusOr<v1::SqlClassification>& c, const char* name) {
  ASSERT_TRUE(c.ok()) << name << ": " << c.status();
  // A few patterns reach the grammar's own stack limit first; that is a parse error too.
  if (c->parse_error()) {
    EXPECT_THAT(c->error(), HasSubstr("memory exhausted")) << name;
  } else {
    EXPECT_EQ(c->statements_size(), 1) << name;
  }
}

constexpr size_t kSmallStack = size_t{256} << 10;

// Statements right at the limit need little of the caller's stack: they are parsed on
// RunOnParserStack's thread.
TEST(NestingGuard, StatementsAtTheLimitNeedLittleCallerStack) {
  for (const Pattern& p : DeepPatterns()) {
    std::string sql =
        p.make(Largest(p, [](const std::string& s) { return Estimate(s) <= kMaxNestingDepth; }));
    ExpectParsedOrGrammarLimit(ClassifyOnStack(std::move(sql), kSmallStack), p.name);
  }
}

// Short strings are parsed on the caller's thread; the deepest of each shape (at most 256
// tokens) still fits a small stack.
TEST(NestingGuard, ShortDeepStatementsFitASmallStack) {
  for (const Pattern& p : DeepPatterns()) {
    std::string sql = p.make(Largest(p, [](const std::string& s) { return TokenCount(s) <= 256; }));
    ASSERT_GT(TokenCount(sql), 100u) << p.name;
    ExpectParsedOrGrammarLimit(ClassifyOnStack(std::move(sql), kSmallStack), p.name);
  }
}

}  // namespace
}  // namespace interlock::sql
