// Small file helpers shared by config, record and identity. Every error names the path.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace interlock {

// Reads a whole regular file. NOT_FOUND when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Reads a whole private file: a regular file owned by the effective uid that group and
// other cannot access. PERMISSION_DENIED naming the path and mode (or owner) otherwise. The
// checks and the read use one descriptor, so a rename in between cannot swap the file.
absl::StatusOr<std::string> ReadPrivateFile(const std::string& path);

// Writes `data` to `path` atomically (temp file + fsync + rename) with `mode`.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, int mode);

// WriteFileAtomic for secrets and for files that must not be clobbered: the temp file is
// created O_EXCL|O_NOFOLLOW with `mode` (never wider than `mode`, not even for a moment),
// and unless `replace` the rename refuses an existing `path` (ALREADY_EXISTS).
absl::Status WriteNewFileAtomic(const std::string& path, absl::string_view data, int mode,
                                bool replace);

// mkdir -p with `mode` for each created component.
absl::Status MakeDirs(const std::string& path, int mode);

// Lowercase hex of `bytes`.
std::string HexEncode(absl::string_view bytes);

}  // namespace interlock
