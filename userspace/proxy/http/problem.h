// interlockd's own HTTP answers to the agent: RFC 9457 problem details
// (application/problem+json) naming what decided, so an agent (and the person reading its
// log) can tell a policy denial from an upstream error. Pure.
//
//   agent.out().Append(ProblemResponse({.status = 403, .title = "Denied by policy",
//                                       .detail = d.reason, .rule = d.rule_id}));
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace interlock::proxy::http {

struct Problem {
  int status = 403;
  std::string title;   // short, fixed per kind ("Denied by policy")
  std::string detail;  // this occurrence ("admin endpoints are off limits")
  std::string rule;    // the policy rule that decided; "" when none
  std::string reason;  // interlockd's audit reason code ("policy", "bad_target", ...)
  bool close = false;  // add "Connection: close" (the connection ends after it)
  bool head = false;   // the request was HEAD: the body is announced, not sent
  // 401: add `WWW-Authenticate: Bearer realm="interlock"` (RFC 9110 §11.6.1, RFC 6750 §3).
  bool bearer_challenge = false;
};

// A whole HTTP/1.1 response: status line, Content-Type, Content-Length, Cache-Control
// no-store, [Connection: close], and the JSON body {"type", "title", "status", "detail",
// "interlock_rule", "interlock_reason"}.
std::string ProblemResponse(const Problem& p);

// The standard reason phrase of `status` ("Forbidden"); "Unknown" when unlisted.
absl::string_view ReasonPhrase(int status);

// `text` as a JSON string literal, quotes included (RFC 8259 §7).
std::string JsonQuote(absl::string_view text);

}  // namespace interlock::proxy::http
