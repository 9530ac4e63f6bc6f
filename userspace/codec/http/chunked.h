// The chunked transfer coding (RFC 9112 §7.1): an incremental decoder that hands back the body
// data as views into the caller's buffer and finds the end of the body, and the encoder the
// proxy uses to re-chunk a body it rewrote (masking) or to add trailers.
//
//   ChunkedDecoder decoder;
//   while (!decoder.done()) {
//     INTERLOCK_ASSIGN_OR_RETURN(ChunkedDecoder::Piece p, decoder.Decode(buffered));
//     if (p.consumed == 0) break;               // need more bytes; keep them and read again
//     Forward(p.data);                          // may be empty (framing only)
//     if (p.trailer) Inspect(*p.trailer);
//     buffered.remove_prefix(p.consumed);
//   }
//   // done(): the next message starts at `buffered`.
//
// Grammar accepted (strict; anything else is refused, never skipped):
//   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-size = 1*16HEXDIG, value <= kMaxChunkSize (no "0x", no sign, no leading whitespace)
//   chunk-ext  = *( ";" token [ "=" ( token / quoted-string ) ] )
//                RFC 9112 allows BWS around ";" and "="; we refuse it ("5 ;x"): it is what
//                lets two parsers disagree on where the size ends, and no client sends it.
//                The whole line is bounded by kMaxChunkLineBytes.
//   last-chunk = 1*("0") [ chunk-ext ] CRLF, then trailer fields (validated like header fields:
//                no obs-fold, no controls; at most kMaxTrailerFields in kMaxTrailerBytes) and
//                the final CRLF.
// Bare LF, bare CR and CR followed by anything but LF are refused everywhere. Errors are
// INVALID_ARGUMENT ("http: chunked: invalid chunk size") or RESOURCE_EXHAUSTED for the limits.
// Like the head parser, only complete lines are judged, so any split of a stream gives the
// same data, trailers and verdict.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/codec/http/syntax.h"

namespace interlock::codec::http {

// Largest chunk accepted: what fits in int64_t (16 hex digits could say 2^64 - 1).
inline constexpr uint64_t kMaxChunkSize = std::numeric_limits<int64_t>::max();
// Most hex digits in a chunk size, leading zeros included.
inline constexpr size_t kMaxChunkSizeDigits = 16;
// Longest chunk-size line (size and extensions, CRLF excluded).
inline constexpr size_t kMaxChunkLineBytes = 4096;
// Trailer section limits (field lines, and their bytes including CRLFs).
inline constexpr size_t kMaxTrailerFields = 32;
inline constexpr size_t kMaxTrailerBytes = 8 * 1024;

class ChunkedDecoder {
 public:
  // What one Decode call did with the front of its input.
  struct Piece {
    size_t consumed = 0;                 // bytes of the input used; 0 = need more (or done)
    absl::string_view data;              // body bytes, a view into the input; may be empty
    std::optional<HeaderField> trailer;  // a trailer field line, views into the input
  };

  // Consumes at most one element from the front of `in`: a chunk-size line, a run of chunk
  // data, the CR or LF after it, a trailer line or the final CRLF. Returns consumed == 0 when
  // the next element is incomplete, and after done(). Once an error is returned the decoder
  // stays failed (the stream cannot be resynchronised) and returns it again.
  absl::StatusOr<Piece> Decode(absl::string_view in);

  // The final CRLF after the trailers has been consumed.
  bool done() const { return state_ == State::kDone; }
  // Body bytes returned so far (decoded size, framing excluded).
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  enum class State { kSize, kData, kDataCr, kDataLf, kTrailer, kDone, kFailed };

  absl::StatusOr<Piece> DecodeSizeLine(absl::string_view in);
  Piece DecodeData(absl::string_view in);
  absl::StatusOr<Piece> DecodeDataEnd(char byte);
  absl::StatusOr<Piece> DecodeTrailerLine(absl::string_view in);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;  // kData: bytes left in the current chunk
  uint64_t body_bytes_ = 0;
  size_t trailer_fields_ = 0;
  size_t trailer_bytes_ = 0;
  absl::Status failure_;
};

// Parses a chunk-size line's content (CRLF excluded) as the decoder does; returns the size.
absl::StatusOr<uint64_t> ParseChunkSizeLine(absl::string_view line);

// Appends one chunk carrying `data` to `out`: hex size CRLF data CRLF. Empty `data` appends
// nothing (a zero-size chunk would end the body).
void AppendChunk(absl::string_view data, std::string* out);

// Appends the last chunk, `trailers` and the final CRLF to `out`. Refuses a trailer that
// would not parse back (syntax.h ValidateField); `out` is unchanged then.
absl::Status AppendLastChunk(absl::Span<const HeaderField> trailers, std::string* out);

}  // namespace interlock::codec::http
