// Statement text for audit events and approval notifications, with every literal replaced
// by a placeholder ($1, $2, ... numbered after the highest $n the text already uses, as
// pg_query_normalize does): `DELETE FROM cards WHERE pan = '4111111111111111'` becomes
// `DELETE FROM cards WHERE pan = $1`, so a card number an agent wrote into a statement does
// not land in the SIEM in clear (PCI DSS 3.5.1). The recording withholds them too
// (proxy/pg/literal_withholding.h: sealed to the auditor key); events and recordings carry
// them only with an explicit `audit_literals: true`.
//
//   std::string shown = sql::NormalizeLiterals(text, settings.standard_conforming_strings);
//
// Lexer only (pg_query_scan): safe on any stack for any input, about a microsecond for a
// short statement. Fail closed: a string the lexer rejects (an unterminated quote) or that
// holds a NUL byte is not shown at all; the result says what it was instead
// ("<unreadable statement: 42 bytes>").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "userspace/sql/parser.h"

namespace interlock::sql {

// The lexer's literal tokens: strings (SCONST, USCONST, BCONST, XCONST) and numbers
// (ICONST, FCONST). PARAM ($1) is not one.
bool IsLiteral(pg_query::Token t);

// Where each literal token of `text` (scanned into `tokens`) lies: [start, end) in bytes,
// the end being where the next token begins less whitespace (the lexer's own end is not
// set for every kind). nullopt when the spans are not as documented (overlapping).
struct LiteralSpan {
  pg_query::Token token;
  size_t start;
  size_t end;
};
std::optional<std::vector<LiteralSpan>> LiteralSpans(absl::string_view text, const std::vector<TokenSpan>& tokens);

// The statement's shape: its text with every literal replaced by a marker naming the
// literal's token kind (`WHERE aid = 42` and `WHERE aid = 7` have one shape, `= 42` and
// `= '42'` two; whitespace and comments count). nullopt when the lexer rejects the text or
// it holds a NUL. Lexer only, like NormalizeLiterals. What a shape is for: classify.h's
// ClassifyShaped says when one string's reading holds for every string of its shape.
std::optional<std::string> ShapeKey(absl::string_view sql, bool standard_conforming_strings);

std::string NormalizeLiterals(absl::string_view sql, bool standard_conforming_strings = true);

// The last statement lexed, and normalized, and what it became. A PostgreSQL session lexes
// each statement three times: for its shape (the guard), for the audit event and for the
// recording (both normalize the same text). With one memo shared by all three, the
// statement is lexed once. Statements longer than kMaxBytes are not kept (the memo holds
// at most 3 x kMaxBytes of text, and the tokens of one).
//
//   sql::NormalizeMemo memo;
//   std::optional<std::string> shape = memo.ShapeKey(text, scs);  // as sql::ShapeKey
//   const std::string& shown = memo.Normalize(text, scs);        // valid until the next call
class NormalizeMemo {
 public:
  static constexpr size_t kMaxBytes = 64 * 1024;
  // The same as NormalizeLiterals and ShapeKey above.
  const std::string& Normalize(absl::string_view sql, bool standard_conforming_strings);
  std::optional<std::string> ShapeKey(absl::string_view sql, bool standard_conforming_strings);

 private:
  const std::optional<std::vector<TokenSpan>>& Tokens(absl::string_view sql, bool standard_conforming_strings);

  bool valid_ = false;
  bool scs_ = true;
  std::string in_;
  std::string out_;
  bool lexed_ = false;
  bool lexed_scs_ = true;
  std::string lexed_text_;
  std::optional<std::vector<TokenSpan>> tokens_;
};

}  // namespace interlock::sql
