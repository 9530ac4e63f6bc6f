// Streaming masking of a JSON document (an HTTP response body) under a Masker's profile.
//
// Why hand-written: masking must stream a 100 MB JSON array with bounded memory and keep
// every byte it does not mask exactly as sent (numbers as written, whitespace, key order),
// which DOM parsers (nlohmann, jsoncpp, protobuf Struct) cannot; Debian's streaming options
// (yajl) re-generate the document rather than preserve it.
//
//   JsonMasker jm(*masker);
//   std::string out;
//   INTERLOCK_RETURN_IF_ERROR(jm.Feed(chunk, &out));   // as often as bytes arrive
//   INTERLOCK_RETURN_IF_ERROR(jm.Finish(&out));
//   audit.counts.Merge(jm.counts());
//
// Output is the input, byte for byte, except:
//   - field rules: the profile's bare ColumnMask globs ("*_ssn", "email") are matched
//     against member names (MatchColumn with the name as output name). A rule applies to the
//     member's value and, when that value is an object or array, to every scalar inside it
//     (the structure stays, its leaves are masked), so no subtree is ever buffered. Each
//     scalar is replaced by the rule's MaskSpec applied to its text (a string's decoded
//     contents, a number or literal as written) and written as a JSON string
//     (REDACT -> "[REDACTED]", PARTIAL, KEYED_HASH); style NULL writes null. A null stays
//     null. Counted once per value under the rule's text.
//   - detectors: every other string value (never a member name) is decoded, run through
//     Masker::MaskText, and, when something matched, replaced by the masked text as a JSON
//     string. "\u0034111..." is a card number once decoded, and is masked.
//   - numbers the detectors match (a card number written as 4111111111111111) become a JSON
//     string of the masked text: the type changes from number to string. Keeping a number
//     (digits zeroed) was rejected: it would read as a real value, and the masked form
//     ("************1111") is not a number.
// The output is valid JSON whenever the input is (replacements are JSON strings or null).
//
// Errors: the tokenizer's INVALID_ARGUMENT "json: offset N: ..." when the input is not
// strict JSON (see codec/json/tokenizer.h); output already appended stays, and the caller
// must abort the response (it cannot be completed validly). Errors stick.
//
// Memory: only the current token (at most codec::json::kMaxTokenBytes) plus the pointer
// and key of the current position; buffer_capacity() reports it.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/json/tokenizer.h"
#include "userspace/mask/masker.h"

namespace interlock::mask {

class JsonMasker {
 public:
  // `masker` must outlive the JsonMasker.
  explicit JsonMasker(const Masker& masker) : masker_(masker) {}

  // Appends the masked form of `chunk` to *out.
  absl::Status Feed(absl::string_view chunk, std::string* out);
  // End of the document: flushes a trailing top-level number; INVALID_ARGUMENT when the
  // document is incomplete.
  absl::Status Finish(std::string* out);

  const MaskCounts& counts() const { return counts_; }
  // Bytes held by the masker's own buffers (tokenizer + scratch), for memory bounds.
  size_t buffer_capacity() const;

 private:
  absl::Status OnToken(const codec::json::JsonToken& t, std::string* out);

  const Masker& masker_;
  codec::json::JsonTokenizer tokenizer_;
  MaskCounts counts_;
  // The field rule in force and the depth of the value it matched (its subtree is deeper).
  const ColumnRule* rule_ = nullptr;
  size_t rule_depth_ = 0;
  std::string decoded_;
  std::string masked_;
};

}  // namespace interlock::mask
