// What the policy judges of one HTTP request (policy::HttpRequestFacts), taken from the
// parsed head — or why the request cannot be judged and is refused. Pure.
//
//   INTERLOCK_ASSIGN_OR_RETURN(JudgedRequest j, JudgeRequest(req, sni, elided));
//   Decision d = eval->Evaluate(who, resource, policy::Operation{&j.facts});
//   audit.set_target(j.audit_target);
//
// Refused (the agent gets the status, the audit event the reason):
//   400  the target does not parse or its path is ambiguous (codec/http/target.h:
//        "%2F", "%00", ";", "\", a ".." above the root, ...), a query escape is invalid;
//   421  the request is for another host than the TLS connection (SNI) it came on, or an
//        absolute-form target names another host than Host (RFC 9110 §7.4: a request
//        must not be routed by one name and judged by another);
//   501  CONNECT (authority-form) and Upgrade (WebSocket, h2c): no tunnels through the
//        guard.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/codec/http/head.h"
#include "userspace/policy/operation.h"

namespace interlock::proxy::http {

struct JudgedRequest {
  policy::HttpRequestFacts facts;
  // The request-target with secret query values elided, for audit and approvals.
  std::string audit_target;
};

// A refusal: the status the agent gets, a stable audit reason and a detail it may read.
struct RequestRefusal {
  int status = 400;
  std::string reason;  // "bad_target", "host_mismatch", "tunnel_refused"
  std::string detail;
};

// `sni`: the name the agent's TLS ClientHello asked for ("" in clear, or none sent).
// `elided`: query parameter names whose values audit_target hides (beyond the defaults).
// Returns the facts, or fills `*refusal` and returns nullopt.
std::optional<JudgedRequest> JudgeRequest(const codec::http::Request& req, absl::string_view sni,
                                          absl::Span<const std::string> elided, RequestRefusal* refusal);

// "api.internal:8443" -> "api.internal", "[::1]:80" -> "::1", lowercased.
std::string HostWithoutPort(absl::string_view authority);

}  // namespace interlock::proxy::http
