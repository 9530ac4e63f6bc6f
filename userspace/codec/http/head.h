// HTTP/1.1 message heads (RFC 9112 §2-5): the request-line or status-line and the field lines
// up to the empty line, parsed strictly and incrementally, with the body framing decided
// (framing.h). Pure: bytes in; "need more", a head, or a status out; never touches a socket.
//
// Why hand-written: request smuggling must be *refused, not normalised*, and every parser
// Debian 12 offers is lenient where we must be strict, or unfit:
//   - http-parser 2.9.4: upstream archived; Debian builds it non-strict (bare-LF heads, obs-fold,
//     and CR followed by any byte after a chunk size are accepted);
//   - Boost.Beast's basic_parser: accepts obs-fold, and pulls Boost into a 2-core build;
//   - picohttpparser: heads only, accepts bare LF.
// Envoy made the same move (its own Balsa parser) for the same reason. This parser is small,
// bounded (kMaxHeadBytes, kMaxHeaderFields), fuzzed (tests/fuzz/http) and, later,
// differentially tested against nginx.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<Request> req, PeekRequest(buffered));
//   if (!req) return;                          // need more bytes; keep them and read again
//   Evaluate(req->method, req->target, req->fields);
//   buffered.remove_prefix(req->head_bytes);   // the body (req->framing.body) starts here
//
// Refused, each with its own message ("http: request: bare LF in line"):
//   - bare LF or bare CR anywhere in the head, NUL anywhere;
//   - any empty line before the request-line. RFC 9112 §2.2 lets a server skip one; we do not:
//     an agent's client never sends one, and a stray CRLF after a body is what a framing
//     disagreement between two parsers looks like;
//   - request-line not exactly `token SP target SP HTTP/1.x`: more than one SP, a method that
//     is not a token, a target with a byte outside RFC 3986's set plus "%" ("\", "#", SP,
//     controls, non-ASCII);
//   - versions other than HTTP/1.0 and HTTP/1.1: UNIMPLEMENTED when well-formed ("HTTP/2.0"),
//     INVALID_ARGUMENT otherwise ("http/1.1", "HTTP/1.10");
//   - status-line not exactly `HTTP/1.x SP 3DIGIT SP reason` with the code in 100..599 and the
//     reason of HTAB / SP / VCHAR / obs-text;
//   - obs-fold (a field line starting with SP or HTAB), whitespace between a field name and its
//     colon, an empty or non-token field name, controls other than HTAB in a value;
//   - every framing ambiguity listed in framing.h (Transfer-Encoding, Content-Length, Host).
// Limits (RESOURCE_EXHAUSTED): a head longer than max_head_bytes or with more than
// kMaxHeaderFields fields. Everything else is INVALID_ARGUMENT, bar UNIMPLEMENTED for
// unsupported versions, codings and expectations.
//
// Incremental: only complete lines are judged, and only within the first max_head_bytes, so the
// verdict for a stream does not depend on how it was split into reads. Each call rescans the
// buffer (linear in it, at most max_head_bytes); call again after a read, not per byte.
// The returned views point into `buf` and are valid while it is; `fields` is the only
// allocation (one vector, at most kMaxHeaderFields entries).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/codec/http/framing.h"
#include "userspace/codec/http/syntax.h"

namespace interlock::codec::http {

// Largest head, request- or status-line through the empty line: 64 KiB, nginx's
// large_client_header_buffers total is 32 KiB, Envoy's max_request_headers_kb default 60.
inline constexpr size_t kMaxHeadBytes = 64 * 1024;
// Most field lines in one head (Envoy's max_headers_count default).
inline constexpr size_t kMaxHeaderFields = 100;

// RFC 9112 §3: request-line CRLF *( field-line CRLF ) CRLF.
struct Request {
  absl::string_view method;  // a token, case-sensitive ("GET")
  absl::string_view target;  // raw request-target; see target.h to interpret it
  Version version = Version::kHttp11;
  std::vector<HeaderField> fields;  // in wire order, values OWS-trimmed
  size_t head_bytes = 0;            // through the final CRLF: where the body starts
  RequestFraming framing;           // body, Host, Expect, persistence, Upgrade
};

// RFC 9112 §4: status-line CRLF *( field-line CRLF ) CRLF.
struct Response {
  Version version = Version::kHttp11;
  int status = 0;            // 100..599
  absl::string_view reason;  // may be empty
  std::vector<HeaderField> fields;
  size_t head_bytes = 0;
  ResponseFraming framing;  // interim 1xx: another head follows this one
};

// Parses the request head at the start of `buf`. nullopt: incomplete, read more.
absl::StatusOr<std::optional<Request>> PeekRequest(absl::string_view buf,
                                                   size_t max_head_bytes = kMaxHeadBytes);

// Parses the response head at the start of `buf`, framed as the answer to a request with
// `request_method` (framing.h DecideResponseFraming). nullopt: incomplete, read more.
absl::StatusOr<std::optional<Response>> PeekResponse(absl::string_view buf,
                                                     absl::string_view request_method,
                                                     size_t max_head_bytes = kMaxHeadBytes);

// The first field named `name` (ASCII case-insensitive), or nullopt.
std::optional<absl::string_view> FindField(absl::Span<const HeaderField> fields,
                                           absl::string_view name);

}  // namespace interlock::codec::http
