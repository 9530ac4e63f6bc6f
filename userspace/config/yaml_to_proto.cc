#include "userspace/config/yaml_to_proto.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "yaml-cpp/yaml.h"

namespace interlock::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

constexpr absl::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

// ---- paths ----------------------------------------------------------------------------

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A JSON string literal. Bytes >= 0x80 pass through (protobuf checks UTF-8).
std::string JsonQuote(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string MemberPath(absl::string_view parent, absl::string_view key) {
  if (!IsIdentifier(key)) return absl::StrCat(parent, "[", JsonQuote(key), "]");
  if (parent.empty()) return std::string(key);
  return absl::StrCat(parent, ".", key);
}

std::string IndexPath(absl::string_view parent, size_t index) {
  return absl::StrCat(parent, "[", index, "]");
}

// ---- YAML 1.2 core schema -------------------------------------------------------------

bool IsCoreNull(absl::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> CoreBool(absl::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool AllOf(absl::string_view s, bool (*pred)(unsigned char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [pred](char c) { return pred(static_cast<unsigned char>(c)); });
}

bool IsOctalDigit(unsigned char c) { return c >= '0' && c <= '7'; }
bool IsDecDigit(unsigned char c) { return absl::ascii_isdigit(c); }
bool IsHexDigit(unsigned char c) { return absl::ascii_isxdigit(c); }

// Digits without leading zeros ("" and "000" are "0").
std::string StripLeadingZeros(absl::string_view digits) {
  size_t i = digits.find_first_not_of('0');
  return i == absl::string_view::npos ? "0" : std::string(digits.substr(i));
}

// Core-schema integer as a JSON number: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
// A 0o/0x value that does not fit 64 bits stays a string, for protobuf to reject with
// the text as written.
std::optional<std::string> CoreInt(absl::string_view s) {
  if (absl::StartsWith(s, "0o") || absl::StartsWith(s, "0x")) {
    const bool hex = s[1] == 'x';
    absl::string_view digits = s.substr(2);
    if (!AllOf(digits, hex ? IsHexDigit : IsOctalDigit)) return std::nullopt;
    const unsigned base = hex ? 16 : 8;
    uint64_t value = 0;
    for (char c : digits) {
      unsigned d = IsDecDigit(static_cast<unsigned char>(c))
                       ? static_cast<unsigned>(c - '0')
                       : static_cast<unsigned>(absl::ascii_tolower(static_cast<unsigned char>(c)) -
                                               'a' + 10);
      if (value > (std::numeric_limits<uint64_t>::max() - d) / base) return JsonQuote(s);
      value = value * base + d;
    }
    return absl::StrCat(value);
  }
  absl::string_view digits = s;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (!AllOf(digits, IsDecDigit)) return std::nullopt;
  return absl::StrCat(negative ? "-" : "", StripLeadingZeros(digits));
}

// Core-schema float as JSON: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, and
// .inf/.nan, which JSON cannot write as numbers; protobuf's mapping takes the strings.
std::optional<std::string> CoreFloat(absl::string_view s) {
  for (absl::string_view inf : {".inf", ".Inf", ".INF"}) {
    if (s == inf || (s.size() == 5 && s[0] == '+' && s.substr(1) == inf)) return "\"Infinity\"";
    if (s.size() == 5 && s[0] == '-' && s.substr(1) == inf) return "\"-Infinity\"";
  }
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return "\"NaN\"";

  size_t i = 0;
  std::string out;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    if (s[i] == '-') out.push_back('-');
    ++i;
  }
  size_t start = i;
  while (i < s.size() && IsDecDigit(static_cast<unsigned char>(s[i]))) ++i;
  absl::string_view integer = s.substr(start, i - start);
  absl::string_view fraction;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    start = ++i;
    while (i < s.size() && IsDecDigit(static_cast<unsigned char>(s[i]))) ++i;
    fraction = s.substr(start, i - start);
  }
  if (integer.empty() && fraction.empty()) return std::nullopt;
  if (integer.empty() && !dot) return std::nullopt;
  std::string exponent;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    exponent = "e";
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) exponent.push_back(s[i++]);
    start = i;
    while (i < s.size() && IsDecDigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return std::nullopt;
    absl::StrAppend(&exponent, s.substr(start, i - start));
  }
  if (i != s.size()) return std::nullopt;
  absl::StrAppend(&out, StripLeadingZeros(integer));
  if (!fraction.empty()) absl::StrAppend(&out, ".", fraction);
  absl::StrAppend(&out, exponent);
  return out;
}

