// The libpg_query wrapper: typed results, syntax errors as values, scoped lexer settings and
// thread safety.
#include "userspace/sql/parser.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/sql/classify.h"

namespace interlock::sql {
namespace {

using ::testing::ElementsAre;

TEST(ParseSql, ReturnsTypedTree) {
  absl::StatusOr<ParseOutcome> parsed = ParseSql("SELECT a FROM t; DELETE FROM u");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto* parse_tree = std::get_if<ParseTree>(&*parsed);
  ASSERT_NE(parse_tree, nullptr);
  const pg_query::ParseResult* tree = &parse_tree->tree();
  ASSERT_EQ(tree->stmts_size(), 2);
  EXPECT_TRUE(tree->stmts(0).stmt().has_select_stmt());
  ASSERT_TRUE(tree->stmts(1).stmt().has_delete_stmt());
  EXPECT_EQ(tree->stmts(1).stmt().delete_stmt().relation().relname(), "u");
}

TEST(ParseSql, SyntaxErrorIsAValue) {
  absl::StatusOr<ParseOutcome> parsed = ParseSql("SELECT 1 FROM FROM");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto* error = std::get_if<SyntaxError>(&*parsed);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->message, "syntax error at or near \"FROM\"");
  EXPECT_EQ(error->position, 15);
}

TEST(ScanSql, TokensIncludeComments) {
  absl::StatusOr<ScanOutcome> scanned = ScanSql("SELECT /* c */ 1; -- x");
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_THAT(std::get<std::vector<pg_query::Token>>(*scanned),
              ElementsAre(pg_query::SELECT, pg_query::C_COMMENT, pg_query::ICONST,
                          pg_query::ASCII_59, pg_query::SQL_COMMENT));
  absl::StatusOr<ScanOutcome> bad = ScanSql("SELECT 'open");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_TRUE(std::holds_alternative<SyntaxError>(*bad));
}

TEST(FingerprintSql, IsHex) {
  absl::StatusOr<FingerprintOutcome> fp = FingerprintSql("SELECT 1");
  ASSERT_TRUE(fp.ok()) << fp.status();
  EXPECT_EQ(std::get<std::string>(*fp).size(), 16u);
}

TEST(ScopedStandardConformingStrings, RestoresOnExit) {
  const std::string sql = "SELECT 'a\\' , 'b'";  // two literals when on, one open one when off
  auto literals = [&] {
    absl::StatusOr<ScanOutcome> scanned = ScanSql(sql);
    EXPECT_TRUE(scanned.ok());
    return std::holds_alternative<SyntaxError>(*scanned);
  };
  EXPECT_FALSE(literals());
  {
    ScopedStandardConformingStrings off(false);
    EXPECT_TRUE(literals());  // unterminated: the second quote was escaped
    {
      ScopedStandardConformingStrings on(true);
      EXPECT_FALSE(literals());
    }
    EXPECT_TRUE(literals());
  }
  EXPECT_FALSE(literals());
}

// libpg_query keeps per-thread parser state; concurrent callers must not disturb each other.
TEST(Classify, ConcurrentCallersAgree) {
  const std::vector<std::string> sqls = {
      "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
      "SELECT 'a\\' , ' ; DELETE FROM t; -- '",
      "COPY (SELECT * FROM x) TO STDOUT",
      "SELEC 1",
  };
  std::vector<std::string> expected;
  for (const std::string& sql : sqls) {
    absl::StatusOr<v1::SqlClassification> c = Classify(sql);
    ASSERT_TRUE(c.ok());
    expected.push_back(c->SerializeAsString());
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads run with standard_conforming_strings off, which must not leak.
      SessionSettings off{.standard_conforming_strings = false};
      for (int i = 0; i < 200; ++i) {
        size_t k = (i + t) % sqls.size();
        if (t % 2 == 1) (void)Classify(sqls[k], off);
        absl::StatusOr<v1::SqlClassification> c = Classify(sqls[k]);
        if (!c.ok() || c->SerializeAsString() != expected[k]) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ElementsAre(0, 0, 0, 0));
}

}  // namespace
}  // namespace interlock::sql
