// Small file helpers shared by config, record and identity. Every error names the path.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace interlock {

// Reads a whole regular file. NOT_FOUND when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` atomically (temp file + fsync + rename) with `mode`.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, int mode);

// mkdir -p with `mode` for each created component.
absl::Status MakeDirs(const std::string& path, int mode);

// Lowercase hex of `bytes`.
std::string HexEncode(absl::string_view bytes);

}  // namespace interlock