enum class ScalarKind { kNull, kBool, kInt, kFloat, kString };

struct ResolvedScalar {
  ScalarKind kind;
  std::string json;
};

ResolvedScalar ResolvePlain(absl::string_view s) {
  if (IsCoreNull(s)) return {ScalarKind::kNull, "null"};
  if (auto b = CoreBool(s)) return {ScalarKind::kBool, *b ? "true" : "false"};
  if (auto i = CoreInt(s)) return {ScalarKind::kInt, *std::move(i)};
  if (auto f = CoreFloat(s)) return {ScalarKind::kFloat, *std::move(f)};
  return {ScalarKind::kString, JsonQuote(s)};
}

// "tag:yaml.org,2002:str" -> "!!str", for messages.
std::string ShowTag(absl::string_view tag) {
  if (absl::ConsumePrefix(&tag, kCoreTagPrefix)) return absl::StrCat("!!", tag);
  return std::string(tag);
}

// ---- schema helpers -------------------------------------------------------------------

// google.protobuf.* messages (Struct, Value, Any, Duration, wrappers, ...) have special
// JSON forms; below them the walk does not follow the schema.
bool HasSpecialJson(const Descriptor* d) {
  return absl::StartsWith(d->full_name(), "google.protobuf.");
}

// Fields whose JSON form is a string: string, bytes and their wrappers.
bool IsStringField(const FieldDescriptor* f) {
  if (f == nullptr) return false;
  if (f->type() == FieldDescriptor::TYPE_STRING || f->type() == FieldDescriptor::TYPE_BYTES) {
    return true;
  }
  const Descriptor* m = f->message_type();
  return m != nullptr && (m->full_name() == "google.protobuf.StringValue" ||
                          m->full_name() == "google.protobuf.BytesValue");
}

const FieldDescriptor* FindField(const Descriptor* d, absl::string_view key) {
  std::string name(key);
  if (const FieldDescriptor* f = d->FindFieldByName(name)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string UnknownFieldMessage(const Descriptor* d, absl::string_view key) {
  const FieldDescriptor* best = nullptr;
  size_t best_distance = 3;  // suggest only close matches
  for (int i = 0; i < d->field_count(); ++i) {
    size_t distance = EditDistance(absl::AsciiStrToLower(key), d->field(i)->name());
    if (distance < best_distance && distance < key.size()) {
      best = d->field(i);
      best_distance = distance;
    }
  }
  if (best == nullptr) return "unknown field";
  return absl::StrCat("unknown field (did you mean \"", best->name(), "\"?)");
}

std::string EnumChoices(const EnumDescriptor* e) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) {
    if (!absl::EndsWith(e->value(i)->name(), "_UNSPECIFIED")) names.push_back(e->value(i)->name());
  }
  return absl::StrJoin(names, ", ");
}

// ---- the walk -------------------------------------------------------------------------

struct Problem {
  int line;  // 0: unknown
  std::string path;
  std::string what;
};

// Walks the YAML tree next to the schema, writing JSON, the source map, and problems.
// Two paths travel together: `path` is the one users see (map entries by key), `pb_path`
// is protobuf's (map entries by index: `m[0].value`), used to place protobuf's errors.
class Converter {
 public:
  explicit Converter(SourceMap* lines) : lines_(lines) {}

  void Root(const YAML::Node& node, const Descriptor* root) {
    if (!node.IsMap()) {
      AddProblem(LineOf(node, 1), "", "the top level must be a mapping of field names");
      json_ = "{}";
      return;
    }
    lines_->Add("", LineOf(node, 1));
    Value(node, nullptr, root, false, "", "", 1, 0);
  }

  const std::string& json() const { return json_; }
  // Set when the walk stopped early; nothing else is meaningful then.
  const std::optional<Problem>& fatal() const { return fatal_; }
  std::vector<Problem>& problems() { return problems_; }

  // Our path for a protobuf error path: translated through its nearest ancestor that
  // was walked under a different name (inside map fields).
  std::string DisplayPath(absl::string_view pb_path) const {
    std::string ancestor(pb_path);
    for (;;) {
      auto it = display_.find(ancestor);
      if (it != display_.end()) {
        return absl::StrCat(it->second, pb_path.substr(ancestor.size()));
      }
      if (ancestor.empty()) return std::string(pb_path);
      ancestor = ParentPath(ancestor);
    }
  }

