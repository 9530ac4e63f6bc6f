#include "userspace/sql/normalize.h"

#include <algorithm>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "userspace/sql/parser.h"

namespace interlock::sql {

bool IsLiteral(pg_query::Token t) {
  switch (t) {
    case pg_query::SCONST:
    case pg_query::USCONST:
    case pg_query::BCONST:
    case pg_query::XCONST:
    case pg_query::ICONST:
    case pg_query::FCONST:
      return true;
    default:
      return false;
  }
}

namespace {

std::string Unreadable(absl::string_view sql) { return absl::StrCat("<unreadable statement: ", sql.size(), " bytes>"); }

}  // namespace

std::optional<std::vector<LiteralSpan>> LiteralSpans(absl::string_view text, const std::vector<TokenSpan>& tokens) {
  std::vector<LiteralSpan> out;
  size_t copied = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const TokenSpan& t = tokens[i];
    if (!IsLiteral(t.token)) continue;
    // A literal ends where the next token (comments are tokens) begins, less whitespace:
    // the lexer's own end is not set for every kind (U&'...' reports none).
    size_t start = static_cast<size_t>(std::max(t.start, 0));
    size_t end = i + 1 < tokens.size() ? static_cast<size_t>(std::max(tokens[i + 1].start, 0)) : text.size();
    while (end > start && absl::ascii_isspace(static_cast<unsigned char>(text[end - 1]))) --end;
    end = std::max(end, static_cast<size_t>(std::max(t.end, 0)));
    if (start < copied || end > text.size() || end <= start) return std::nullopt;  // not as documented
    out.push_back({t.token, start, end});
    copied = end;
  }
  return out;
}

namespace {

// The lexer's tokens of `sql`; nullopt when it holds a NUL or the lexer rejects it.
std::optional<std::vector<TokenSpan>> Lex(absl::string_view sql, bool standard_conforming_strings) {
  if (sql.find('\0') != absl::string_view::npos) return std::nullopt;
  ScopedStandardConformingStrings lexer_mode(standard_conforming_strings);
  absl::StatusOr<SpanOutcome> scanned = ScanSqlSpans(std::string(sql));
  if (!scanned.ok() || std::holds_alternative<SyntaxError>(*scanned)) return std::nullopt;
  return std::get<std::vector<TokenSpan>>(*std::move(scanned));
}

std::optional<std::string> ShapeKeyOf(absl::string_view text, const std::vector<TokenSpan>& tokens) {
  std::optional<std::vector<LiteralSpan>> literals = LiteralSpans(text, tokens);
  if (!literals.has_value()) return std::nullopt;
  std::string key;
  key.reserve(text.size() + 8);
  size_t copied = 0;
  for (const LiteralSpan& l : *literals) {
    key.append(text.data() + copied, l.start - copied);
    // NUL cannot occur in the text (refused above): the marker is unambiguous.
    key.push_back('\0');
    absl::StrAppend(&key, static_cast<int>(l.token));
    key.push_back('\0');
    copied = l.end;
  }
  key.append(text.data() + copied, text.size() - copied);
  return key;
}

// `tokens` are `text`'s (Lex).
std::string NormalizeTokens(absl::string_view text, const std::vector<TokenSpan>& tokens) {
  // Placeholders continue after the highest $n already in the text.
  int next = 0;
  for (const TokenSpan& t : tokens) {
    int n = 0;
    if (t.token == pg_query::PARAM && t.end > t.start + 1 &&
        absl::SimpleAtoi(absl::string_view(text).substr(t.start + 1, t.end - t.start - 1), &n)) {
      next = std::max(next, n);
    }
  }
  // Spans not as documented: never show what we cannot place.
  std::optional<std::vector<LiteralSpan>> literals = LiteralSpans(text, tokens);
  if (!literals.has_value()) return Unreadable(text);
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (const LiteralSpan& l : *literals) {
    out.append(text.data() + copied, l.start - copied);
    absl::StrAppend(&out, "$", ++next);
    copied = l.end;
  }
  out.append(text.data() + copied, text.size() - copied);
  return out;
}

}  // namespace

std::optional<std::string> ShapeKey(absl::string_view sql, bool standard_conforming_strings) {
  std::optional<std::vector<TokenSpan>> tokens = Lex(sql, standard_conforming_strings);
  if (!tokens.has_value()) return std::nullopt;
  return ShapeKeyOf(sql, *tokens);
}

std::string NormalizeLiterals(absl::string_view sql, bool standard_conforming_strings) {
  std::optional<std::vector<TokenSpan>> tokens = Lex(sql, standard_conforming_strings);
  if (!tokens.has_value()) return Unreadable(sql);
  return NormalizeTokens(sql, *tokens);
}

namespace {

// Keeps `sql` in `*kept` when it is short enough to remember (the memo's bound), else lets
// go of what `*kept` held; whether it kept it.
bool Remember(absl::string_view sql, std::string* kept) {
  if (sql.size() > NormalizeMemo::kMaxBytes) {
    kept->clear();
    kept->shrink_to_fit();
    return false;
  }
  kept->assign(sql.data(), sql.size());
  return true;
}

}  // namespace

const std::optional<std::vector<TokenSpan>>& NormalizeMemo::Tokens(absl::string_view sql,
                                                                     bool standard_conforming_strings) {
  if (lexed_ && lexed_scs_ == standard_conforming_strings && sql == lexed_text_) return tokens_;
  tokens_ = Lex(sql, standard_conforming_strings);
  lexed_ = Remember(sql, &lexed_text_);
  lexed_scs_ = standard_conforming_strings;
  return tokens_;
}

std::optional<std::string> NormalizeMemo::ShapeKey(absl::string_view sql, bool standard_conforming_strings) {
  const std::optional<std::vector<TokenSpan>>& tokens = Tokens(sql, standard_conforming_strings);
  if (!tokens.has_value()) return std::nullopt;
  return ShapeKeyOf(sql, *tokens);
}

const std::string& NormalizeMemo::Normalize(absl::string_view sql, bool standard_conforming_strings) {
  if (valid_ && scs_ == standard_conforming_strings && sql == in_) return out_;
  const std::optional<std::vector<TokenSpan>>& tokens = Tokens(sql, standard_conforming_strings);
  out_ = tokens.has_value() ? NormalizeTokens(sql, *tokens) : Unreadable(sql);
  valid_ = Remember(sql, &in_);
  scs_ = standard_conforming_strings;
  return out_;
}

}  // namespace interlock::sql
