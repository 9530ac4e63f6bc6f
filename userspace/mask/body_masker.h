// BodyMasker: masks one HTTP response body (RFC 9110 section 6.4) as it streams through the
// proxy, under a Masker's profile — the layer between the HTTP session and JsonMasker.
//
//  * What the body is comes from its Content-Type (ClassifyContentType): a JSON document
//    goes through JsonMasker (field rules and detectors); text goes through the detectors
//    only, one whole line at a time (so a match is never cut by where a read ended; a
//    match cannot span lines, which no built-in detector's can); binary is not masked
//    here (the caller passes it through).
//  * Content-Encoding gzip or deflate (RFC 9110 section 8.4.1) is decoded, masked and
//    encoded again the same way (gzip in, gzip out), piece by piece: memory does not grow
//    with the compression ratio, so a decompression bomb streams in bounded buffers.
//
// Usage (per response, after the header section):
//   BodyKind kind = ClassifyContentType(content_type);
//   ContentCoding coding = ParseContentEncoding(content_encoding);
//   if (kind == BodyKind::kBinary) { /* forward as is */ }
//   else if (coding == ContentCoding::kUnsupported) { /* refuse: cannot be masked */ }
//   INTERLOCK_ASSIGN_OR_RETURN(auto bm, BodyMasker::Create(*masker, kind, coding));
//   std::string out;
//   INTERLOCK_RETURN_IF_ERROR(bm->Feed(chunk, &out));  // as often as bytes arrive
//   INTERLOCK_RETURN_IF_ERROR(bm->Finish(&out));       // at the end of the body
//   audit.counts.Merge(bm->counts());
//
// The masked body's length differs from the original: the caller re-frames it (chunked,
// or close-delimited) and drops Content-Length (and Content-MD5/Digest-style fields).
//
// Errors are INVALID_ARGUMENT and stick: "body: ..." for this layer, "body: gzip: <zlib
// message>" (or "body: deflate: ...") for a corrupt, truncated or trailing-garbage coded
// stream, JsonMasker's "json: offset N: ..." for a body that is not strict JSON. Output
// already appended stays; the caller must abort the response (it cannot be completed).
//
// Pure: no I/O, no clock; one BodyMasker per body, not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/mask/json_masker.h"
#include "userspace/mask/masker.h"

