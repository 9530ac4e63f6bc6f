// A strict, incremental RFC 8259 JSON tokenizer, and the string decoder.
//
// Why hand-written: masking must stream a 100 MB JSON array with bounded memory and keep
// every byte it does not mask exactly as sent (numbers as written, whitespace, key order),
// which DOM parsers (nlohmann, jsoncpp, protobuf Struct) cannot; Debian's streaming options
// (yajl) re-generate the document rather than preserve it.
//
//   JsonTokenizer tok;
//   auto sink = [&](const JsonToken& t) -> absl::Status { ...; return absl::OkStatus(); };
//   INTERLOCK_RETURN_IF_ERROR(tok.Feed(chunk1, sink));
//   INTERLOCK_RETURN_IF_ERROR(tok.Feed(chunk2, sink));
//   INTERLOCK_RETURN_IF_ERROR(tok.Finish(sink));
//
// Every input byte is reported in exactly one token, in order: concatenating every token's
// `raw` gives the input back. Structural characters and whitespace come as their own tokens
// (kWhitespace runs may be cut at chunk boundaries; nothing else is).
//
// Chunk boundaries: a token that lies within one chunk is a view into that chunk. A scalar
// (string, key, number, literal) cut by a boundary is buffered — only that one token — and
// reported, as a view into the tokenizer's buffer, when it completes. Views live only
// during the sink call. Any scalar longer than kMaxTokenBytes is refused, however it was
// chunked, so the result never depends on the chunking.
//
// Strictness (all refusals are INVALID_ARGUMENT "json: offset N: ..."): invalid UTF-8 in
// strings, unescaped control characters (< 0x20), invalid escapes, lone or mis-paired
// UTF-16 surrogates in \u escapes (the decoded string must be valid UTF-8), leading zeros,
// malformed numbers, NaN/Infinity, comments, trailing commas, missing separators, nesting
// deeper than kMaxDepth, anything but whitespace after the top-level value, empty input.
// Duplicate keys (RFC 8259 section 4 allows them, but parsers disagree which one wins):
// refused when Options::refuse_duplicate_keys is set — the policy must, since it judges
// what the upstream will see — and allowed otherwise (the masker masks every occurrence).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace interlock::codec::json {

// Longest scalar token (string or key with its quotes, number, literal), in bytes.
inline constexpr size_t kMaxTokenBytes = 1 << 20;
// Deepest nesting of objects and arrays.
inline constexpr size_t kMaxDepth = 128;

enum class JsonTokenType {
  kBeginObject,  // {
  kEndObject,    // }
  kBeginArray,   // [
  kEndArray,     // ]
  kColon,        // :
  kComma,        // ,
  kWhitespace,   // a run of space, tab, CR, LF
  kKey,          // a member name, raw with quotes and escapes
  kString,       // a string value, raw with quotes and escapes
  kNumber,       // as written
  kTrue,
  kFalse,
  kNull,
};

struct JsonToken {
  JsonTokenType type;
  // The exact input bytes of the token.
  absl::string_view raw;
  // Offset of the token's first byte in the whole input.
  uint64_t offset = 0;
  // RFC 6901 pointer of the value the token belongs to ("" is the root): for a key and for
  // the value after it "/name" (with ~0 ~1 escaping), for an array element "/3", for a
  // container's begin/end the container's own. Empty for separators and whitespace.
  absl::string_view pointer;
  // Decoded member name for kKey and for a value (scalar or begin) directly in an object;
  // empty otherwise.
  absl::string_view key;
  // Nesting depth: the number of containers enclosing the token (a container's begin/end
  // counts as outside itself).
  size_t depth = 0;
};

// True for kString, kNumber, kTrue, kFalse, kNull.
bool IsScalarValue(JsonTokenType type);

using JsonSink = absl::FunctionRef<absl::Status(const JsonToken&)>;

// A member name (or pointer) as a case-insensitive JSON reader compares it: ASCII letters
// lower-cased, and U+017F (long s) and U+212A (Kelvin sign) read as "s" and "k", as Go's
// encoding/json folds them. Other bytes are kept.
std::string FoldKeyCase(absl::string_view name);

class JsonTokenizer {
 public:
  struct Options {
    bool refuse_duplicate_keys = false;
    // With refuse_duplicate_keys: keys equal under FoldKeyCase are duplicates too (as a
    // case-insensitive upstream — Go's encoding/json — reads them).
    bool fold_key_case = false;
  };
  JsonTokenizer() : JsonTokenizer(Options{}) {}
  explicit JsonTokenizer(Options options);

  // Tokenizes `chunk`, calling `sink` for each complete token. The first error (the
  // tokenizer's INVALID_ARGUMENT, or whatever `sink` returns) is returned and sticks: every
  // later call returns it again.
  absl::Status Feed(absl::string_view chunk, JsonSink sink);
  // End of input: completes a top-level number or literal; INVALID_ARGUMENT when the
  // document is incomplete or empty.
  absl::Status Finish(JsonSink sink);

  // Bytes currently buffered for a token cut by a chunk boundary (for memory bounds).
  size_t buffered_bytes() const { return pending_.size(); }
  // Capacity of every buffer the tokenizer holds (pending token, pointer, key, scratch).
  size_t buffer_capacity() const;

 private:
  enum class State {
    kValue,       // a value (top level, after ':' or ',' in an array)
    kValueOrEnd,  // after '['
    kKeyOrEnd,    // after '{'
    kKey,         // after ',' in an object
    kColon,       // after a key
    kCommaOrEnd,  // after a value inside a container
    kDone,        // after the top-level value
  };
  enum class Scalar { kNone, kString, kNumber, kLiteral };
  struct Frame {
    bool object;
    size_t index = 0;                       // elements (array) so far
    size_t pointer_len = 0;                 // pointer_ length of the container itself
    absl::flat_hash_set<std::string> keys;  // only with refuse_duplicate_keys
  };

  absl::Status Fail(uint64_t offset, absl::string_view what);
  absl::Status Run(absl::string_view chunk, JsonSink sink);
  absl::Status StartValue(char c, uint64_t offset, JsonSink sink, bool* consumed);
  absl::Status EndScalar(absl::string_view raw, uint64_t offset, JsonSink sink);
  absl::Status AfterValue();
  void SetElementPointer();

  Options options_;
  absl::Status error_;
  State state_ = State::kValue;
  uint64_t offset_ = 0;  // of the next byte
  std::vector<Frame> stack_;
  std::string pointer_;
  std::string key_;        // decoded current member name
  bool have_key_ = false;  // key_ belongs to the value being read
  // The scalar in progress.
  Scalar scalar_ = Scalar::kNone;
  bool scalar_is_key_ = false;
  uint64_t scalar_offset_ = 0;
  size_t scalar_len_ = 0;
  bool in_escape_ = false;
  std::string pending_;  // the part of the scalar from earlier chunks
  std::string scratch_;  // decoded strings
  bool saw_value_ = false;
};

// Decodes a JSON string token `raw` (with its quotes) into UTF-8, appended to *out.
// INVALID_ARGUMENT ("invalid escape", "lone surrogate", "invalid utf-8", "control
// character", "not a string") naming the byte index within `raw`.
absl::Status DecodeJsonString(absl::string_view raw, std::string* out);

// True when `raw` is a number as RFC 8259 section 6 writes it.
bool IsJsonNumber(absl::string_view raw);

// Appends `name` escaped as one RFC 6901 reference token ('~' -> "~0", '/' -> "~1").
void AppendPointerToken(absl::string_view name, std::string* out);

}  // namespace interlock::codec::json
