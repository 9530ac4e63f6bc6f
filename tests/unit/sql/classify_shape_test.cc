// sql::ClassifyShaped: when one string's reading holds for every string of its shape (the
// same text but for its literals' values). The differential test takes a corpus with
// literals in every position we could think of, and for each string that is said to hold,
// replaces its literals, one at a time and all at once, by other literals of the same token
// kind chosen to change a reading if anything could ('pg_stats', 'off', 'role', SQL text,
// huge numbers) and checks that Classify of the variant is the original's reading with the
// length moved. A string whose reading a literal decides must not hold.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "userspace/sql/classify.h"
#include "userspace/sql/normalize.h"
#include "userspace/sql/parser.h"

namespace interlock::sql {
namespace {

// Strings that hold: one statement whose literals are all plain constants.
const char* const kHolds[] = {
    "SELECT abalance FROM pgbench_accounts WHERE aid = 482913;",
    "UPDATE pgbench_accounts SET abalance = abalance + -4021 WHERE aid = 482913;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 482913, -4021, CURRENT_TIMESTAMP);",
    "SELECT * FROM customers WHERE ssn = '123-45-6789' AND name <> 'x'",
    "SELECT id FROM t WHERE v IN (1, 2, 3) OR w = 1.5 OR z = -2.5e3",
    "SELECT DATE '2020-01-01', INTERVAL '3 days', TIMESTAMP '2020-01-01 00:00', 'x'::text, CAST('5' AS int)",
    "SELECT B'1010', X'ff', E'a\\nb', $$dollar$$",
    "DELETE FROM customers WHERE id = 7",
    "UPDATE customers SET note = 'hello' WHERE id = 7 RETURNING id",
    "SELECT 'pg_stats'::regclass, 'customers'::regclass",
    "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.country = 'DE' "
    "AND o.total > 100 GROUP BY c.id HAVING sum(o.total) > 1000",
    "SELECT * FROM t WHERE a LIKE 'abc%' ESCAPE '!'",
    "SELECT 1",
    "SELECT now() - interval '30 days' AS since /* a comment */",
    "WITH x AS (SELECT * FROM customers WHERE id > 0) SELECT * FROM x WHERE name = 'y'",
    "SELECT pg_sleep(0.1)",
    "SELECT set_config('application_name', 'x', false)",  // the guard reads set_config's arguments itself
    "SET search_path = 'public'",
    "ALTER SYSTEM SET work_mem = '64MB'",
    "INSERT INTO t VALUES ('a', 1), ('b', 2)",
    "SELECT * FROM t ORDER BY 1",
    "SELECT id FROM t WHERE id = $1 AND name = 'x'",
};

// Strings whose reading a literal may decide, or that are more than one statement.
const char* const kDoesNotHold[] = {
    "SELECT * FROM customers LIMIT 10",                      // LIMIT's count is read
    "SELECT * FROM customers FETCH FIRST 5 ROWS ONLY",       // the same, spelled by the standard
    "COPY customers TO '/tmp/out.csv'",                      // a file name
    "COPY customers FROM PROGRAM 'cat /etc/passwd'",         // a command
    "EXPLAIN (ANALYZE 'off') DELETE FROM customers",         // an option's value
    "FETCH 5 FROM c",                                        // a count kept as a number
    "SELECT 1; SELECT 2",                                    // two statements
    "SELECT U&'d\\0061t\\+000061'",                          // U&'' (UESCAPE may follow)
    "COMMENT ON TABLE customers IS 'x'",                     // a comment's text
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",  // a function body
    "DO 'BEGIN END'",                                        // an anonymous block
    "CREATE ROLE r PASSWORD 'secret'",                       // a password
    "SELECT 1 FROM FROM",                                    // no reading at all
};

// Other literals of the same token kind: the ones most likely to change a reading.
std::vector<std::string> Alternatives(pg_query::Token kind) {
  switch (kind) {
    case pg_query::SCONST:
      return {"'pg_stats'", "'off'", "'role'", "''", "'a''b'", "'SELECT 1; DROP TABLE customers'",
              "'customers'", "E'\\\\x41'", "$q$ DELETE FROM t $q$", "'true'", "'2147483648'"};
    case pg_query::ICONST:
      return {"0", "1", "2147483647", "42"};
    case pg_query::FCONST:
      return {"1.5", "1e10", "99999999999", ".5", "0.0"};
    case pg_query::BCONST:
      return {"B'0'", "b'1111'"};
    case pg_query::XCONST:
      return {"X'00'", "x'deadbeef'"};
    default:
      return {};
  }
}

std::vector<LiteralSpan> Literals(const std::string& text) {
  absl::StatusOr<SpanOutcome> scanned = ScanSqlSpans(text);
  if (!scanned.ok() || !std::holds_alternative<std::vector<TokenSpan>>(*scanned)) return {};
  auto spans = LiteralSpans(text, std::get<std::vector<TokenSpan>>(*scanned));
  return spans.has_value() ? *spans : std::vector<LiteralSpan>{};
}

std::string Replace(const std::string& text, const std::vector<LiteralSpan>& lits,
                    const std::vector<std::string>& with) {
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < lits.size(); ++i) {
    out.append(text, copied, lits[i].start - copied);
    out += with[i].empty() ? text.substr(lits[i].start, lits[i].end - lits[i].start) : with[i];
    copied = lits[i].end;
  }
  out.append(text, copied, std::string::npos);
  return out;
}

// Classify of `variant` must be `original`'s reading with the statement's length moved.
void ExpectSameReading(const std::string& original, const v1::SqlClassification& reading, const std::string& variant) {
  absl::StatusOr<v1::SqlClassification> got = Classify(variant);
  ASSERT_TRUE(got.ok()) << variant;
  v1::SqlClassification expected = reading;
  ASSERT_EQ(expected.statements_size(), 1);
  expected.mutable_statements(0)->set_length(static_cast<uint32_t>(
      expected.statements(0).length() + variant.size() - original.size()));
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, *got)) << "original: " << original << "\nvariant:  " << variant << "\n" << diff;
}

