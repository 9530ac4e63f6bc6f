// sql::DeriveOutputColumns through Classify: for each result column, where its values come
// from. A source missing here is a masking bypass (`reverse(ssn)` unmasked); the cases are
// the spellings an agent would try to carry a masked column out through an expression.
#include "userspace/sql/derivation.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/sql/classify.h"

namespace interlock::sql {
namespace {

// "shape:source,source" per output column; shapes C(olumn), D(erived), N(on-revealing),
// S(tar); sources "schema.table.column" with empty parts kept ("" schema -> ".t.c").
std::vector<std::string> Derive(const std::string& sql) {
  auto c = Classify(sql);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok() || c->statements().empty()) return {"<" + (c.ok() ? c->error() : std::string("status")) + ">"};
  std::vector<std::string> out;
  for (const v1::OutputColumn& col : c->statements(c->statements_size() - 1).output_columns()) {
    std::vector<std::string> sources;
    for (const v1::SourceColumn& s : col.sources()) sources.push_back(absl::StrCat(s.schema(), ".", s.table(), ".", s.column()));
    const char* shape = col.shape() == v1::OutputColumn::SHAPE_COLUMN        ? "C"
                        : col.shape() == v1::OutputColumn::SHAPE_DERIVED       ? "D"
                        : col.shape() == v1::OutputColumn::SHAPE_NON_REVEALING ? "N"
                                                                               : "S";
    out.push_back(absl::StrCat(shape, ":", absl::StrJoin(sources, ",")));
  }
  return out;
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(Derivation, PlainAndAliasedColumns) {
  EXPECT_THAT(Derive("SELECT ssn, c.name AS n FROM customers c"), ElementsAre("C:.customers.ssn", "C:.customers.name"));
  EXPECT_THAT(Derive("SELECT public.customers.ssn FROM public.customers"), ElementsAre("C:public.customers.ssn"));
}

TEST(Derivation, ExpressionsOverAMaskedColumnAreDerivedFromIt) {
  for (const char* sql : {"SELECT reverse(ssn) FROM customers", "SELECT translate(ssn, '-', '') FROM customers",
                          "SELECT encode(convert_to(ssn, 'UTF8'), 'hex') FROM customers",
                          "SELECT substr(ssn, 1, 3) FROM customers", "SELECT 'x' || ssn FROM customers",
                          "SELECT ssn::bytea FROM customers", "SELECT ARRAY[ssn] FROM customers",
                          "SELECT row(ssn) FROM customers", "SELECT string_agg(ssn, ',') FROM customers",
                          "SELECT coalesce(NULL, ssn) FROM customers", "SELECT (ssn) COLLATE \"C\" FROM customers"}) {
    EXPECT_THAT(Derive(sql), ElementsAre("D:.customers.ssn")) << sql;
  }
  // Every column the expression reads is a source (the CASE reveals something of id too).
  EXPECT_THAT(Derive("SELECT CASE WHEN id > 0 THEN ssn END FROM customers"), ElementsAre("D:.customers.id,.customers.ssn"));
}

TEST(Derivation, CountsLengthsAndComparisonsRevealNoValue) {
  EXPECT_THAT(Derive("SELECT count(ssn), length(ssn), ssn = 'x', ssn IS NULL FROM customers"),
              ElementsAre("N:.customers.ssn", "N:.customers.ssn", "N:.customers.ssn", "N:.customers.ssn"));
  EXPECT_THAT(Derive("SELECT count(*) FROM customers"), ElementsAre("N:"));
}

TEST(Derivation, AliasesSubqueriesAndCtesDoNotHideTheSource) {
  EXPECT_THAT(Derive("SELECT reverse(x) FROM (SELECT ssn AS x FROM customers) s"), ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("SELECT x FROM (SELECT reverse(ssn) AS x FROM customers) s"), ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("WITH c(a) AS (SELECT ssn FROM customers) SELECT upper(a) FROM c"),
              ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("SELECT * FROM (SELECT reverse(ssn) FROM customers) s"), ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("SELECT s.* FROM (SELECT ssn || '' AS v, id FROM customers) s"),
              ElementsAre("D:.customers.ssn", "C:.customers.id"));
  EXPECT_THAT(Derive("SELECT (SELECT reverse(ssn) FROM customers LIMIT 1)"), ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("WITH RECURSIVE r(v) AS (SELECT ssn FROM customers UNION SELECT reverse(v) FROM r) "
                     "SELECT v FROM r"),
              ElementsAre("D:.customers.ssn"));
}

TEST(Derivation, CorrelatedNamesReachTheOuterTable) {
  // accounts has no ssn: PostgreSQL takes customers' (the outer level's).
  EXPECT_THAT(Derive("SELECT (SELECT reverse(ssn) FROM accounts LIMIT 1) FROM customers"),
              ElementsAre("D:.accounts.ssn,.customers.ssn"));
  EXPECT_THAT(Derive("SELECT (SELECT reverse(c.ssn) FROM accounts a WHERE a.cid = c.id) FROM customers c"),
              ElementsAre("D:.customers.ssn"));
}

TEST(Derivation, WholeRowsAndStars) {
  // `c` is the whole row, or a column named c if customers has one: both, to be safe.
  EXPECT_THAT(Derive("SELECT row_to_json(c) FROM customers c"), ElementsAre("D:.customers.*,.customers.c"));
  EXPECT_THAT(Derive("SELECT to_json(c.*) FROM customers c"), ElementsAre("D:.customers.*"));
  EXPECT_THAT(Derive("SELECT *, reverse(ssn) FROM customers"), ElementsAre("S:.customers.*", "D:.customers.ssn"));
  EXPECT_THAT(Derive("SELECT * FROM customers x(a, b, c)"), ElementsAre("S:.customers.*"));
  EXPECT_THAT(Derive("SELECT reverse(c) FROM customers x(a, b, c)"), ElementsAre("D:.customers.*"));
}

TEST(Derivation, SetOperationsValuesAndFunctionsInFrom) {
  EXPECT_THAT(Derive("SELECT name FROM accounts UNION SELECT ssn FROM customers"),
              ElementsAre("C:.accounts.name,.customers.ssn"));
  EXPECT_THAT(Derive("SELECT * FROM customers UNION ALL SELECT 1, 2"), ElementsAre("S:.customers.*"));
  // An unqualified name may also be a column of the table beside it: both are sources.
  EXPECT_THAT(Derive("SELECT v FROM customers, LATERAL (VALUES (ssn)) t(v)"),
              ElementsAre("C:.customers.ssn,.customers.v"));
  EXPECT_THAT(Derive("SELECT u FROM customers, unnest(ARRAY[ssn]) u"), ElementsAre("D:.customers.ssn,.customers.u"));
  // A qualifier the statement does not define: the relation as written, or a composite
  // column of that name.
  EXPECT_THAT(Derive("SELECT j.ssn FROM customers c JOIN accounts a ON a.cid = c.id"),
              ElementsAre("C:.accounts.j,.customers.j,.j.ssn"));
}

TEST(Derivation, ReturningAndWrappedQueries) {
  EXPECT_THAT(Derive("UPDATE customers SET note = note WHERE id = 1 RETURNING reverse(ssn), id"),
              ElementsAre("D:.customers.ssn", "C:.customers.id"));
  EXPECT_THAT(Derive("DELETE FROM customers c USING accounts a WHERE a.cid = c.id RETURNING c.ssn"),
              ElementsAre("C:.customers.ssn"));
  EXPECT_THAT(Derive("DECLARE k CURSOR FOR SELECT reverse(ssn) FROM customers"), ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("PREPARE p AS SELECT ssn FROM customers WHERE id = $1"), ElementsAre("C:.customers.ssn"));
  EXPECT_THAT(Derive("COPY (SELECT upper(ssn) FROM customers) TO STDOUT"), ElementsAre("D:.customers.ssn"));
  EXPECT_THAT(Derive("COPY customers TO STDOUT"), ElementsAre("S:.customers.*"));
  EXPECT_THAT(Derive("INSERT INTO t VALUES (1)"), IsEmpty());
  EXPECT_THAT(Derive("SET search_path = public"), IsEmpty());
}

TEST(Derivation, UnresolvableNamesAndHugeStatementsFailClosed) {
  EXPECT_THAT(Derive("SELECT reverse(ssn)"), ElementsAre("D:.*.ssn"));
  std::string wide = "SELECT concat(";
  for (int i = 0; i < 100; ++i) absl::StrAppend(&wide, i ? "," : "", "c", i);
  absl::StrAppend(&wide, ") FROM customers");
  EXPECT_THAT(Derive(wide), ElementsAre("D:.*.*"));
}

TEST(Derivation, FunctionsThatRunSqlTextAreFlagged) {
  for (const char* sql : {"SELECT query_to_xml('SELECT ssn FROM customers', true, false, '')",
                          "SELECT pg_catalog.table_to_xml('customers', true, false, '')",
                          "SELECT * FROM dblink('dbname=x', 'SELECT 1') AS t(a int)",
                          "SELECT * FROM ts_stat('SELECT to_tsvector(ssn) FROM customers')"}) {
    auto c = Classify(sql);
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->statements_size(), 1);
    EXPECT_TRUE(c->statements(0).executes_sql_text()) << sql;
  }
  auto c = Classify("SELECT xmlelement(name x, 'y')");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->statements(0).executes_sql_text());
}

}  // namespace
}  // namespace interlock::sql
