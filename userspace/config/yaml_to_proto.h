// YAML -> protobuf message, through protobuf's JSON mapping, with errors that name the
// file, line and field. Users write YAML; every schema is a proto (schemas/interlock/v1).
// This converter is generic: config and policy files both go through it.
//
//   interlock::v1::Config proto;
//   SourceMap lines;
//   INTERLOCK_RETURN_IF_ERROR(YamlToProto(text, "interlock.yaml", &proto, &lines));
//   // later, validation names a line too:
//   errors.push_back(absl::StrCat(lines.Where("resources[1].port"), ": out of range"));
//   // -> "interlock.yaml:14: resources[1].port: out of range"
//
// How YAML becomes JSON:
//   - plain scalars that are YAML 1.2 core-schema null/bool/int/float become JSON
//     literals (0x1f and 0o17 become 31 and 15, .inf becomes "Infinity"); quoted and block
//     scalars, and every other plain scalar, become JSON strings;
//   - a plain scalar given to a string field stays the text as written
//     (`name: 1.10` is "1.10"), since the JSON mapping would reject a number there;
//   - mapping keys must be scalars; keys of message mappings are field names
//     (snake_case or lowerCamelCase); only the standard tags !!str !!int !!float !!bool
//     !!null !!map !!seq are accepted; one document per file.
// Checked while walking the schema, and all reported together: unknown fields (with a
// "did you mean" hint), duplicate keys, two members of one oneof, unknown enum names.
// Everything else (a value of the wrong type or out of the type's range) is protobuf's
// JSON parser's verdict, which stops at its first error.
//
// Field paths look like protobuf's own: `resources[1].port`, `listener`, and for map
// fields and keys that are not identifiers `labels["app.kubernetes.io/name"]`.
#pragma once

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace interlock::config {

// Largest YAML document accepted, and largest JSON it may expand to (aliases can
// multiply a small document).
inline constexpr size_t kMaxYamlBytes = 4 << 20;
inline constexpr size_t kMaxJsonBytes = 16 << 20;
// Deepest nesting of mappings and sequences (also stops self-referencing aliases).
inline constexpr int kMaxYamlDepth = 64;

// Where each field of a YAML document was written: field path -> 1-based line.
class SourceMap {
 public:
  SourceMap() = default;
  explicit SourceMap(std::string file_name) : file_name_(std::move(file_name)) {}

  const std::string& file_name() const { return file_name_; }
  void set_file_name(std::string file_name) { file_name_ = std::move(file_name); }

  // Records that `path` was written at `line` (1-based). The first record of a path wins.
  void Add(std::string path, int line);

  // The line of `path`, else of its nearest recorded ancestor (a field that was not
  // written is reported where its parent is), else 0.
  int Line(absl::string_view path) const;

  // True when `path` itself was written (not just an ancestor).
  bool Contains(absl::string_view path) const { return lines_.contains(path); }

  // The prefix of every message about `path`: "file:line: path". Without a known line,
  // "file: path"; with an empty path, "file:line".
  std::string Where(absl::string_view path) const;

  size_t size() const { return lines_.size(); }

 private:
  std::string file_name_;
  absl::flat_hash_map<std::string, int> lines_;
};

// The path of the field that contains `path`: "a.b[2]" -> "a.b", `m["x.y"].n` ->
// `m["x.y"]`, "a" -> "", "" -> "".
std::string ParentPath(absl::string_view path);

// Parses `yaml_text` into `out` (cleared first). `file_name` is only used in messages.
// When `lines_out` is given it is replaced with the source map of the document, also on
// error (as far as it got).
// Errors: INVALID_ARGUMENT, one problem per line, each "file:line: path: what" (or
// "file:line: what" for YAML syntax errors), in document order.
absl::Status YamlToProto(absl::string_view yaml_text, absl::string_view file_name,
                         google::protobuf::Message* out, SourceMap* lines_out = nullptr);

}  // namespace interlock::config
