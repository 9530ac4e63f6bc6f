// Output-column derivation: for each column of a statement's result, the table columns its
// values are computed from and whether the computation can reveal them. Masking needs it
// because the server's RowDescription traces only plain column references to their table
// column: `reverse(ssn)`, `ssn::bytea`, `ARRAY[ssn]`, `(SELECT ssn ...)` or a UNION arrive
// with no source, and content detectors recognise none of those spellings.
//
//   std::vector<v1::OutputColumn> cols = sql::DeriveOutputColumns(raw_stmt.stmt());
//   // cols[i].sources(): {schema "", table "customers", column "ssn"} for `reverse(c.ssn)`
//   //                    with `FROM customers c`; shape SHAPE_DERIVED.
//
// How: the select list is resolved against the statement's own scopes, as the server's
// parse analysis would, but without the catalog: FROM items (tables, subqueries, CTEs,
// VALUES, joins, functions) become named entries; a column reference is looked up in the
// innermost scope that has a candidate, then outward (correlated subqueries); a subquery's
// or CTE's column is replaced by that column's own sources, so aliases and nesting do not
// hide anything; a star over a subquery is expanded here, a star over a table is left to
// the server (SHAPE_STAR).
//
// Fail closed where the text alone cannot decide: an unqualified name with several tables
// in scope is attributed to each of them; a table given column aliases (`FROM t AS x(a, b)`)
// attributes every reference to all of its columns ("*"); a name found nowhere is
// attributed to every table ({table "*"}); more than kMaxSourcesPerColumn sources collapse
// to {table "*", column "*"}: "anything". Consumers must treat "*" as matching everything.
//
// Pure; runs on whatever thread the classifier runs on (see classify.h for the stack note).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "interlock/v1/sql.pb.h"
#include "pg_query/pg_query.pb.h"

namespace interlock::sql {

// Past this many distinct sources a column is attributed to "anything" (bounds the work a
// hostile statement can cause: sources grow with references times relations in scope).
inline constexpr size_t kMaxSourcesPerColumn = 64;

// The result columns of `stmt` (a RawStmt's stmt): SELECT (set operations merged
// position-wise), VALUES, INSERT / UPDATE / DELETE ... RETURNING, and the query wrapped by
// EXPLAIN, PREPARE, DECLARE CURSOR, CREATE TABLE AS and COPY (query) TO. Empty for
// statements that return no rows.
std::vector<v1::OutputColumn> DeriveOutputColumns(const pg_query::Node& stmt);

// Functions that run SQL given to them as text, by unqualified lower-case name
// (query_to_xml and its family, cursor_to_xml, table_to_xml, schema_to_xml,
// database_to_xml, ts_stat, dblink and its family).
bool ExecutesSqlText(const std::string& function_name);

}  // namespace interlock::sql