TEST(ClassifyShaped, EachStringSaysWhetherItsReadingHoldsForItsShape) {
  for (const char* sql : kHolds) {
    absl::StatusOr<ShapedClassification> c = ClassifyShaped(sql, SessionSettings());
    ASSERT_TRUE(c.ok()) << sql;
    EXPECT_TRUE(c->holds_for_shape) << sql;
  }
  for (const char* sql : kDoesNotHold) {
    absl::StatusOr<ShapedClassification> c = ClassifyShaped(sql, SessionSettings());
    ASSERT_TRUE(c.ok()) << sql;
    EXPECT_FALSE(c->holds_for_shape) << sql;
  }
}

TEST(ClassifyShaped, EveryVariantOfAHoldingShapeReadsTheSame) {
  int variants = 0;
  for (const char* sql : kHolds) {
    const std::string text = sql;
    absl::StatusOr<ShapedClassification> c = ClassifyShaped(text, SessionSettings());
    ASSERT_TRUE(c.ok() && c->holds_for_shape) << sql;
    const std::vector<LiteralSpan> lits = Literals(text);
    const std::optional<std::string> key = ShapeKey(text, true);
    ASSERT_TRUE(key.has_value()) << sql;
    // One literal at a time, every alternative; then all at once, alternative by alternative.
    for (size_t i = 0; i < lits.size(); ++i) {
      for (const std::string& alt : Alternatives(lits[i].token)) {
        std::vector<std::string> with(lits.size());
        with[i] = alt;
        const std::string variant = Replace(text, lits, with);
        if (ShapeKey(variant, true) != key) continue;  // another kind after all ("1e10" stays FCONST)
        ExpectSameReading(text, c->classification, variant);
        ++variants;
      }
    }
    for (size_t k = 0; k < 11; ++k) {
      std::vector<std::string> with;
      for (const LiteralSpan& l : lits) {
        std::vector<std::string> alts = Alternatives(l.token);
        with.push_back(alts.empty() ? "" : alts[k % alts.size()]);
      }
      const std::string variant = Replace(text, lits, with);
      if (ShapeKey(variant, true) != key) continue;
      ExpectSameReading(text, c->classification, variant);
      ++variants;
    }
  }
  EXPECT_GT(variants, 300);
}

TEST(ShapeKey, SameShapeOnlyForTheSameTextAndLiteralKinds) {
  EXPECT_EQ(ShapeKey("SELECT * FROM t WHERE id = 1", true), ShapeKey("SELECT * FROM t WHERE id = 99", true));
  EXPECT_EQ(ShapeKey("SELECT 'a'", true), ShapeKey("SELECT 'a much longer string'", true));
  EXPECT_NE(ShapeKey("SELECT * FROM t WHERE id = 1", true), ShapeKey("SELECT * FROM t WHERE id = '1'", true));
  EXPECT_NE(ShapeKey("SELECT * FROM t WHERE id = 1", true), ShapeKey("SELECT * FROM u WHERE id = 1", true));
  EXPECT_NE(ShapeKey("SELECT 1", true), ShapeKey("SELECT  1", true));         // whitespace counts
  EXPECT_NE(ShapeKey("SELECT 1", true), ShapeKey("SELECT 1.0", true));        // ICONST, FCONST
  EXPECT_NE(ShapeKey("SELECT 1", true), ShapeKey("SELECT 2147483648", true));  // too big: FCONST
  EXPECT_NE(ShapeKey("SELECT $1", true), ShapeKey("SELECT $2", true));        // parameters are text
  // A backslash ends the string only with standard_conforming_strings off.
  const char* tricky = "SELECT 'a\\' , ' ; DROP TABLE customers; -- '";
  EXPECT_NE(ShapeKey(tricky, true), ShapeKey(tricky, false));
  EXPECT_FALSE(ShapeKey("SELECT 'unterminated", true).has_value());
  EXPECT_FALSE(ShapeKey(std::string("SELECT 1\0", 9), true).has_value());
}

}  // namespace
}  // namespace interlock::sql
