// What a session recording keeps of the requests an agent sends. Recordings are evidence an
// auditor replays and a bank keeps for years; they must not become a second copy of the
// credentials and customer data that crossed the session (PCI DSS 3.5.1, as the
// PostgreSQL side withholds statement literals).
//
//   - A request head is recorded as parsed, except that the value of every query parameter
//     the audit elides (token, api_key, ...; HttpResource.elide_query_params) reads
//     "(elided)" and the value of every credential field (Authorization,
//     Proxy-Authorization, Cookie, the resource's credential header) reads "[withheld]".
//     Those values are kept nowhere, not even sealed: interlockd removes the agent's
//     credentials anyway, and an auditor needs to know one was sent, not to hold it.
//   - Request bodies, by default, are withheld: the recorded head announces no body
//     ("content-length: 0") and says what it replaced ("interlock-withheld-body:
//     content-length 1234" or "chunked"); when the body ends, a `request_body_withheld`
//     event gives its length and SHA-256. The decoded body is sealed to the auditor key
//     when one is configured (`interlock replay --unseal`), and kept nowhere otherwise.
//     With HttpResource.record_request_bodies the body is recorded in clear, byte for byte
//     as the agent framed it.
//   - Bytes that never parsed as a request (a malformed head interlockd refused, a request
//     the session ended before reading) are summarised by an `agent_unparsed` event
//     (length, SHA-256) and sealed, at most kMaxSealedUnparsedBytes, to the auditor key.
//
// Pure: no I/O. The session hands it what it consumed and appends the results to the
// recording in order.
//
//   RequestRecording rec(options);
//   rec.Head(request, &to_record);
//   rec.Body(raw_piece, decoded_piece, &to_record, &to_seal);   // per piece consumed
//   if (auto ev = rec.EndBody(/*complete=*/true)) recorder->AppendEvent(ev->kind, ev->detail);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "userspace/codec/http/head.h"
#include "userspace/common/sha256.h"

namespace interlock::proxy::http {

class RequestRecording {
 public:
  struct Options {
    bool bodies_in_clear = false;                 // HttpResource.record_request_bodies
    bool keep_originals = false;                  // an auditor key seals what is withheld
    std::vector<std::string> credential_fields;   // lowercase; besides the built-in three
    std::vector<std::string> elided_params;       // besides codec::http::kDefaultElidedParams
  };
  struct Event {
    std::string kind;
    std::string detail;
  };

  static constexpr size_t kMaxSealedUnparsedBytes = 64 * 1024;
  static constexpr absl::string_view kWithheldValue = "[withheld]";

  explicit RequestRecording(Options options);
  RequestRecording(const RequestRecording&) = delete;  // elided_ views into options_
  RequestRecording& operator=(const RequestRecording&) = delete;

  // What the recording should say once, at its start, about what it withholds.
  Event Describe() const;

  // Appends the head as recorded to *clear and starts the body the head announces.
  void Head(const codec::http::Request& req, std::string* clear);
  // One piece of the body as the session consumed it: `raw` as framed on the wire (chunk
  // sizes included), `data` the body bytes it carried. Appends to *clear or *sealed.
  void Body(absl::string_view raw, absl::string_view data, std::string* clear, std::string* sealed);
  // The body ended (complete) or the session stopped reading it. Withheld bodies give the
  // event that records their length and digest; nothing when no body was open.
  std::optional<Event> EndBody(bool complete);
  bool in_body() const { return in_body_; }

  // Bytes that never parsed as a request: the event, and (keep_originals) the sealed part.
  Event Unparsed(absl::string_view bytes, std::string* sealed) const;

 private:
  bool Withheld(absl::string_view field_name) const;

  Options options_;
  std::vector<absl::string_view> elided_;  // the built-in names, then options_.elided_params
  bool in_body_ = false;
  uint64_t body_bytes_ = 0;
  Sha256Hasher body_hash_;
};

}  // namespace interlock::proxy::http
