// HTTP/1.1 message framing: from a parsed head's fields, where the body ends (RFC 9112 §6.1-6.3)
// and what the connection does next (§9.3 persistence, RFC 9110 §10.1.1 Expect, §7.8 Upgrade).
// This is where request smuggling is decided, so every ambiguity is refused, never resolved:
//
//   Transfer-Encoding   must be exactly one field whose value is "chunked" (ASCII
//                       case-insensitive, OWS trimmed). "chunked, chunked", "identity",
//                       "gzip, chunked", "xchunked", two TE fields, TE in HTTP/1.0: refused.
//   TE + Content-Length refused (CL.TE / TE.CL), also in responses.
//   Content-Length      exactly one field, 1*DIGIT (no sign, no inner space, no list, not even
//                       "5, 5"), at most kMaxContentLength.
//   Host (requests)     exactly one in HTTP/1.1, at most one in HTTP/1.0; a valid authority.
//   Expect (requests)   only "100-continue" (UNIMPLEMENTED otherwise, the caller answers 417).
//
//   INTERLOCK_ASSIGN_OR_RETURN(RequestFraming rf, DecideRequestFraming(version, fields));
//   if (rf.upgrade) return Refuse();           // no WebSocket / h2c through the proxy
//   if (rf.body.kind == BodyKind::kChunked) decoder.emplace();
//
// PeekRequest / PeekResponse (head.h) call these; they are public so that a head the proxy
// edited can be re-checked before it is forwarded. Errors are INVALID_ARGUMENT (malformed or
// ambiguous) or UNIMPLEMENTED (well-formed but unsupported: a transfer coding other than
// chunked, an Expect other than 100-continue), without the "http: request:" prefix, which
// head.cc adds.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/codec/http/syntax.h"

namespace interlock::codec::http {

// Largest Content-Length accepted: what fits in int64_t, so that callers can do signed
// arithmetic on it. Longer values are refused, not clamped.
inline constexpr uint64_t kMaxContentLength = std::numeric_limits<int64_t>::max();

enum class BodyKind {
  kNone,        // no body: the next message starts right after the head
  kLength,      // exactly BodyFraming::length bytes
  kChunked,     // chunked transfer coding: feed the bytes to a ChunkedDecoder (chunked.h)
  kUntilClose,  // responses only: the body ends when the server closes the connection
  kTunnel,      // responses only: 2xx to CONNECT or 101 Switching Protocols; the connection
                // stops being HTTP (Interlock refuses both)
};

struct BodyFraming {
  BodyKind kind = BodyKind::kNone;
  uint64_t length = 0;  // kLength only
  bool operator==(const BodyFraming&) const = default;
};

struct RequestFraming {
  BodyFraming body;
  absl::string_view host;        // the Host value ("" when HTTP/1.0 sent none)
  bool expect_continue = false;  // HTTP/1.1 with "Expect: 100-continue"
  bool persistent = true;        // false: "Connection: close", or HTTP/1.0 without keep-alive
  bool upgrade = false;          // an Upgrade field is present (WebSocket, h2c): refuse
  bool operator==(const RequestFraming&) const = default;
};

struct ResponseFraming {
  BodyFraming body;
  bool interim = false;    // 1xx other than 101: the real response head follows
  bool persistent = true;  // false: "Connection: close", HTTP/1.0 without keep-alive, or a
                           // body read until close
  bool operator==(const ResponseFraming&) const = default;
};

// RFC 9112 §6.3 rules 3-7 for a request.
absl::StatusOr<RequestFraming> DecideRequestFraming(Version version,
                                                    absl::Span<const HeaderField> fields);

// RFC 9112 §6.3 rules 1-7 for a response to a request with `request_method` (exact,
// case-sensitive, as methods are): HEAD, 1xx, 204 and 304 have no body whatever the fields say
// (the fields are still checked); a 2xx to CONNECT and a 101 are tunnels; then chunked, then
// Content-Length, else read until close.
absl::StatusOr<ResponseFraming> DecideResponseFraming(Version version, int status,
                                                      absl::Span<const HeaderField> fields,
                                                      absl::string_view request_method);

// Parses a Content-Length value: 1*DIGIT, at most kMaxContentLength.
absl::StatusOr<uint64_t> ParseContentLength(absl::string_view value);

// The comma-separated options of every Connection field, as written (compare them with
// absl::EqualsIgnoreCase); views into the fields' values. Refuses an option that is not a
// token. Empty list elements ("a,,b") are skipped, as RFC 9110 §5.6.1 requires.
absl::StatusOr<std::vector<absl::string_view>> ConnectionOptions(
    absl::Span<const HeaderField> fields);

}  // namespace interlock::codec::http
