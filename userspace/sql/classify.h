// Statement classification with the real PostgreSQL 15 grammar: what a query string does
// (kind, tables read and written, output columns, functions called, WHERE / LIMIT, COPY
// endpoints, EXPLAIN ANALYZE, row locks, SELECT INTO), for policy, approval and audit.
// Pure: no I/O and no shared state; safe to call from several threads at once.
//
//   sql::SessionSettings session{.standard_conforming_strings = reported_scs,
//                                .client_encoding = reported_client_encoding};
//   INTERLOCK_ASSIGN_OR_RETURN(v1::SqlClassification c, sql::Classify(query.sql, session));
//   if (c.parse_error()) return Deny(c.error());          // never forward what we cannot read
//   for (const v1::SqlStatement& s : c.statements()) {
//     if (s.kind() == v1::STATEMENT_KIND_DELETE && !s.has_where()) return Hold(...);
//     for (const v1::TableRef& t : s.tables_written()) ...
//   }
//
// How: libpg_query (Debian's libpg-query-dev: the PostgreSQL 15.1 parser built as a library)
// parses the string with pg_query_parse_protobuf, and the bytes are decoded into C++ classes
// generated at build time from the library's own pg_query.proto: a typed AST, no JSON and no
// string matching. Protobuf rather than pg_query_parse's JSON because the schema gives every
// node a type the compiler checks, and the reflection API walks the tree generically. The
// classifier visits every node of the tree that way, so a function call or table reference
// cannot hide in a node type it has no rule for; statement-specific rules (write targets, CTE
// scopes, COPY, EXPLAIN) are hooks on top of that exhaustive walk. Field meanings are in
// schemas/interlock/v1/sql.proto.
//
// Fail closed: a string the grammar rejects, one larger than kMaxSqlBytes, one holding a NUL
// byte, one nested too deeply to analyse safely (nesting.h), or any string in a session with a
// client-only client_encoding comes back with parse_error set and no statements. Status errors
// are internal failures only (libpg_query output that does not decode, no thread for the
// parser); callers must treat them like parse errors.
//
// Stack: strings of up to 256 tokens are parsed on the caller's thread (measured under
// 256 KiB); longer ones on a helper thread with its own large stack (parser.h), because
// libpg_query recurses without a depth check.
//
// What the parser alone cannot know, and is therefore not reported: which names are views,
// what functions, triggers, rules and operators do when they run, the body of DO blocks (their
// language is reported), what a prepared statement named by EXECUTE does, and which columns a
// `*` or a whole-row reference (`SELECT t FROM t`) expands to. Names are as written: an
// unqualified table is resolved by the server's search_path.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/sql.pb.h"

namespace interlock::sql {

// Longest query string Classify analyses (bytes). Parsing costs time and memory in proportion
// to the input: measured about 0.5 s and 65 MiB per MiB of multi-row INSERT, mostly inside
// libpg_query. Bulk data belongs in COPY FROM STDIN, whose rows are not SQL text.
inline constexpr size_t kMaxSqlBytes = size_t{4} << 20;

// The session state that changes how PostgreSQL splits a string into tokens. The server
// reports both in ParameterStatus messages (at startup and whenever they change); pass the
// latest values, or the classifier and the server may read different statements out of the
// same bytes.
struct SessionSettings {
  // standard_conforming_strings. When off, `SELECT 'a\' , ' ; DELETE FROM t; -- '` is a
  // SELECT of one string followed by a DELETE; when on, a SELECT of two strings.
  bool standard_conforming_strings = true;
  // client_encoding. The server converts the query to its own encoding before parsing; in the
  // client-only encodings (SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC, GB18030, JOHAB) a multi-byte
  // character can end in a backslash byte, so the classifier, which reads bytes, cannot
  // analyse them: Classify reports a parse error for every statement in those sessions.
  // Every other encoding keeps ASCII bytes ASCII.
  std::string client_encoding = "UTF8";

  bool operator==(const SessionSettings&) const = default;
};

// Classifies every statement in `sql` (a simple-protocol Query string or a Parse message's
// SQL) as the session described by `session` would parse it. A syntax error is not a status
// error: the result has parse_error set and the parser's message in `error`. Returns kInternal
// only when libpg_query's output cannot be decoded.
absl::StatusOr<v1::SqlClassification> Classify(absl::string_view sql,
                                               const SessionSettings& session);

// Whether `name` is one of PostgreSQL's client-only encodings (SJIS, BIG5, GBK, UHC, GB18030,
// JOHAB and their aliases; names compare like pg_char_to_encoding), in which a multi-byte
// character can end in a byte the classifier would read as a backslash.
bool IsClientOnlyEncoding(absl::string_view name);

// Classify, and whether its reading holds for every string of the same shape
// (normalize.h ShapeKey: the same text but for the values of its literals, of the same
// token kinds), read with the same settings. It holds when the string is one statement
// starting at 0 that holds every literal, every literal token became a plain constant of
// the tree (A_Const, also with a unary minus folded in), none is a U&'' string, and the
// classifier read no constant's value (it reads only LIMIT's count: a statement with a
// LIMIT does not hold). Then a string of that shape classifies the same except for its
// statement's length, which changes by the difference in size (tests/unit/sql:
// ClassifyShaped.* vary the literals of a corpus and compare). Every other reading that a
// literal decides is a literal kept as something other than a constant — a name, a
// file, an option, a function body — and fails the second condition.
struct ShapedClassification {
  v1::SqlClassification classification;
  bool holds_for_shape = false;
};
absl::StatusOr<ShapedClassification> ClassifyShaped(absl::string_view sql, const SessionSettings& session);

// Classify with PostgreSQL's defaults (standard_conforming_strings on, UTF8).
absl::StatusOr<v1::SqlClassification> Classify(absl::string_view sql);

}  // namespace interlock::sql
