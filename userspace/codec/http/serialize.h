// Emitting HTTP/1.1 heads (RFC 9112 §3-5) from their parsed form, after the proxy edited the
// fields: the agent's Authorization removed, injected credentials added, Content-Length fixed
// or Transfer-Encoding switched to chunked for a rewritten body. Every part is checked with the
// rules the parser applies (syntax.h), so a value carrying CR/LF cannot inject a field, and
// what is emitted parses back (head.h) to the same method, target, version and fields.
//
//   std::vector<HeaderField> fields = RemoveFields(RemoveHopByHop(req.fields),
//                                                  {"authorization"});
//   fields.push_back({"Authorization", injected_bearer});   // a view into the caller's string
//   INTERLOCK_ASSIGN_OR_RETURN(std::string head,
//                              SerializeRequestHead(req.method, req.target, req.version, fields));
//
// Fields are written "name: value" in the order given. Errors are INVALID_ARGUMENT
// ("http: serialize: value of X has surrounding whitespace").
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/codec/http/framing.h"
#include "userspace/codec/http/syntax.h"

namespace interlock::codec::http {

// method SP target SP version CRLF fields CRLF.
absl::StatusOr<std::string> SerializeRequestHead(absl::string_view method, absl::string_view target,
                                                 Version version,
                                                 absl::Span<const HeaderField> fields);

// version SP 3DIGIT SP reason CRLF fields CRLF. `status` must be 100..599.
absl::StatusOr<std::string> SerializeResponseHead(Version version, int status,
                                                  absl::string_view reason,
                                                  absl::Span<const HeaderField> fields);

// `fields` without the hop-by-hop ones a proxy must not forward (RFC 9110 §7.6.1): Connection
// and every field it names, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
// Proxy-Authorization (and any other Proxy-*), TE, Trailer, Transfer-Encoding and Upgrade.
// Transfer-Encoding is included because framing is per hop: the proxy re-frames the body and
// adds its own. Views are kept; no field is copied.
std::vector<HeaderField> RemoveHopByHop(absl::Span<const HeaderField> fields);

// `fields` with every Content-Length and Transfer-Encoding replaced by the one announcing
// `body`, appended last: kLength adds "Content-Length: N" (the digits are written to
// `*storage`, which the result points into and must outlive it), kChunked adds
// "Transfer-Encoding: chunked"; kNone, kUntilClose and kTunnel add nothing. For the proxy
// that rewrote a body (masking) and re-frames it.
std::vector<HeaderField> WithBodyFraming(absl::Span<const HeaderField> fields,
                                         const BodyFraming& body, std::string* storage);

// `fields` without those named in `names` (ASCII case-insensitive).
std::vector<HeaderField> RemoveFields(absl::Span<const HeaderField> fields,
                                      std::initializer_list<absl::string_view> names);

}  // namespace interlock::codec::http
