// The values at chosen RFC 6901 JSON pointers in a whole (bounded) request body, for the
// policy's HttpMatch.json conditions (policy::HttpRequestFacts::json_fields).
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto fields, ExtractJsonFields(body, {"/model", "/tools/0"}));
//   // fields["/model"] == "gpt-4"  (absent when the body has no such member)
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::codec::json {

// For each pointer in `pointers` that the body has, its value as text:
//   string        -> the decoded contents, without quotes
//   number        -> as written ("1.50", "1e3")
//   true/false/null -> "true", "false", "null"
//   object/array  -> its exact raw text, whitespace included ("{\"a\": 1}")
// A pointer the body lacks is absent from the map. Member names are matched as a
// case-insensitive upstream reads them (FoldKeyCase: Go's encoding/json, .NET and Jackson
// configured so): "/amount" finds "Amount", "AMOUNT" and "\u0041mount". Any error (the body
// is not one strict JSON document, or has duplicate keys anywhere, also keys that differ
// only in case — two parsers could disagree on the value)
// is INVALID_ARGUMENT "json: offset N: ...": the body is not judgeable, and the caller
// fails closed.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ExtractJsonFields(
    absl::string_view body, const std::vector<std::string>& pointers);

}  // namespace interlock::codec::json
