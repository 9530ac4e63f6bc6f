#include "userspace/codec/json/extract.h"

#include "absl/container/flat_hash_set.h"
#include "userspace/codec/json/tokenizer.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::json {

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ExtractJsonFields(
    absl::string_view body, const std::vector<std::string>& pointers) {
  // Matched as a case-insensitive upstream reads member names (FoldKeyCase), the value
  // reported under every pointer asked for that folds to the member's.
  absl::flat_hash_map<std::string, std::vector<std::string>> wanted;
  for (const std::string& p : pointers) wanted[FoldKeyCase(p)].push_back(p);
  absl::flat_hash_map<std::string, std::string> fields;
  const auto set = [&](const std::vector<std::string>& names, const std::string& value) {
    for (const std::string& n : names) fields[n] = value;
  };
  // Containers being captured: the pointers asked for, the opening bracket's offset, and the
  // container's own pointer (its end token carries the same).
  struct Open {
    const std::vector<std::string>* names;
    uint64_t offset;
    std::string pointer;
  };
  std::vector<Open> open;
  JsonTokenizer tokenizer(JsonTokenizer::Options{.refuse_duplicate_keys = true, .fold_key_case = true});
  const auto sink = [&](const JsonToken& t) -> absl::Status {
    if (t.type == JsonTokenType::kKey || t.type == JsonTokenType::kComma || t.type == JsonTokenType::kColon ||
        t.type == JsonTokenType::kWhitespace) {
      return absl::OkStatus();
    }
    const bool ends = t.type == JsonTokenType::kEndObject || t.type == JsonTokenType::kEndArray;
    if (ends) {
      if (!open.empty() && open.back().pointer == t.pointer) {
        set(*open.back().names, std::string(body.substr(open.back().offset, t.offset + 1 - open.back().offset)));
        open.pop_back();
      }
      return absl::OkStatus();
    }
    auto it = wanted.find(FoldKeyCase(t.pointer));
    if (it == wanted.end()) return absl::OkStatus();
    switch (t.type) {
      case JsonTokenType::kBeginObject:
      case JsonTokenType::kBeginArray:
        open.push_back({&it->second, t.offset, std::string(t.pointer)});
        break;
      case JsonTokenType::kString: {
        std::string value;
        INTERLOCK_RETURN_IF_ERROR(DecodeJsonString(t.raw, &value));
        set(it->second, value);
        break;
      }
      case JsonTokenType::kNumber:
      case JsonTokenType::kTrue:
      case JsonTokenType::kFalse:
      case JsonTokenType::kNull:
        set(it->second, std::string(t.raw));
        break;
      default:
        break;
    }
    return absl::OkStatus();
  };
  INTERLOCK_RETURN_IF_ERROR(tokenizer.Feed(body, sink));
  INTERLOCK_RETURN_IF_ERROR(tokenizer.Finish(sink));
  return fields;
}

}  // namespace interlock::codec::json
