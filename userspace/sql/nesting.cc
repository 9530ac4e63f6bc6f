#include "userspace/sql/nesting.h"

#include <algorithm>

namespace interlock::sql {
namespace {

// kEndBlock: CASE ... END and BEGIN ATOMIC ... END (a SQL-standard function body, whose
// statements may define functions with bodies of their own).
enum class FrameKind { kStatement, kParen, kBracket, kEndBlock };

struct Frame {
  FrameKind kind;
  int base;                 // depth at which this frame's contents start
  int chain;                // set operations and joins so far (never restart inside the frame)
  int expr;                 // keywords and operators since the last expression boundary
  int pending_between = 0;  // BETWEENs whose AND is still to come
  int Depth() const { return base + chain + expr; }
};

enum class TokenClass {
  kNeutral,       // identifiers, constants, parameters, '.', comments
  kOpen,          // ( [ CASE ATOMIC
  kClose,         // ) ] END
  kStatementEnd,  // ;
  kBoundary,      // ends an expression: , AND OR WHEN THEN ELSE and clause keywords
  kChain,         // UNION INTERSECT EXCEPT JOIN
  kLevel,         // any other keyword or operator
};

TokenClass Classify(pg_query::Token token) {
  switch (token) {
    case pg_query::IDENT:
    case pg_query::UIDENT:
    case pg_query::FCONST:
    case pg_query::SCONST:
    case pg_query::USCONST:
    case pg_query::BCONST:
    case pg_query::XCONST:
    case pg_query::ICONST:
    case pg_query::PARAM:
    case pg_query::SQL_COMMENT:
    case pg_query::C_COMMENT:
    case pg_query::ASCII_46:  // .
      return TokenClass::kNeutral;
    case pg_query::ASCII_40:  // (
    case pg_query::ASCII_91:  // [
    case pg_query::CASE:
    case pg_query::ATOMIC:
      return TokenClass::kOpen;
    case pg_query::ASCII_41:  // )
    case pg_query::ASCII_93:  // ]
    case pg_query::END_P:
      return TokenClass::kClose;
    case pg_query::ASCII_59:  // ;
      return TokenClass::kStatementEnd;
    case pg_query::ASCII_44:  // ,
    case pg_query::AND:
    case pg_query::OR:
    case pg_query::WHEN:
    case pg_query::THEN:
    case pg_query::ELSE:
    case pg_query::SELECT:
    case pg_query::FROM:
    case pg_query::WHERE:
    case pg_query::GROUP_P:
    case pg_query::HAVING:
    case pg_query::ORDER:
    case pg_query::LIMIT:
    case pg_query::OFFSET:
    case pg_query::WINDOW:
    case pg_query::RETURNING:
    case pg_query::VALUES:
    case pg_query::SET:
      return TokenClass::kBoundary;
    case pg_query::UNION:
    case pg_query::INTERSECT:
    case pg_query::EXCEPT:
    case pg_query::JOIN:
      return TokenClass::kChain;
    default:
      return TokenClass::kLevel;
  }
}

FrameKind OpenKind(pg_query::Token token) {
  switch (token) {
    case pg_query::ASCII_40:
      return FrameKind::kParen;
    case pg_query::ASCII_91:
      return FrameKind::kBracket;
    default:
      return FrameKind::kEndBlock;
  }
}

FrameKind CloseKind(pg_query::Token token) {
  switch (token) {
    case pg_query::ASCII_41:
      return FrameKind::kParen;
    case pg_query::ASCII_93:
      return FrameKind::kBracket;
    default:
      return FrameKind::kEndBlock;
  }
}

}  // namespace

int EstimateNestingDepth(const std::vector<pg_query::Token>& tokens) {
  std::vector<Frame> frames = {{FrameKind::kStatement, 0, 0, 0}};
  int deepest = 0;
  pg_query::Token previous = pg_query::NUL;
  for (pg_query::Token token : tokens) {
    if (token == pg_query::SQL_COMMENT || token == pg_query::C_COMMENT) continue;
    Frame& top = frames.back();
    TokenClass token_class = Classify(token);
    // Two boundaries sit inside a comparison rather than between expressions: the AND of
    // `x BETWEEN a AND b` and the FROM of `x IS [NOT] DISTINCT FROM y`. Their right operand can
    // start with NOT, which binds looser than the comparison, so `a BETWEEN 1 AND NOT b
    // BETWEEN 1 AND NOT c ...` nests to the right; these count as levels.
    if (token == pg_query::BETWEEN) {
      ++top.pending_between;
    } else if (token == pg_query::AND && top.pending_between > 0) {
      --top.pending_between;
      token_class = TokenClass::kLevel;
    } else if (token == pg_query::FROM && previous == pg_query::DISTINCT) {
      token_class = TokenClass::kLevel;
    }
    previous = token;
    switch (token_class) {
      case TokenClass::kNeutral:
        break;
      case TokenClass::kOpen:
        frames.push_back({OpenKind(token), top.Depth() + kFrameCost, 0, 0});
        break;
      case TokenClass::kClose: {
        // Pop to the matching opener. An unmatched closer is a syntax error the parser will
        // report, except END outside CASE / BEGIN ATOMIC (the END [TRANSACTION] statement):
        // count it.
        FrameKind kind = CloseKind(token);
        auto match = std::find_if(frames.rbegin(), frames.rend() - 1,
                                  [kind](const Frame& f) { return f.kind == kind; });
        if (match == frames.rend() - 1) {
          ++top.expr;
        } else {
          frames.erase(std::next(match).base(), frames.end());
        }
        break;
      }
      case TokenClass::kStatementEnd:
        top.chain = 0;
        top.expr = 0;
        top.pending_between = 0;
        break;
      case TokenClass::kBoundary:
        top.expr = 0;
        break;
      case TokenClass::kChain:
        ++top.chain;
        break;
      case TokenClass::kLevel:
        ++top.expr;
        break;
    }
    deepest = std::max(deepest, frames.back().Depth());
  }
  return deepest;
}

}  // namespace interlock::sql
