// A bound on parse-tree depth computed from lexer tokens, so that the parser's unguarded
// recursion (see parser.h) only ever sees statements it can handle on a normal thread stack.
//
//   INTERLOCK_ASSIGN_OR_RETURN(ScanOutcome scanned, ScanSql(sql));
//   ... tokens = std::get<std::vector<pg_query::Token>>(scanned);
//   if (EstimateNestingDepth(tokens) > kMaxNestingDepth) { ... report a parse error ... }
//
// The estimate is an over-approximation of how many nested nodes the deepest statement
// produces, built from the grammar's shape (PostgreSQL 15 gram.y):
//  - brackets `(` `[`, CASE ... END and BEGIN ATOMIC ... END nest: the inside of a bracket
//    starts at the depth of the bracket plus kFrameCost;
//  - set operations (UNION / INTERSECT / EXCEPT) and joins (JOIN) build left-deep chains that
//    may span commas and boolean operators, so they add one level each until the statement
//    (or bracket) ends;
//  - every other keyword or operator token adds one level, but that count restarts where the
//    grammar ends an expression: `,`, AND, OR, WHEN, THEN, ELSE and the clause keywords
//    (SELECT, FROM, WHERE, ...). No operator chain can continue past these: the operators
//    binding looser than AND / OR are only AND / OR themselves, and the grammar flattens
//    `a AND b AND c` into one node. Two such tokens do not end an expression and count as
//    levels: the AND of BETWEEN and the FROM of IS DISTINCT FROM (their right operand may
//    start with NOT and nest again);
//  - identifiers, constants, parameters, `.` and comments add nothing.
// Statements whose estimate exceeds kMaxNestingDepth are far beyond hand-written SQL (a
// thousand chained operators, hundreds of nested brackets); Classify reports them as parse
// errors, as PostgreSQL itself does ("stack depth limit exceeded") for deep enough ones.
#pragma once

#include <vector>

#include "pg_query/pg_query.pb.h"

namespace interlock::sql {

// Depth charged for entering a bracket or CASE.
inline constexpr int kFrameCost = 2;
// Largest estimate Classify parses. Over the shapes in tests/unit/sql/nesting_test.cc a
// statement at this estimate has at most about 3 000 parse-tree levels and needs under 1 MiB
// of stack in libpg_query (Classify gives it 64 MiB, see parser.h).
inline constexpr int kMaxNestingDepth = 1000;

// The largest estimate over all statements in `tokens` (the output of ScanSql, comments
// included). 0 for no tokens.
int EstimateNestingDepth(const std::vector<pg_query::Token>& tokens);

}  // namespace interlock::sql