 private:
  static int LineOf(const YAML::Node& node, int fallback) {
    if (node.IsNull()) return fallback;  // yaml-cpp marks empty values at the next token
    int line = node.Mark().line;
    return line >= 0 ? line + 1 : fallback;
  }

  void AddProblem(int line, std::string path, std::string what) {
    problems_.push_back({line, std::move(path), std::move(what)});
  }

  void Record(const std::string& path, const std::string& pb_path, int line) {
    lines_->Add(path, line);
    if (path != pb_path) display_.emplace(pb_path, path);
  }

  // The text of a mapping key, or nullopt (with a problem) when it is not a scalar.
  std::optional<std::string> KeyText(const YAML::Node& key, absl::string_view path, int line) {
    if (!key.IsScalar()) {
      AddProblem(line, std::string(path),
                 key.IsNull() ? "empty mapping key" : "mapping keys must be strings");
      return std::nullopt;
    }
    return key.Scalar();
  }

  bool TagAllowed(const YAML::Node& node, absl::string_view collection_tag, absl::string_view path,
                  int line) {
    const std::string& tag = node.Tag();
    if (tag == "?" || tag == "!" || tag == absl::StrCat(kCoreTagPrefix, collection_tag)) {
      return true;
    }
    AddProblem(line, std::string(path), absl::StrCat("unsupported tag ", ShowTag(tag)));
    return false;
  }

  // `field` is the field this value is written for (nullptr at the root and inside
  // schema-less JSON); `msg` the message type expected for a mapping; `element` is true
  // for one element of a repeated field.
  void Value(const YAML::Node& node, const FieldDescriptor* field, const Descriptor* msg,
             bool element, const std::string& path, const std::string& pb_path, int line,
             int depth) {
    // Both limits end the walk: with aliases either one can repeat without bound.
    if (fatal_) return;
    if (json_.size() > kMaxJsonBytes) {
      fatal_ = Problem{0, "",
                       absl::StrCat("the document expands to more than ", kMaxJsonBytes,
                                    " bytes of JSON (too many aliases?)")};
      return;
    }
    if (depth > kMaxYamlDepth) {
      fatal_ = Problem{line, path,
                       absl::StrCat("nested deeper than ", kMaxYamlDepth,
                                    " levels (or an alias contains itself)")};
      return;
    }
    switch (node.Type()) {
      case YAML::NodeType::Map:
        if (!TagAllowed(node, "map", path, line)) {
          json_ += "null";
        } else if (field != nullptr && field->is_map() && !element) {
          MapField(node, field, path, pb_path, line, depth);
        } else if (msg != nullptr && !HasSpecialJson(msg)) {
          Message(node, msg, path, pb_path, line, depth);
        } else {
          SchemalessMap(node, path, pb_path, line, depth);
        }
        return;
      case YAML::NodeType::Sequence: {
        if (!TagAllowed(node, "seq", path, line)) {
          json_ += "null";
          return;
        }
        const bool repeated =
            field != nullptr && field->is_repeated() && !field->is_map() && !element;
        json_ += '[';
        size_t index = 0;
        for (const YAML::Node& item : node) {
          if (index > 0) json_ += ',';
          std::string item_path = IndexPath(path, index);
          std::string item_pb_path = IndexPath(pb_path, index);
          int item_line = LineOf(item, line);
          Record(item_path, item_pb_path, item_line);
          if (repeated) {
            Value(item, field, field->message_type(), true, item_path, item_pb_path, item_line,
                  depth + 1);
          } else {
            Value(item, nullptr, nullptr, false, item_path, item_pb_path, item_line, depth + 1);
          }
          ++index;
        }
        json_ += ']';
        return;
      }
      case YAML::NodeType::Scalar:
        Scalar(node, field, path, line);
        return;
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        json_ += "null";
        return;
    }
  }

