#include "userspace/mask/json_masker.h"

#include "userspace/common/json_text.h"
#include "userspace/common/status_macros.h"

namespace interlock::mask {

using codec::json::JsonToken;
using codec::json::JsonTokenType;

size_t JsonMasker::buffer_capacity() const {
  return tokenizer_.buffer_capacity() + decoded_.capacity() + masked_.capacity();
}

absl::Status JsonMasker::Feed(absl::string_view chunk, std::string* out) {
  return tokenizer_.Feed(chunk, [&](const JsonToken& t) { return OnToken(t, out); });
}

absl::Status JsonMasker::Finish(std::string* out) {
  return tokenizer_.Finish([&](const JsonToken& t) { return OnToken(t, out); });
}

absl::Status JsonMasker::OnToken(const JsonToken& t, std::string* out) {
  // A rule ends when its value does: at the end token of its container (same depth), or
  // right after its scalar.
  const bool value_start = codec::json::IsScalarValue(t.type) ||
                           t.type == JsonTokenType::kBeginObject ||
                           t.type == JsonTokenType::kBeginArray;
  if (value_start && rule_ == nullptr && !t.key.empty() && masker_.has_column_rules()) {
    rule_ = masker_.MatchColumn("", "", "", t.key);
    rule_depth_ = t.depth;
  }
  const ColumnRule* rule = rule_;
  const bool ends_rule =
      rule_ != nullptr && t.depth == rule_depth_ &&
      (codec::json::IsScalarValue(t.type) || t.type == JsonTokenType::kEndObject ||
       t.type == JsonTokenType::kEndArray);
  if (ends_rule) rule_ = nullptr;

  if (!codec::json::IsScalarValue(t.type)) {
    out->append(t.raw.data(), t.raw.size());
    return absl::OkStatus();
  }
  absl::string_view text = t.raw;
  if (t.type == JsonTokenType::kString) {
    decoded_.clear();
    INTERLOCK_RETURN_IF_ERROR(codec::json::DecodeJsonString(t.raw, &decoded_));
    text = decoded_;
  }
  if (rule != nullptr) {
    if (t.type == JsonTokenType::kNull) {
      out->append("null");
      return absl::OkStatus();
    }
    counts_.AddColumn(rule->text);
    masked_.clear();
    if (masker_.AppendWhole(*rule, text, &masked_)) {
      AppendJsonQuoted(masked_, out);
    } else {
      out->append("null");
    }
    return absl::OkStatus();
  }
  if ((t.type == JsonTokenType::kString || t.type == JsonTokenType::kNumber) &&
      masker_.has_detectors()) {
    masked_.clear();
    if (masker_.MaskText(text, &masked_, &counts_)) {
      AppendJsonQuoted(masked_, out);
      return absl::OkStatus();
    }
  }
  out->append(t.raw.data(), t.raw.size());
  return absl::OkStatus();
}

}  // namespace interlock::mask
