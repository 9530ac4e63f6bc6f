// The request-target (RFC 9112 §3.2) taken apart for policy matching, and its path normalised
// the way an upstream will route it, so that a rule on "/admin" cannot be dodged with
// "/%61dmin", "//admin" or "/x/../admin". What cannot be normalised without guessing how the
// upstream decodes is refused instead.
//
//   INTERLOCK_ASSIGN_OR_RETURN(Target t, ParseTarget(req.target, req.method));
//   if (t.form == TargetForm::kAuthority) return Refuse();       // CONNECT
//   if (t.form == TargetForm::kAbsolute && t.authority != req.framing.host) return Refuse();
//   INTERLOCK_ASSIGN_OR_RETURN(std::string path, NormalizePath(t.path));
//   INTERLOCK_ASSIGN_OR_RETURN(std::vector<QueryParam> q, ParseQuery(t.query.value_or("")));
//   audit.url = ElideQueryParams(req.target);
//
// NormalizePath (RFC 3986 §6.2.2):
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, the hex of every
//     other escape is uppercased ("%c3%a9" -> "%C3%A9");
//   - dot-segments are removed (§5.2.4), "%2E" counting as "." once decoded;
//   - repeated slashes collapse to one ("//admin" -> "/admin").
// Refused (INVALID_ARGUMENT "http: target: ..."): an encoded slash "%2F", "%5C" and a raw
// "\", "%00" and every encoded control character, a double-encoded escape ("%252F", which an
// upstream decoding twice reads as "/"), ";" (path parameters: Tomcat and Spring strip them,
// others do not), a ".." that would climb above the root, a ".." right after an empty segment
// ("/a//.." is "/a/" to an upstream that keeps empty segments and "/" to one that merges
// them), an invalid escape ("%zz", "%4"), raw non-ASCII bytes and anything outside the
// request-target character set.
// Returned views point into the argument; strings are new.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace interlock::codec::http {

enum class TargetForm {
  kOrigin,     // "/path?query" (RFC 9112 §3.2.1)
  kAbsolute,   // "http://host:port/path?query" (§3.2.2): check authority against Host
  kAuthority,  // "host:port", CONNECT only (§3.2.3): Interlock refuses tunnels
  kAsterisk,   // "*", OPTIONS only (§3.2.4)
};

struct Target {
  TargetForm form = TargetForm::kOrigin;
  absl::string_view scheme;                // kAbsolute: "http" or "https" as written
  absl::string_view authority;             // kAbsolute and kAuthority
  absl::string_view path;                  // raw; "" for kAbsolute without a path
  std::optional<absl::string_view> query;  // raw, after "?"; nullopt when there is no "?"
};

// Splits `target` according to its form, checking the form is allowed for `method`: "*" only
// with OPTIONS, authority-form exactly when the method is CONNECT, absolute-form only with the
// http and https schemes (ASCII case-insensitive) and an authority without userinfo.
absl::StatusOr<Target> ParseTarget(absl::string_view target, absl::string_view method);

// Normalises a raw path ("" is "/") as described above.
absl::StatusOr<std::string> NormalizePath(absl::string_view path);

// One decoded query parameter ("+" is a space, %XX a byte; any byte may result).
struct QueryParam {
  std::string name;
  std::string value;  // "" when the pair has no "="
  bool operator==(const QueryParam&) const = default;
};

// Splits a raw query on "&" and decodes each "name[=value]"; empty pairs ("a=1&&b=2") are
// skipped. Refuses an invalid escape.
absl::StatusOr<std::vector<QueryParam>> ParseQuery(absl::string_view query);

// Query parameters whose values the audit trail never shows (matched ASCII
// case-insensitively on the decoded name).
inline constexpr absl::string_view kDefaultElidedParams[] = {
    "token",     "access_token", "refresh_token",   "id_token",         "key",
    "api_key",   "apikey",       "password",        "passwd",           "secret",
    "signature", "sig",          "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "code"};

// What replaces an elided value in audit events.
inline constexpr absl::string_view kElidedValue = "<elided>";
// The same where the target must stay a valid request-target (a recorded request head
// replay parses again): only request-target characters.
inline constexpr absl::string_view kElidedTargetValue = "(elided)";

// `target` with the value of every query parameter named in `names` replaced by
// `replacement`; everything else is kept byte for byte. A pair whose name does not decode
// has its value elided too (fail safe).
std::string ElideQueryParams(absl::string_view target,
                             absl::Span<const absl::string_view> names = kDefaultElidedParams,
                             absl::string_view replacement = kElidedValue);

}  // namespace interlock::codec::http
