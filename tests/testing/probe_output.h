// Reading interlock-probe's report: one line of flat JSON ({"ok":true,"peer":"...",...}).
//
//   EXPECT_EQ(ProbeField(r.out, "errno"), "1");   // "" when the key is absent
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace interlock::testing {

// The value of "key": a string without its quotes (escapes kept as written), or the raw
// token of a number or boolean; "" when the key is absent.
inline std::string ProbeField(const std::string& json, const std::string& key) {
  const std::string k = absl::StrCat("\"", key, "\":");
  size_t p = json.find(k);
  if (p == std::string::npos) return "";
  p += k.size();
  if (p < json.size() && json[p] == '"') {
    size_t e = json.find('"', p + 1);
    return json.substr(p + 1, e == std::string::npos ? std::string::npos : e - p - 1);
  }
  size_t e = json.find_first_of(",}", p);
  return json.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

}  // namespace interlock::testing