namespace interlock::mask {

// Longest text line the text path masks, bytes (without its '\n'): a detector match must
// be seen whole, so a line is held until it ends; a longer one fails closed. The same
// bound as codec::json::kMaxTokenBytes.
inline constexpr size_t kMaxTextLineBytes = 1 << 20;
// The decoded bytes of a coded body are masked this many at a time.
inline constexpr size_t kInflateChunkBytes = 64 * 1024;
// How much of a kTextOrJson body is held back while it still reads as one JSON document;
// past it the body is JSON (the same bound as a text line).
inline constexpr size_t kJsonSniffBytes = kMaxTextLineBytes;
// How many first bytes of an application/octet-stream body tell text from binary.
inline constexpr size_t kOctetSniffBytes = 1024;
// How many first bytes of every other body are held to tell UTF-16 and UTF-32 from text
// the detectors can read.
inline constexpr size_t kStartSniffBytes = 4;

// What a body is, for masking.
enum class BodyKind {
  kJson,        // one JSON document: JsonMasker
  kText,        // text: detectors over each line
  kTextOrJson,  // labelled plain text, or not labelled: JSON if it is one JSON document
  kOctetStream, // application/octet-stream: kTextOrJson if its first bytes are text, else passed
  kJsonLines,   // one JSON document per line (NDJSON, JSON Lines, json-seq): each masked as JSON
  kEventStream, // server-sent events: an event's JSON data masked as JSON, the rest as text
  kBinary,      // not masked
};

// The kind of a body from its Content-Type field value (RFC 9110 section 8.3): the media
// type only (parameters such as charset are ignored), case-insensitive, whitespace trimmed.
//   kJson: application/json, application/x-json, text/json, any type/subtype+json
//     (application/problem+json, application/vnd.api+json).
//   kTextOrJson: text/plain, and — fail closed, so the detectors still run — an empty or
//     absent Content-Type or one that is not a type/subtype: an upstream that mislabels
//     (or does not label) a JSON document must not take it out of the field rules.
//   kJsonLines: application/ x-ndjson, ndjson, jsonl, x-jsonlines, json-seq — one JSON
//     document per line, each masked as JSON (field rules too); a line that is not JSON
//     fails the body (closed). Blank lines and json-seq's record separator stay.
//   kEventStream: text/event-stream (MCP's streamable HTTP, LLM streams). Lines are held
//     until their event ends (a blank line, or the body's end; at most kMaxTextLineBytes an
//     event); an event whose data lines, joined as the SSE spec joins them, are one JSON
//     document is masked as JSON (field rules too) with every line kept where it was;
//     other data lines, and every other field and comment, pass the detectors.
//   kText: text/* (other than text/json and text/plain), multipart/*, any */*+xml, and
//     application/ xml, javascript, x-javascript, ecmascript, x-www-form-urlencoded,
//     graphql, yaml, x-yaml, csv, sql. (A list, not "any subtype naming xml": Office
//     documents are zips.)
//   kOctetStream: application/octet-stream, "arbitrary bytes" — what export endpoints send
//     files as (a CSV of customers), so it is looked at rather than trusted.
//   kBinary: everything else (image/*, audio/*, video/*, font/*, application/pdf,
//     application/zip, application/gzip, application/protobuf, ...).
BodyKind ClassifyContentType(absl::string_view content_type);
absl::string_view BodyKindName(BodyKind kind);

// The charset parameter of a Content-Type field value (RFC 9110 section 8.3.2), lower-case,
// unquoted; "" when there is none.
std::string ContentTypeCharset(absl::string_view content_type);
// Whether the detectors can read text in `charset` (from ContentTypeCharset): "" (none
// named) and the ASCII-compatible families — UTF-8, US-ASCII, ISO-8859-*, Latin-*,
// Windows-125x, KOI8-*, Shift_JIS, EUC-*, GB2312/GBK/GB18030, Big5, TIS-620 — in which an
// ASCII digit, letter or '@' is that byte. Anything else is not: UTF-16/32, UCS-2/4,
// UTF-7, EBCDIC code pages, ISO-2022-*, and every name not listed (fail closed).
bool MaskableCharset(absl::string_view charset);

// A body's content coding (RFC 9110 section 8.4.1).
enum class ContentCoding { kIdentity, kGzip, kDeflate, kUnsupported };

// From a Content-Encoding field value, case-insensitive, whitespace trimmed: "" or
// "identity" -> kIdentity; "gzip" or "x-gzip" -> kGzip; "deflate" -> kDeflate. A list of
// several codings ("gzip, gzip"), br, zstd, compress or anything else -> kUnsupported.
ContentCoding ParseContentEncoding(absl::string_view value);
// "identity", "gzip", "deflate", "unsupported".
absl::string_view ContentCodingName(ContentCoding c);

// kTextOrJson: the body's plain (decoded) bytes are told apart before anything is emitted.
// One that starts (after whitespace) with '{' or '[' is tried as JSON and held — input and
// masked output — while it reads as one document: a parse error within kJsonSniffBytes,
// or at the end, makes it text (the held input masked as kText masks it, then streaming a
// line at a time); still valid after kJsonSniffBytes, or complete at the end, it is JSON
// (the held output released, the rest streaming), and an error after that fails closed as
// for kJson. Anything else is text from its first byte. masked_as() says which it became.
//
// kOctetStream: the first kOctetSniffBytes plain bytes (or the whole body, if shorter) are
// held and looked at: with no NUL and no control byte but TAB, LF, VT, FF, CR and ESC they
// are text (any 8-bit encoding: a Latin-1 export is text) and the body is masked as
// kTextOrJson; otherwise the body is binary and passes byte for byte (re-coded as it came).
//
// With `refuse_wide_text`, every body is refused — FAILED_PRECONDITION, refused_encoding() true, nothing of it
// emitted — when it is UTF-16 or UTF-32 text, which the detectors (reading ASCII-compatible
// bytes) would not see into: a byte order mark (FE FF, FF FE, 00 00 FE FF) or, in the first
// kStartSniffBytes, a NUL (which no text or JSON holds) — and, for kOctetStream, a first
// kOctetSniffBytes that is not text but is mostly-ASCII UTF-16/32 (one byte of every code
// unit almost never NUL, the others mostly NUL: a spreadsheet's "Unicode text" export).
// A NUL later in a text body fails it (closed, refused_encoding() true) before the line
// holding it is emitted.
// An event stream (UTF-8 by definition, and often silent for long after its head) is not
// held for its first bytes: a line with a NUL fails it before the line is emitted.
//
// `refuse_text` (the profile has field rules, which reach into JSON only, and the resource
// does not pass text past them): a kTextOrJson or kOctetStream body that turns out to be
// text — anything but whitespace that is not one JSON document — is refused instead of
// masked by the detectors only: FAILED_PRECONDITION, refused_text() true, and nothing of
// the body emitted (the decision comes before any output: see decided()).
struct BodyMaskerOptions {
  // Refuse a kTextOrJson or kOctetStream body that turns out to be text (above).
  bool refuse_text = false;
  // Refuse UTF-16 and UTF-32 text (above). Off for a terminal's output, which may hold NUL
  // bytes and whose first bytes (a prompt) must not wait.
  bool refuse_wide_text = false;
};

class BodyMasker {
 public:
  // `kind` must not be kBinary and `coding` must be supported: INVALID_ARGUMENT otherwise (the
  // caller forwards binary bodies itself and refuses unsupported codings). `masker` must
  // outlive the BodyMasker. Identity bodies create no zlib state.
  static absl::StatusOr<std::unique_ptr<BodyMasker>> Create(const Masker& masker, BodyKind kind,
                                                            ContentCoding coding, BodyMaskerOptions options = {});
  ~BodyMasker();
  BodyMasker(const BodyMasker&) = delete;
  BodyMasker& operator=(const BodyMasker&) = delete;

