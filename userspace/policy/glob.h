// Glob, AnyGlob: the one glob of policy rules (resources, workloads, tables, HTTP hosts and
// values, SSH programs and commands): fnmatch(3) without flags, so "*" matches any run of
// characters, '/' and a leading '.' included. Internal to userspace/policy/.
//
//   Glob("public.*", "public.customers");        // true
//   AnyGlob(rule.match().resources(), "billing-db");
//
// Most patterns are plain names, and rules are tried for every statement and request:
// a pattern without '*', '?', '[' or '\' is compared as fnmatch would compare it (equal up
// to the first NUL of each, where fnmatch's C strings end), and "*" matches everything,
// without a copy or a call. Anything else goes to fnmatch. tests/unit/policy/glob_test.cc
// holds both to fnmatch's answers.
#pragma once

#include <fnmatch.h>

#include <string>

#include "absl/strings/string_view.h"

namespace interlock::policy {

// Whether fnmatch(3) reads `pattern` as anything but itself.
inline bool HasGlobMeta(absl::string_view pattern) {
  return pattern.find_first_of(absl::string_view("*?[\\", 4)) != absl::string_view::npos;
}

// `s` as a C string reads it: up to its first NUL.
inline absl::string_view AsCString(absl::string_view s) { return s.substr(0, s.find('\0')); }

inline bool Glob(absl::string_view pattern, absl::string_view value) {
  pattern = AsCString(pattern);
  if (!HasGlobMeta(pattern)) return pattern == AsCString(value);
  if (pattern == "*") return true;
  std::string p(pattern);
  std::string v(value);
  return ::fnmatch(p.c_str(), v.c_str(), 0) == 0;
}

// Whether any of `patterns` (strings) matches `value`.
template <typename Container>
bool AnyGlob(const Container& patterns, absl::string_view value) {
  for (const auto& p : patterns) {
    if (Glob(p, value)) return true;
  }
  return false;
}

}  // namespace interlock::policy
