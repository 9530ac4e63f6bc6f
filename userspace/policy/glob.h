// Glob, AnyGlob: the one glob of policy rules (resources, workloads, tables, HTTP hosts and
// values, SSH programs and commands): fnmatch(3) without flags, so "*" matches any run of
// characters, '/' and a leading '.' included. Internal to userspace/policy/.
//
//   Glob("public.*", "public.customers");        // true
//   AnyGlob(rule.match().resources(), "billing-db");
#pragma once

#include <fnmatch.h>

#include <string>

#include "absl/strings/string_view.h"

namespace interlock::policy {

inline bool Glob(const std::string& pattern, absl::string_view value) {
  std::string v(value);
  return ::fnmatch(pattern.c_str(), v.c_str(), 0) == 0;
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
