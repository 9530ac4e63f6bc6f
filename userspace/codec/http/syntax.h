// HTTP/1.1 lexical rules shared by the head parser, the chunked decoder (trailer fields and
// chunk extensions), the request-target parser and the serialiser, so that what we accept on
// the way in and what we emit on the way out are held to one definition.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<Line> line, FindLine(buf, kMaxHeadBytes));
//   if (!line) return std::nullopt;            // no LF yet: need more bytes
//   INTERLOCK_ASSIGN_OR_RETURN(HeaderField f, ParseFieldLine(line->content));
//
// References: RFC 9110 §5.1 (field names are tokens), §5.5 (field values), §5.6.2 (tchar),
// §5.6.3 (OWS), §5.6.4 (quoted-string); RFC 9112 §2.2 (CRLF, bare CR), §5.1-5.2 (field line,
// obs-fold); RFC 3986 §2-3 (URI characters, authority).
// Errors are INVALID_ARGUMENT with a message naming what is wrong ("bare LF in line");
// callers prepend their context ("http: request: ..."). Nothing here keeps a view past the
// call except the returned views, which point into the argument.
#pragma once

#include <cstddef>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::codec::http {

// The two protocol versions RFC 9112 defines; anything else is refused.
enum class Version { kHttp10, kHttp11 };

// "HTTP/1.0" or "HTTP/1.1".
absl::string_view VersionName(Version v);

// One field line, as it was on the wire minus the surrounding OWS of the value (RFC 9112 §5).
// Both are views into the parsed buffer (or, for fields a caller builds, into its storage).
struct HeaderField {
  absl::string_view name;
  absl::string_view value;
  bool operator==(const HeaderField&) const = default;
};

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//                          "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
bool IsTchar(char c);
// 1*tchar.
bool IsToken(absl::string_view s);
// A byte allowed inside a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). Excludes
// NUL, every other control character and DEL.
bool IsFieldValueChar(char c);
// A byte allowed in a request-target: RFC 3986 unreserved / gen-delims except "#" / sub-delims
// / "%". Excludes "#" (a fragment is never sent), "\", SP, controls and non-ASCII.
bool IsTargetChar(char c);
bool IsHexDigit(char c);
int HexValue(char c);  // 0..15; only for IsHexDigit(c)
bool IsDigit(char c);
// Strips leading and trailing SP / HTAB (OWS, RFC 9110 §5.6.3).
absl::string_view TrimOws(absl::string_view s);

// A complete line at the start of a buffer: its content (CRLF excluded) and the bytes it takes
// including the CRLF.
struct Line {
  absl::string_view content;
  size_t total_bytes;
};

// Finds the first line of `buf`. Returns nullopt while no LF has arrived within the first
// `max_line + 2` bytes (need more); an error when `buf` already holds that many bytes without
// one ("line exceeds N bytes", RESOURCE_EXHAUSTED), when the LF is not preceded by CR ("bare
// LF") or when a CR inside the line is not followed by LF ("bare CR"). Only bytes up to the
// first LF are judged, so feeding a stream in any split gives the same answer.
absl::StatusOr<std::optional<Line>> FindLine(absl::string_view buf, size_t max_line);

// Parses a field line (RFC 9112 §5.1): field-name ":" OWS field-value OWS. Refuses an empty or
// non-token name, whitespace before the colon, a line starting with SP/HTAB (obs-fold or
// whitespace before the first field) and NUL/controls in the value.
absl::StatusOr<HeaderField> ParseFieldLine(absl::string_view line);

// Checks a field a caller built before it is serialised: token name, value of field-value
// chars without leading/trailing OWS (so that it parses back to the same value) and no CR/LF.
absl::Status ValidateField(const HeaderField& field);

// RFC 3986 §3.2: host [":" port] where host is an IP-literal ("[" ... "]" of hex digits,
// ":" and "."), or a reg-name of unreserved / sub-delims / pct-encoded; port is *DIGIT.
// Refuses userinfo ("@"), an empty host and anything else. `allow_empty` accepts "" (an empty
// Host field, RFC 9110 §7.2).
absl::Status ValidateAuthority(absl::string_view authority, bool allow_empty);

}  // namespace interlock::codec::http