  void Message(const YAML::Node& node, const Descriptor* msg, const std::string& path,
               const std::string& pb_path, int line, int depth) {
    absl::flat_hash_map<int, int> seen;  // field number -> line
    absl::flat_hash_map<int, std::pair<const FieldDescriptor*, int>> oneofs;  // index -> set
    bool first = true;
    json_ += '{';
    for (const auto& kv : node) {
      int key_line = LineOf(kv.first, line);
      std::optional<std::string> key = KeyText(kv.first, path, key_line);
      if (!key) continue;
      const FieldDescriptor* f = FindField(msg, *key);
      std::string field_path = MemberPath(path, f != nullptr ? f->name() : *key);
      std::string field_pb_path = MemberPath(pb_path, f != nullptr ? f->name() : *key);
      if (f == nullptr) {
        Record(field_path, field_pb_path, key_line);
        AddProblem(key_line, field_path, UnknownFieldMessage(msg, *key));
        continue;
      }
      auto [it, inserted] = seen.emplace(f->number(), key_line);
      if (!inserted) {
        AddProblem(key_line, field_path,
                   absl::StrCat("duplicate field (first at line ", it->second, ")"));
        continue;
      }
      Record(field_path, field_pb_path, key_line);
      if (const auto* oneof = f->real_containing_oneof(); oneof != nullptr && !kv.second.IsNull()) {
        auto [o, fresh] = oneofs.emplace(oneof->index(), std::make_pair(f, key_line));
        if (!fresh) {
          AddProblem(key_line, field_path,
                     absl::StrCat("only one of the ", oneof->name(), " fields may be set, and \"",
                                  o->second.first->name(), "\" is set at line ", o->second.second));
          continue;
        }
      }
      if (!first) json_ += ',';
      first = false;
      absl::StrAppend(&json_, JsonQuote(f->name()), ":");
      Value(kv.second, f, f->message_type(), false, field_path, field_pb_path, key_line, depth + 1);
    }
    json_ += '}';
  }

  // A map<K, V> field: keys are map keys; protobuf names entries by index.
  void MapField(const YAML::Node& node, const FieldDescriptor* field, const std::string& path,
                const std::string& pb_path, int line, int depth) {
    const FieldDescriptor* value_field = field->message_type()->map_value();
    absl::flat_hash_map<std::string, int> seen;
    size_t index = 0;
    json_ += '{';
    for (const auto& kv : node) {
      int key_line = LineOf(kv.first, line);
      std::optional<std::string> key = KeyText(kv.first, path, key_line);
      if (!key) continue;
      std::string entry_path = absl::StrCat(path, "[", JsonQuote(*key), "]");
      auto [it, inserted] = seen.emplace(*key, key_line);
      if (!inserted) {
        AddProblem(key_line, entry_path,
                   absl::StrCat("duplicate key (first at line ", it->second, ")"));
        continue;
      }
      std::string entry_pb_path = IndexPath(pb_path, index);
      Record(entry_path, entry_pb_path, key_line);
      display_.emplace(absl::StrCat(entry_pb_path, ".key"), entry_path);
      display_.emplace(absl::StrCat(entry_pb_path, ".value"), entry_path);
      if (index > 0) json_ += ',';
      ++index;
      absl::StrAppend(&json_, JsonQuote(*key), ":");
      Value(kv.second, value_field, value_field->message_type(), false, entry_path,
            absl::StrCat(entry_pb_path, ".value"), key_line, depth + 1);
    }
    json_ += '}';
  }

  // A mapping with no schema to follow (google.protobuf.Struct, or a mistake that
  // protobuf will name).
  void SchemalessMap(const YAML::Node& node, const std::string& path, const std::string& pb_path,
                     int line, int depth) {
    absl::flat_hash_map<std::string, int> seen;
    bool first = true;
    json_ += '{';
    for (const auto& kv : node) {
      int key_line = LineOf(kv.first, line);
      std::optional<std::string> key = KeyText(kv.first, path, key_line);
      if (!key) continue;
      std::string member_path = MemberPath(path, *key);
      auto [it, inserted] = seen.emplace(*key, key_line);
      if (!inserted) {
        AddProblem(key_line, member_path,
                   absl::StrCat("duplicate key (first at line ", it->second, ")"));
        continue;
      }
      std::string member_pb_path = MemberPath(pb_path, *key);
      Record(member_path, member_pb_path, key_line);
      if (!first) json_ += ',';
      first = false;
      absl::StrAppend(&json_, JsonQuote(*key), ":");
      Value(kv.second, nullptr, nullptr, false, member_path, member_pb_path, key_line, depth + 1);
    }
    json_ += '}';
  }