  // Appends the masked form of `chunk` (bytes as they come off the wire, still
  // content-coded) to *out, content-coded as the input is: gzip -> gzip, deflate ->
  // deflate in the same wrapper (zlib or raw), identity -> identity. A coded output is
  // flushed (Z_SYNC_FLUSH) at the end of each Feed that produced data, so a streaming
  // client gets what is decoded promptly. Text is emitted a whole line at a time.
  absl::Status Feed(absl::string_view chunk, std::string* out);
  // The end of the body: masks what is held (a final line without '\n', a trailing JSON
  // number) and ends the coded stream (the gzip trailer). An empty body (no bytes ever
  // fed) is fine and appends nothing. INVALID_ARGUMENT for a truncated coded stream or an
  // incomplete JSON document. FAILED_PRECONDITION when called twice (and for a Feed after
  // it).
  absl::Status Finish(std::string* out);
  // Text with identity coding only (a terminal's output: a prompt is a line that does not
  // end): masks the line held so far as it is and appends it, so it reaches the reader
  // now. A match split across the flush point is then not seen whole (the caller flushes
  // only after its stream went quiet). FAILED_PRECONDITION for JSON or a coded body.
  absl::Status FlushLine(std::string* out);
  // Bytes of a text line held back, waiting for its end.
  size_t held_line_bytes() const { return line_.size(); }
  BodyKind kind() const { return kind_; }
  ContentCoding coding() const { return coding_; }
  // How the body is being masked: kJson or kText (a kTextOrJson body not yet told apart,
  // or held as a JSON trial, is kText until it is JSON), or kBinary for a kOctetStream body
  // found binary (passed as it is).
  BodyKind masked_as() const;
  // False while the body is still being told apart — its first kStartSniffBytes, or a
  // kTextOrJson or kOctetStream body's kind — its bytes held and nothing of them emitted
  // but a coded stream's header; true once it is known, and after Finish.
  bool decided() const;
  // The body was text under `refuse_text` (the error Feed or Finish returned).
  bool refused_text() const { return refused_text_; }
  // The body was UTF-16 or UTF-32 text (the error Feed or Finish returned).
  bool refused_encoding() const { return refused_encoding_; }

