#include "userspace/codec/json/extract.h"

#include "absl/container/flat_hash_set.h"
#include "userspace/codec/json/tokenizer.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::json {

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ExtractJsonFields(
    absl::string_view body, const std::vector<std::string>& pointers) {
  const absl::flat_hash_set<std::string> wanted(pointers.begin(), pointers.end());
  absl::flat_hash_map<std::string, std::string> fields;
  // Containers being captured: (pointer, offset of the opening bracket).
  std::vector<std::pair<std::string, uint64_t>> open;
  JsonTokenizer tokenizer(JsonTokenizer::Options{.refuse_duplicate_keys = true});
  const auto sink = [&](const JsonToken& t) -> absl::Status {
    switch (t.type) {
      case JsonTokenType::kBeginObject:
      case JsonTokenType::kBeginArray:
        if (wanted.contains(t.pointer)) open.emplace_back(std::string(t.pointer), t.offset);
        break;
      case JsonTokenType::kEndObject:
      case JsonTokenType::kEndArray:
        if (!open.empty() && open.back().first == t.pointer) {
          fields[open.back().first] =
              std::string(body.substr(open.back().second, t.offset + 1 - open.back().second));
          open.pop_back();
        }
        break;
      case JsonTokenType::kString:
        if (wanted.contains(t.pointer)) {
          std::string value;
          INTERLOCK_RETURN_IF_ERROR(DecodeJsonString(t.raw, &value));
          fields[t.pointer] = std::move(value);
        }
        break;
      case JsonTokenType::kNumber:
      case JsonTokenType::kTrue:
      case JsonTokenType::kFalse:
      case JsonTokenType::kNull:
        if (wanted.contains(t.pointer)) fields[t.pointer] = std::string(t.raw);
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
