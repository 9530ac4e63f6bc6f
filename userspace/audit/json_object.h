// A JSON object written member by member into a string, for the audit formats that are
// not the protobuf JSON mapping (ocsf.cc, ecs.cc). Internal to userspace/audit.
//
//   std::string out;
//   {
//     JsonObject o(&out);
//     o.Str("name", "x");                                   // left out when empty
//     o.Object("nested", [](JsonObject& n) { n.Int("a", 1); });
//   }  // out == R"({"name":"x","nested":{"a":1}})"
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/common/json_text.h"

namespace interlock::audit::internal {

// A JSON object being written: members in call order, `"key":` after a comma when needed.
class JsonObject {
 public:
  explicit JsonObject(std::string* out) : out_(out) { out_->push_back('{'); }
  ~JsonObject() { out_->push_back('}'); }
  JsonObject(const JsonObject&) = delete;
  JsonObject& operator=(const JsonObject&) = delete;

  std::string* Key(absl::string_view key) {
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->push_back('"');
    out_->append(key.data(), key.size());  // keys are our own ASCII names
    out_->append("\":");
    return out_;
  }
  // Strings are left out when empty (OCSF: absent rather than "").
  void Str(absl::string_view key, absl::string_view v) {
    if (!v.empty()) AppendJsonQuoted(v, Key(key));
  }
  void Int(absl::string_view key, int64_t v) { absl::StrAppend(Key(key), v); }
  void Uint(absl::string_view key, uint64_t v) { absl::StrAppend(Key(key), v); }
  void Bool(absl::string_view key, bool v) { Key(key)->append(v ? "true" : "false"); }
  // A nested object written by `fill(JsonObject&)`.
  template <typename F>
  void Object(absl::string_view key, F fill) {
    JsonObject o(Key(key));
    fill(o);
  }
  // Raw JSON text (already valid).
  void Raw(absl::string_view key, absl::string_view json) { Key(key)->append(json.data(), json.size()); }
  // The members of another object written by JsonObject (`{...}`), appended to this one.
  void Members(absl::string_view object_json) {
    if (object_json.size() <= 2) return;  // {}
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->append(object_json.data() + 1, object_json.size() - 2);
  }

 private:
  std::string* out_;
  bool first_ = true;
};

}  // namespace interlock::audit::internal
