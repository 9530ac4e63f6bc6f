#include "userspace/codec/http/syntax.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace interlock::codec::http {

absl::string_view VersionName(Version v) { return v == Version::kHttp10 ? "HTTP/1.0" : "HTTP/1.1"; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

static bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool IsTchar(char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

bool IsFieldValueChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

bool IsTargetChar(char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  // unreserved marks, gen-delims without "#", sub-delims, and "%" for pct-encoded.
  return c != '\0' && std::strchr("-._~:/?[]@!$&'()*+,;=%", c) != nullptr;
}

bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::StatusOr<std::optional<Line>> FindLine(absl::string_view buf, size_t max_line) {
  // Judge only the window a complete line may occupy, so that a longer buffer cannot turn an
  // answer already given for a shorter one into a different one.
  const absl::string_view window = buf.substr(0, max_line + 2);
  const size_t lf = window.find('\n');
  if (lf == absl::string_view::npos) {
    if (window.size() == max_line + 2) {
      return absl::ResourceExhaustedError(absl::StrCat("line exceeds ", max_line, " bytes"));
    }
    return std::nullopt;
  }
  if (lf == 0 || window[lf - 1] != '\r') return absl::InvalidArgumentError("bare LF in line");
  const absl::string_view content = window.substr(0, lf - 1);
  if (content.find('\r') != absl::string_view::npos) {
    return absl::InvalidArgumentError("bare CR in line");
  }
  return Line{content, lf + 1};
}

absl::StatusOr<HeaderField> ParseFieldLine(absl::string_view line) {
  if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
    return absl::InvalidArgumentError("line starts with whitespace (obs-fold)");
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return absl::InvalidArgumentError("field without colon");
  const absl::string_view name = line.substr(0, colon);
  if (name.empty()) return absl::InvalidArgumentError("empty field name");
  if (name.back() == ' ' || name.back() == '\t') {
    return absl::InvalidArgumentError("whitespace between field name and colon");
  }
  if (!IsToken(name)) return absl::InvalidArgumentError("invalid character in field name");
  const absl::string_view value = TrimOws(line.substr(colon + 1));
  for (char c : value) {
    if (!IsFieldValueChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "control character 0x", absl::Hex(static_cast<unsigned char>(c)), " in value of ", name));
    }
  }
  return HeaderField{name, value};
}

absl::Status ValidateField(const HeaderField& field) {
  if (!IsToken(field.name)) return absl::InvalidArgumentError("invalid field name");
  if (TrimOws(field.value) != field.value) {
    return absl::InvalidArgumentError(
        absl::StrCat("value of ", field.name, " has surrounding whitespace"));
  }
  for (char c : field.value) {
    if (!IsFieldValueChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat("control character in value of ", field.name));
    }
  }
  return absl::OkStatus();
}

static bool IsRegNameChar(char c) {
  return IsAlpha(c) || IsDigit(c) || (c != '\0' && std::strchr("-._~!$&'()*+,;=%", c) != nullptr);
}

absl::Status ValidateAuthority(absl::string_view authority, bool allow_empty) {
  if (authority.empty()) {
    return allow_empty ? absl::OkStatus() : absl::InvalidArgumentError("empty authority");
  }
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError("userinfo in authority");
  }
  absl::string_view host = authority;
  absl::string_view rest;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("unclosed IP literal");
    for (char c : host.substr(1, close - 1)) {
      if (!IsHexDigit(c) && c != ':' && c != '.') {
        return absl::InvalidArgumentError("invalid character in IP literal");
      }
    }
    if (close == 1) return absl::InvalidArgumentError("empty IP literal");
    rest = host.substr(close + 1);
    host = host.substr(0, close + 1);
  } else {
    const size_t colon = host.find(':');
    if (colon != absl::string_view::npos) {
      rest = host.substr(colon);
      host = host.substr(0, colon);
    }
    if (host.empty()) return absl::InvalidArgumentError("empty host");
    for (size_t i = 0; i < host.size(); ++i) {
      if (!IsRegNameChar(host[i])) return absl::InvalidArgumentError("invalid character in host");
      if (host[i] == '%' &&
          (i + 2 >= host.size() || !IsHexDigit(host[i + 1]) || !IsHexDigit(host[i + 2]))) {
        return absl::InvalidArgumentError("invalid percent escape in host");
      }
    }
  }
  if (!rest.empty()) {
    if (rest.front() != ':') return absl::InvalidArgumentError("junk after host");
    rest.remove_prefix(1);
    if (rest.size() > 5) return absl::InvalidArgumentError("port too long");
    for (char c : rest) {
      if (!IsDigit(c)) return absl::InvalidArgumentError("invalid port");
    }
  }
  return absl::OkStatus();
}

}  // namespace interlock::codec::http
