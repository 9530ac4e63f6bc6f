// JSON string quoting (RFC 8259 section 7), shared by everything that writes JSON text.
//
//   std::string out;
//   AppendJsonQuoted("a\"b", &out);  // out == "\"a\\\"b\""
//
// Used by the audit writer, HTTP problem bodies, and the JSON maskers (HTTP bodies,
// PostgreSQL json columns). config/yaml_to_proto.cc keeps its own on purpose: it passes
// invalid UTF-8 through so that protobuf refuses the config, rather than repairing it.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace interlock {

// Appends `text` as a JSON string, quotes included: '"' and '\\' escaped, \n \r \t as
// such, other control characters (< 0x20, and 0x7f) as \u00XX; well-formed UTF-8 copied
// as is, and every byte that is not part of one (overlong forms and surrogates included)
// replaced by U+FFFD — the result is always valid JSON. Plain ASCII goes in runs.
void AppendJsonQuoted(absl::string_view text, std::string* out);

}  // namespace interlock