  void Scalar(const YAML::Node& node, const FieldDescriptor* field, const std::string& path,
              int line) {
    const std::string& text = node.Scalar();
    const std::string& tag = node.Tag();
    const bool plain = tag == "?";
    const bool string_field = IsStringField(field);

    ResolvedScalar value{ScalarKind::kString, ""};
    if (plain) {
      value = ResolvePlain(text);
      // The JSON mapping rejects a number for a string field; the user meant the text.
      if (string_field && value.kind != ScalarKind::kNull)
        value = {ScalarKind::kString, JsonQuote(text)};
    } else if (tag == "!" || tag == absl::StrCat(kCoreTagPrefix, "str")) {
      value = {ScalarKind::kString, JsonQuote(text)};
    } else {
      absl::string_view name = tag;
      ScalarKind want;
      if (!absl::ConsumePrefix(&name, kCoreTagPrefix)) {
        AddProblem(line, path, absl::StrCat("unsupported tag ", ShowTag(tag)));
        json_ += "null";
        return;
      }
      if (name == "null") {
        want = ScalarKind::kNull;
      } else if (name == "bool") {
        want = ScalarKind::kBool;
      } else if (name == "int") {
        want = ScalarKind::kInt;
      } else if (name == "float") {
        want = ScalarKind::kFloat;
      } else {
        AddProblem(line, path, absl::StrCat("unsupported tag ", ShowTag(tag)));
        json_ += "null";
        return;
      }
      value = ResolvePlain(text);
      const bool ok =
          value.kind == want || (want == ScalarKind::kFloat && value.kind == ScalarKind::kInt);
      if (!ok) {
        AddProblem(line, path,
                   absl::StrCat(JsonQuote(text), " is not a valid ", ShowTag(tag), " value"));
        json_ += "null";
        return;
      }
    }

    if (field != nullptr && field->enum_type() != nullptr && value.kind == ScalarKind::kString &&
        field->enum_type()->full_name() != "google.protobuf.NullValue" &&
        field->enum_type()->FindValueByName(text) == nullptr) {
      AddProblem(line, path,
                 absl::StrCat("unknown value ", JsonQuote(text), " for enum ",
                              field->enum_type()->full_name(), " (expected one of ",
                              EnumChoices(field->enum_type()), ")"));
      json_ += "null";
      return;
    }
    json_ += value.json;
  }

  SourceMap* lines_;
  std::string json_;
  std::optional<Problem> fatal_;
  std::vector<Problem> problems_;
  absl::flat_hash_map<std::string, std::string> display_;  // pb path -> our path
};

// Splits protobuf's JSON parse error into (path, what). Its messages look like
//   (resources[1].port): invalid value "abc" for type TYPE_UINT32
//   (resources[0]) adress: Cannot find field.
//   foo: Cannot find field.
//   (resources[0]): invalid value Starting an object on a scalar field for type address
Problem SplitProtobufError(absl::string_view message) {
  std::string path;
  absl::string_view what = message;
  if (absl::StartsWith(message, "(")) {
    size_t close = message.find(')');
    if (close != absl::string_view::npos) {
      path = std::string(message.substr(1, close - 1));
      what = message.substr(close + 1);
      if (absl::ConsumePrefix(&what, " ")) {
        size_t colon = what.find(": ");
        if (colon != absl::string_view::npos) {
          path = MemberPath(path, what.substr(0, colon));
          what = what.substr(colon + 2);
        }
      } else {
        absl::ConsumePrefix(&what, ": ");
      }
    }
  } else if (size_t colon = message.find(": ");
             colon != absl::string_view::npos && IsIdentifier(message.substr(0, colon))) {
    path = std::string(message.substr(0, colon));
    what = message.substr(colon + 2);
  } else {
    absl::ConsumePrefix(&what, ": ");
  }

  std::string text(what);
  constexpr absl::string_view kObjectOnScalar =
      "invalid value Starting an object on a scalar field for type ";
  if (text == "Cannot find field.") {
    text = "unknown field";
  } else if (absl::StartsWith(text, kObjectOnScalar)) {
    path = MemberPath(path, absl::string_view(text).substr(kObjectOnScalar.size()));
    text = "expected a single value, got a mapping";
  } else if (text == "Proto field is not repeating, cannot start list.") {
    text = "expected a single value, got a list";
  }
  // "for type type.googleapis.com/interlock.v1.Listener" -> "for type interlock.v1.Listener"
  absl::StrReplaceAll({{"type.googleapis.com/", ""}}, &text);
  return {0, std::move(path), std::move(text)};
}

