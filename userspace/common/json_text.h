// JSON string quoting (RFC 8259 section 7), shared by everything that writes JSON text.
//
//   std::string out;
//   AppendJsonQuoted("a\"b", &out);  // out == "\"a\\\"b\""
//
// (audit/json_writer.cc, proxy/http/problem.cc and the SQL result masker still carry their
// own copies; they can switch to this one.)
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace interlock {

// Appends `text` as a JSON string, quotes included: '"' and '\\' are escaped, control
// characters (< 0x20, and 0x7f) written as \u00XX; every other byte is copied, so valid
// UTF-8 in gives valid JSON out.
void AppendJsonQuoted(absl::string_view text, std::string* out);

}  // namespace interlock