  // Matches per detector and values per field rule (JSON only) so far.
  const MaskCounts& counts() const;
  // Total replacements so far (counts().total()).
  uint64_t values_masked() const { return counts().total(); }
  // Bytes of the body after decoding (the plain body seen so far).
  uint64_t decoded_bytes() const { return decoded_bytes_; }
  // Bytes held by this masker's own buffers, zlib's state included (as a fixed estimate),
  // for memory bounds.
  size_t buffer_capacity() const;

 private:
  class Inflater;
  class Deflater;

  BodyMasker(const Masker& masker, BodyKind kind, ContentCoding coding, BodyMaskerOptions options);

  absl::Status FeedCoded(absl::string_view chunk, std::string* out);
  absl::Status FinishCoded(std::string* out);
  // The plain (decoded) body: masks `plain`, appending to *out.
  absl::Status FeedPlain(absl::string_view plain, std::string* out);
  // The held first bytes: refused if UTF-16/32, else fed on.
  absl::Status CheckStart(std::string* out);
  // FeedPlain once the first bytes were checked.
  absl::Status FeedChecked(absl::string_view plain, std::string* out);
  absl::Status FinishPlain(std::string* out);
  absl::Status FeedText(absl::string_view text, std::string* out);
  // kTextOrJson while it is not yet told apart (sniff_ kLeadingSpace or kTrial).
  absl::Status FeedSniffing(absl::string_view plain, std::string* out);
  // The held input of a failed trial (or leading whitespace), then `rest`, become text —
  // or, under refuse_text_ and unless all of it is whitespace, the body is refused.
  absl::Status BecomeText(absl::string_view rest, std::string* out);
  // kOctetStream: tells the held first bytes apart (text or binary) and goes on with them.
  absl::Status DecideOctetStream(std::string* out);
  absl::Status MaskLine(absl::string_view line, std::string* out);
  absl::Status MaskJsonLine(absl::string_view line, std::string* out);
  // kEventStream: holds a line of the current event; masks and emits the event at its end.
  absl::Status MaskEventLine(absl::string_view line, std::string* out);
  void EndEvent(std::string* out);
  // Inflates the Inflater's pending input, masks it and deflates it into *out.
  absl::Status Inflate(std::string* out);
  // Deflates plain_ into *out (and clears plain_).
  absl::Status Compress(int flush, std::string* out);

  const Masker& masker_;
  const BodyKind kind_;
  const ContentCoding coding_;
  // Text without detectors is copied as is (nothing could match).
  const bool text_passthrough_;
  const BodyMaskerOptions options_;
  bool refused_text_ = false;
  bool refused_encoding_ = false;
  bool start_checked_ = false;
  std::string start_;  // the first bytes, until kStartSniffBytes
  std::optional<JsonMasker> json_;  // kJson, and kTextOrJson tried or taken as JSON
  MaskCounts counts_;               // kText
  // kTextOrJson: kLeadingSpace (only whitespace so far, held in trial_in_), kTrial (tried
  // as JSON: trial_in_ the input, trial_out_ JsonMasker's output), then kText or kJson.
  // kOctetStream: kOctetHead (first bytes held in trial_in_), then kBinary or as kTextOrJson.
  enum class Sniff { kNone, kOctetHead, kBinary, kLeadingSpace, kTrial, kText, kJson };
  Sniff sniff_ = Sniff::kNone;
  std::string trial_in_;
  std::string trial_out_;
  std::string line_;                // kText: the line not yet ended
  std::string masked_;              // kText: MaskText's output
  std::vector<std::string> event_lines_;  // kEventStream: the current event's lines
  size_t event_bytes_ = 0;
  // Coded bodies only.
  std::unique_ptr<Inflater> inflater_;
  std::unique_ptr<Deflater> deflater_;
  std::string scratch_;  // decoded bytes, kInflateChunkBytes at a time
  std::string plain_;    // masked, not yet deflated
  bool unflushed_ = false;
  uint64_t fed_bytes_ = 0;
  uint64_t decoded_bytes_ = 0;
  bool finished_ = false;
  absl::Status error_;
};

}  // namespace interlock::mask