std::string FormatProblem(absl::string_view file_name, const Problem& p) {
  std::string out(file_name);
  if (p.line > 0) absl::StrAppend(&out, ":", p.line);
  if (!p.path.empty()) absl::StrAppend(&out, ": ", p.path);
  absl::StrAppend(&out, ": ", p.what);
  return out;
}

absl::Status Report(absl::string_view file_name, std::vector<Problem> problems) {
  // Document order; problems without a line last.
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    int la = a.line > 0 ? a.line : std::numeric_limits<int>::max();
    int lb = b.line > 0 ? b.line : std::numeric_limits<int>::max();
    return la < lb;
  });
  std::vector<std::string> lines;
  lines.reserve(problems.size());
  for (const Problem& p : problems) lines.push_back(FormatProblem(file_name, p));
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace

void SourceMap::Add(std::string path, int line) { lines_.emplace(std::move(path), line); }

int SourceMap::Line(absl::string_view path) const {
  std::string current(path);
  for (;;) {
    auto it = lines_.find(current);
    if (it != lines_.end()) return it->second;
    if (current.empty()) return 0;
    current = ParentPath(current);
  }
}

std::string SourceMap::Where(absl::string_view path) const {
  int line = Line(path);
  std::string out = file_name_;
  if (line > 0) absl::StrAppend(&out, ":", line);
  if (!path.empty()) absl::StrAppend(&out, ": ", path);
  return out;
}

std::string ParentPath(absl::string_view path) {
  // Walk the segments forward (a quoted key may hold '.', '[' or ']').
  size_t last = 0;
  size_t i = 0;
  const size_t n = path.size();
  while (i < n) {
    last = i;
    if (path[i] == '[') {
      if (i + 1 < n && path[i + 1] == '"') {
        size_t j = i + 2;
        while (j < n && path[j] != '"') j += path[j] == '\\' ? 2 : 1;
        i = std::min(n, j + 2);  // past `"]`
      } else {
        size_t close = path.find(']', i);
        i = close == absl::string_view::npos ? n : close + 1;
      }
    } else {
      if (path[i] == '.') ++i;
      while (i < n && path[i] != '.' && path[i] != '[') ++i;
    }
  }
  return std::string(path.substr(0, last));
}

absl::Status YamlToProto(absl::string_view yaml_text, absl::string_view file_name,
                         google::protobuf::Message* out, SourceMap* lines_out) {
  out->Clear();
  SourceMap lines{std::string(file_name)};
  auto finish = [&](absl::Status status) {
    if (lines_out != nullptr) *lines_out = std::move(lines);
    return status;
  };
  if (yaml_text.size() > kMaxYamlBytes) {
    return finish(absl::InvalidArgumentError(absl::StrCat(
        file_name, ": ", yaml_text.size(), " bytes is larger than the limit of ", kMaxYamlBytes)));
  }

  Converter converter(&lines);
  // yaml-cpp reports errors by throwing; this is the one place they are caught.
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(yaml_text));
    if (docs.size() > 1) {
      int line = docs[1].Mark().line >= 0 ? docs[1].Mark().line + 1 : 0;
      return finish(Report(file_name, {{line, "", "only one YAML document is allowed"}}));
    }
    if (docs.empty() || docs[0].IsNull()) {
      lines.Add("", 1);
      return finish(absl::OkStatus());  // an empty document is an empty message
    }
    converter.Root(docs[0], out->GetDescriptor());
  } catch (const YAML::Exception& e) {
    int line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    return finish(Report(file_name, {{line, "", absl::StrCat("invalid YAML: ", e.msg)}}));
  }
  if (converter.fatal()) return finish(Report(file_name, {*converter.fatal()}));

  std::vector<Problem> problems = std::move(converter.problems());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  // protobuf 3.21 has its own Status type.
  auto parsed = google::protobuf::util::JsonStringToMessage(converter.json(), out, options);
  if (!parsed.ok()) {
    Problem p = SplitProtobufError(parsed.message().ToString());
    p.path = converter.DisplayPath(p.path);
    p.line = lines.Line(p.path);
    problems.push_back(std::move(p));
  }
  if (!problems.empty()) return finish(Report(file_name, std::move(problems)));
  return finish(absl::OkStatus());
}

}  // namespace interlock::config
