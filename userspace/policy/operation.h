// Operation: what one policy decision is about, whatever the protocol — a SQL statement
// string (its classification) or an HTTP request (the facts the policy matches, already
// normalised by the protocol's codec). The evaluator judges rules against either; each
// protocol plug-in builds its own and never sees the other's (policy.proto Match says which
// rules apply to which).
//
//   HttpRequestFacts req{.method = "DELETE", .host = "api.internal", .path = "/v1/customers/7"};
//   Decision d = eval->Evaluate(who, "crm-api", Operation{&req});
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "interlock/v1/sql.pb.h"

namespace interlock::policy {

// One HTTP request as HttpMatch (policy.proto) sees it. The protocol plug-in fills it from
// the parsed request after refusing what cannot be judged (smuggling, ambiguous paths, a
// Host that disagrees with SNI).
struct HttpRequestFacts {
  std::string method;
  // Lowercase, without the port.
  std::string host;
  // Normalised (RFC 3986 §5.2.4 dot-segments resolved, unreserved escapes decoded,
  // repeated slashes collapsed); always starts with '/'.
  std::string path;
  // Decoded query parameters, in request order (a name may repeat).
  std::vector<std::pair<std::string, std::string>> query;
  // Header fields with lowercase names, in request order (a name may repeat).
  std::vector<std::pair<std::string, std::string>> headers;
  // The JSON body's fields that rules ask for (PolicyEvaluator::JsonPointersFor), by RFC
  // 6901 pointer, as JSON text (strings without their quotes). A pointer that is absent
  // from the body is absent from the map.
  enum class Body {
    kNone,        // no body: no field is present
    kJudged,      // JSON, read whole: json_fields holds what rules asked for
    kUnjudgable,  // not JSON, over the size limit, or not text: body conditions fail closed
  };
  Body body = Body::kNone;
  absl::flat_hash_map<std::string, std::string> json_fields;
};

// What one decision judges. SQL: the classification of one query string (every statement
// in it); HTTP: one request.
using Operation = std::variant<const v1::SqlClassification*, const HttpRequestFacts*>;

}  // namespace interlock::policy
