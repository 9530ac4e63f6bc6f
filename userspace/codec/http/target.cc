#include "userspace/codec/http/target.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/codec/http/syntax.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::http {
namespace {

absl::Status TargetError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("http: target: ", what));
}

bool IsUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

// Decodes unreserved escapes, uppercases the rest, refuses the ambiguous ones.
absl::StatusOr<std::string> DecodePath(absl::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\\') return TargetError("backslash in path");
    if (c == ';') return TargetError("path parameter (\";\") in path");
    if (!IsTargetChar(c)) {
      return TargetError(
          absl::StrCat("invalid byte 0x", absl::Hex(static_cast<unsigned char>(c)), " in path"));
    }
    if (c == '?') return TargetError("\"?\" in path");
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= path.size() || !IsHexDigit(path[i + 1]) || !IsHexDigit(path[i + 2])) {
      return TargetError("invalid percent escape in path");
    }
    const auto byte =
        static_cast<unsigned char>(HexValue(path[i + 1]) * 16 + HexValue(path[i + 2]));
    if (byte == '/') return TargetError("encoded slash (%2F) in path");
    if (byte == '\\') return TargetError("encoded backslash (%5C) in path");
    if (byte < 0x20 || byte == 0x7f) return TargetError("encoded control character in path");
    if (byte == '%' && i + 4 < path.size() && IsHexDigit(path[i + 3]) && IsHexDigit(path[i + 4])) {
      return TargetError("double-encoded escape in path");
    }
    if (IsUnreserved(static_cast<char>(byte))) {
      out.push_back(static_cast<char>(byte));
    } else {
      out.push_back('%');
      out.push_back(Upper(path[i + 1]));
      out.push_back(Upper(path[i + 2]));
    }
    i += 2;
  }
  return out;
}

// application/x-www-form-urlencoded style decoding of a query name or value.
absl::StatusOr<std::string> DecodeQueryPart(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] != '%') {
      out.push_back(s[i]);
    } else if (i + 2 < s.size() && IsHexDigit(s[i + 1]) && IsHexDigit(s[i + 2])) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      return TargetError("invalid percent escape in query");
    }
  }
  return out;
}

// Splits "path?query" (either may be empty).
void SplitPathQuery(absl::string_view s, Target& t) {
  const size_t q = s.find('?');
  t.path = s.substr(0, q);
  if (q != absl::string_view::npos) t.query = s.substr(q + 1);
}

}  // namespace

absl::StatusOr<Target> ParseTarget(absl::string_view target, absl::string_view method) {
  if (target.empty()) return TargetError("empty request-target");
  for (char c : target) {
    if (!IsTargetChar(c)) {
      return TargetError(absl::StrCat("invalid byte 0x", absl::Hex(static_cast<unsigned char>(c)),
                                      " in request-target"));
    }
  }
  Target t;
  if (method == "CONNECT") {
    t.form = TargetForm::kAuthority;
    t.authority = target;
    absl::Status st = ValidateAuthority(target, /*allow_empty=*/false);
    if (!st.ok()) return Annotate(st, "http: target");
    const size_t colon = target.rfind(':');
    if (colon == absl::string_view::npos || colon + 1 == target.size() || target.back() == ']') {
      return TargetError("CONNECT target without port");
    }
    return t;
  }
  if (target == "*") {
    if (method != "OPTIONS") return TargetError("\"*\" target with a method other than OPTIONS");
    t.form = TargetForm::kAsterisk;
    return t;
  }
  if (target[0] == '/') {
    t.form = TargetForm::kOrigin;
    SplitPathQuery(target, t);
    return t;
  }
  const size_t sep = target.find("://");
  if (sep == absl::string_view::npos) return TargetError("request-target of no known form");
  t.form = TargetForm::kAbsolute;
  t.scheme = target.substr(0, sep);
  if (!absl::EqualsIgnoreCase(t.scheme, "http") && !absl::EqualsIgnoreCase(t.scheme, "https")) {
    return TargetError("scheme other than http or https");
  }
  const absl::string_view rest = target.substr(sep + 3);
  const size_t end = rest.find_first_of("/?");
  t.authority = rest.substr(0, end);
  absl::Status st = ValidateAuthority(t.authority, /*allow_empty=*/false);
  if (!st.ok()) return Annotate(st, "http: target");
  if (end != absl::string_view::npos) SplitPathQuery(rest.substr(end), t);
  return t;
}

absl::StatusOr<std::string> NormalizePath(absl::string_view path) {
  if (path.empty()) return std::string("/");
  if (path[0] != '/') return TargetError("path does not start with \"/\"");
  INTERLOCK_ASSIGN_OR_RETURN(std::string decoded, DecodePath(path));
  std::vector<absl::string_view> kept;
  bool trailing_slash = false;
  bool after_empty = false;
  for (absl::string_view segment : absl::StrSplit(absl::string_view(decoded).substr(1), '/')) {
    trailing_slash = segment.empty() || segment == "." || segment == "..";
    if (segment == "..") {
      if (after_empty) return TargetError("\"..\" after an empty segment in path");
      if (kept.empty()) return TargetError("dot-segment climbs above the root");
      kept.pop_back();
    } else if (!segment.empty() && segment != ".") {
      kept.push_back(segment);
    }
    after_empty = segment.empty();
  }
  std::string out = absl::StrCat("/", absl::StrJoin(kept, "/"));
  if (trailing_slash && !kept.empty()) out.push_back('/');
  return out;
}

absl::StatusOr<std::vector<QueryParam>> ParseQuery(absl::string_view query) {
  std::vector<QueryParam> out;
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    QueryParam p;
    INTERLOCK_ASSIGN_OR_RETURN(p.name, DecodeQueryPart(pair.substr(0, eq)));
    if (eq != absl::string_view::npos) {
      INTERLOCK_ASSIGN_OR_RETURN(p.value, DecodeQueryPart(pair.substr(eq + 1)));
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::string ElideQueryParams(absl::string_view target, absl::Span<const absl::string_view> names,
                             absl::string_view replacement) {
  const size_t q = target.find('?');
  if (q == absl::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  bool first = true;
  for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&')) {
    if (!first) out.push_back('&');
    first = false;
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      out.append(pair.data(), pair.size());
      continue;
    }
    absl::StatusOr<std::string> name = DecodeQueryPart(pair.substr(0, eq));
    bool elide = !name.ok();
    for (size_t i = 0; name.ok() && !elide && i < names.size(); ++i) {
      elide = absl::EqualsIgnoreCase(*name, names[i]);
    }
    absl::StrAppend(&out, pair.substr(0, eq + 1), elide ? replacement : pair.substr(eq + 1));
  }
  return out;
}

}  // namespace interlock::codec::http
