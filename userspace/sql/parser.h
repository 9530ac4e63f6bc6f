// The PostgreSQL 15 grammar, as libpg_query exposes it, behind RAII and typed results.
// This is the only file that calls libpg_query; classify.h builds on it.
//
//   INTERLOCK_ASSIGN_OR_RETURN(ParseOutcome parsed, ParseSql(sql));
//   if (const auto* err = std::get_if<SyntaxError>(&parsed)) { ... deny ... }
//   const pg_query::ParseResult& tree = std::get<ParseTree>(parsed).tree();
//
// Every function takes a NUL-terminated string (std::string): libpg_query reads C strings, so
// callers must first reject SQL that contains a NUL byte (the server would see more than the
// parser did). Results are decoded into C++ objects and every libpg_query result is freed
// before returning. libpg_query keeps a small per-thread memory context that it creates on
// first use and that is released when the thread exits; no initialisation call is needed
// (pg_query_init is deprecated and runs implicitly).
//
// Stack: the parser's output stage recurses once per parse-tree level without a depth check
// (libpg_query 15-4.0.0; upstream pull requests #348 and #366), so a deeply nested statement
// such as `SELECT 1+1+...+1` with 40 000 terms overflows an 8 MiB stack. Call ParseSql and
// FingerprintSql only for strings whose ScanSql tokens pass nesting.h's guard, and for all but
// short strings on RunOnParserStack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/arena.h"
#include "pg_query/pg_query.pb.h"

namespace interlock::sql {

// The grammar rejected the string (or the scanner did: unterminated quote or comment).
struct SyntaxError {
  // PostgreSQL's message, e.g. `syntax error at or near "SELEC"`.
  std::string message;
  // 1-based character (not byte) position of the error as PostgreSQL reports it; 0 unknown.
  int position = 0;
};

// A decoded parse tree, in a protobuf arena of its own: a statement's tree is hundreds of
// small messages, and one arena (a few blocks) instead of a malloc and a free for each
// takes ~6% off Classify of a join (classify_bench medians: 97 vs 103 us; short statements
// gain little: most of ParseSql is libpg_query's packing and protobuf's decoding).
// Movable; the tree lives as long as the ParseTree.
class ParseTree {
 public:
  ParseTree();
  const pg_query::ParseResult& tree() const { return *tree_; }
  pg_query::ParseResult* mutable_tree() { return tree_; }

 private:
  std::unique_ptr<google::protobuf::Arena> arena_;
  pg_query::ParseResult* tree_;
};

using ParseOutcome = std::variant<ParseTree, SyntaxError>;
using FingerprintOutcome = std::variant<std::string, SyntaxError>;
using ScanOutcome = std::variant<std::vector<pg_query::Token>, SyntaxError>;

// A token and where it is: byte offsets [start, end) in the scanned string.
struct TokenSpan {
  pg_query::Token token = pg_query::NUL;
  int32_t start = 0;
  int32_t end = 0;
};
using SpanOutcome = std::variant<std::vector<TokenSpan>, SyntaxError>;

// Parse tree levels the C++ decoder accepts (protobuf's default of 100 is far too low for
// ordinary SQL: each expression level costs two). A deeper tree is an internal error.
inline constexpr int kMaxDecodeRecursion = 20000;

// While alive, the lexer on this thread reads string constants as a session with
// standard_conforming_strings = `on` would: when off, a backslash escapes a quote inside '...'
// too, so the same bytes split into different tokens. libpg_query keeps the setting in a
// thread-local variable (its copy of PostgreSQL's GUC), which this sets and restores.
class ScopedStandardConformingStrings {
 public:
  explicit ScopedStandardConformingStrings(bool on);
  ~ScopedStandardConformingStrings();
  ScopedStandardConformingStrings(const ScopedStandardConformingStrings&) = delete;
  ScopedStandardConformingStrings& operator=(const ScopedStandardConformingStrings&) = delete;

 private:
  bool saved_;
};

// Address space reserved for the stack of RunOnParserStack's thread; pages are committed only
// as the parser touches them. Far above the need of anything nesting.h lets through (a few
// MiB for the deepest right-nested statement the grammar's own 10 000-entry stack accepts).
inline constexpr size_t kParserStackBytes = size_t{64} << 20;

// Runs `fn` on a new thread with a kParserStackBytes stack and waits for it to finish. Thread
// state of libpg_query (its memory context, standard_conforming_strings) is per thread: set it
// inside `fn`. kResourceExhausted when the thread cannot be created.
absl::Status RunOnParserStack(absl::FunctionRef<void()> fn);

// Raw parse tree of every statement in `sql` (pg_query_parse_protobuf). A status error
// means libpg_query produced output that does not decode (kInternal).
absl::StatusOr<ParseOutcome> ParseSql(const std::string& sql);

// pg_query_fingerprint: 16 lower-case hex digits, equal for statements that differ only in
// constants, comments and whitespace.
absl::StatusOr<FingerprintOutcome> FingerprintSql(const std::string& sql);

// The lexer's tokens, comments included, in order (pg_query_scan). The lexer does not recurse,
// so this is safe for any input. A status error means undecodable output (kInternal).
absl::StatusOr<ScanOutcome> ScanSql(const std::string& sql);
// The same, with each token's byte span.
absl::StatusOr<SpanOutcome> ScanSqlSpans(const std::string& sql);

}  // namespace interlock::sql
