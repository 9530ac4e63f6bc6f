// sql::NormalizeLiterals: what an audit event shows of a statement. A literal that survives
// here lands in the SIEM in clear.
#include "userspace/sql/normalize.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace interlock::sql {
namespace {

TEST(NormalizeLiterals, EveryLiteralBecomesAPlaceholder) {
  EXPECT_EQ(NormalizeLiterals("DELETE FROM cards WHERE pan = '4111111111111111'"), "DELETE FROM cards WHERE pan = $1");
  EXPECT_EQ(NormalizeLiterals("SELECT * FROM t WHERE a = 4111111111111111 AND b = 1.5e3 LIMIT 10"),
            "SELECT * FROM t WHERE a = $1 AND b = $2 LIMIT $3");
  EXPECT_EQ(NormalizeLiterals("SELECT E'\\x41', U&'\\0041', B'101', X'ff', $$078-05-1120$$, $t$x$t$"),
            "SELECT $1, $2, $3, $4, $5, $6");
  EXPECT_EQ(NormalizeLiterals("SELECT 'it''s', \"Quoted Ident\" FROM customers"), "SELECT $1, \"Quoted Ident\" FROM customers");
  // Comments are kept as written (they are not literals; an agent hiding data in them is
  // writing it to its own audit trail), identifiers too.
  EXPECT_EQ(NormalizeLiterals("SELECT ssn /* note */ FROM customers -- x"), "SELECT ssn /* note */ FROM customers -- x");
}

TEST(NormalizeLiterals, PlaceholdersContinueAfterTheStatementsOwn) {
  EXPECT_EQ(NormalizeLiterals("SELECT $2, 'a', $1"), "SELECT $2, $3, $1");
}

TEST(NormalizeLiterals, ReadsStringsAsTheSessionWould) {
  // standard_conforming_strings off: a backslash escapes the quote, one literal.
  EXPECT_EQ(NormalizeLiterals("SELECT 'a\\' , 078-05-1120 '", false), "SELECT $1");
}

TEST(NormalizeLiterals, WhatTheLexerCannotReadIsNotShown) {
  EXPECT_EQ(NormalizeLiterals("SELECT '4111111111111111"), "<unreadable statement: 24 bytes>");
  EXPECT_EQ(NormalizeLiterals(std::string("SELECT '1\0'", 11)), "<unreadable statement: 11 bytes>");
  EXPECT_EQ(NormalizeLiterals(""), "");
}

TEST(NormalizeMemo, SameTextAndModeReuseTheLastResultAndNothingElseDoes) {
  NormalizeMemo memo;
  const std::string& a = memo.Normalize("SELECT 'x'", true);
  EXPECT_EQ(a, "SELECT $1");
  EXPECT_EQ(&memo.Normalize("SELECT 'x'", true), &a);
  EXPECT_EQ(memo.Normalize("SELECT 'y', 2", true), "SELECT $1, $2");
  // The mode changes what a backslash means: never answered from the other mode's result.
  const std::string tricky = R"(SELECT 'a\', 'b')";
  EXPECT_EQ(memo.Normalize(tricky, true), NormalizeLiterals(tricky, true));
  EXPECT_EQ(memo.Normalize(tricky, false), NormalizeLiterals(tricky, false));
  EXPECT_NE(NormalizeLiterals(tricky, true), NormalizeLiterals(tricky, false));
  // Too long to keep: still normalized, never remembered.
  const std::string big = "SELECT '" + std::string(NormalizeMemo::kMaxBytes, 'z') + "'";
  EXPECT_EQ(memo.Normalize(big, true), "SELECT $1");
  EXPECT_EQ(memo.Normalize("SELECT 1", true), "SELECT $1");
}

// The guard's shapes and the tracker's normalized texts come from one memo: in any order of
// asking, each answer is the free function's for that text and mode.
TEST(NormalizeMemo, ShapesAndNormalizedTextsInAnyOrderAreTheFreeFunctions) {
  const std::vector<std::string> texts = {
      "SELECT abalance FROM pgbench_accounts WHERE aid = 42",
      "SELECT abalance FROM pgbench_accounts WHERE aid = 7",
      R"(SELECT 'a\', 'b')",
      R"(SELECT E'x\'', $1, 'y')",
      "SELECT 'unterminated",
      std::string("SELECT 1\0", 10),
      "SELECT '" + std::string(NormalizeMemo::kMaxBytes, 'z') + "'",
      "",
  };
  NormalizeMemo memo;
  int asked = 0;
  for (int round = 0; round < 3; ++round) {
    for (const std::string& t : texts) {
      for (bool scs : {true, false, true}) {
        // Shape first (the guard), then normalize (audit, recording), and sometimes reversed.
        if ((asked++ + round) % 2 == 0) {
          EXPECT_EQ(memo.ShapeKey(t, scs), ShapeKey(t, scs)) << t << " scs=" << scs;
          EXPECT_EQ(memo.Normalize(t, scs), NormalizeLiterals(t, scs)) << t << " scs=" << scs;
        } else {
          EXPECT_EQ(memo.Normalize(t, scs), NormalizeLiterals(t, scs)) << t << " scs=" << scs;
          EXPECT_EQ(memo.ShapeKey(t, scs), ShapeKey(t, scs)) << t << " scs=" << scs;
        }
      }
    }
  }
  EXPECT_EQ(ShapeKey(texts[0], true), ShapeKey(texts[1], true));
  EXPECT_NE(ShapeKey(texts[2], true), ShapeKey(texts[2], false));
}

}  // namespace
}  // namespace interlock::sql
