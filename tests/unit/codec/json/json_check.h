// Test helpers for interlock_codec_json: a token stream as text, read whole or in chunks.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/json/tokenizer.h"

namespace interlock::codec::json::testing {

// Tokens (adjacent whitespace merged) as "type|raw|pointer|key" lines, or "error: ...".
inline std::string Transcript(const std::vector<absl::string_view>& chunks) {
  std::string out;
  std::string ws;
  const auto flush = [&] {
    if (!ws.empty()) absl::StrAppend(&out, "ws|", ws, "\n");
    ws.clear();
  };
  JsonTokenizer tok;
  const auto sink = [&](const JsonToken& t) -> absl::Status {
    if (t.type == JsonTokenType::kWhitespace) {
      ws.append(t.raw.data(), t.raw.size());
      return absl::OkStatus();
    }
    flush();
    absl::StrAppend(&out, static_cast<int>(t.type), "|", t.raw, "|", t.pointer, "|", t.key, "|",
                    t.offset, "|", t.depth, "\n");
    return absl::OkStatus();
  };
  for (absl::string_view c : chunks) {
    absl::Status st = tok.Feed(c, sink);
    if (!st.ok()) {
      flush();
      return absl::StrCat(out, "error: ", st.message());
    }
  }
  absl::Status st = tok.Finish(sink);
  flush();
  if (!st.ok()) return absl::StrCat(out, "error: ", st.message());
  return out;
}

inline std::vector<absl::string_view> RandomSplit(absl::string_view in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<absl::string_view> chunks;
  while (!in.empty()) {
    const size_t n = std::uniform_int_distribution<size_t>(1, 17)(rng);
    chunks.push_back(in.substr(0, n));
    in.remove_prefix(std::min(n, in.size()));
  }
  return chunks;
}

inline std::vector<absl::string_view> Bytes(absl::string_view in) {
  std::vector<absl::string_view> chunks;
  for (size_t i = 0; i < in.size(); ++i) chunks.push_back(in.substr(i, 1));
  return chunks;
}

// Ok status when `in` is one valid document.
inline absl::Status Validate(absl::string_view in) {
  JsonTokenizer tok;
  const auto sink = [](const JsonToken&) { return absl::OkStatus(); };
  absl::Status st = tok.Feed(in, sink);
  if (!st.ok()) return st;
  return tok.Finish(sink);
}

}  // namespace interlock::codec::json::testing
