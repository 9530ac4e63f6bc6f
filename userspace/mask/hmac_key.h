// The mask key: 32 random bytes kept in <state_dir>/mask.key (0600), the HMAC-SHA256 key
// of MASK_STYLE_KEYED_HASH pseudonyms. Created once on first use; afterwards the same
// key is loaded on every start, so pseudonyms stay stable across restarts (and change
// everywhere at once if the file is deleted).
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::string key, LoadOrCreateMaskKey("/var/lib/interlock"));
//   INTERLOCK_ASSIGN_OR_RETURN(auto masker, Masker::Create(profile, key));
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace interlock::mask {

inline constexpr size_t kMaskKeyBytes = 32;
inline constexpr char kMaskKeyFileName[] = "mask.key";

// Returns the key from <state_dir>/mask.key, creating it when absent: RAND_bytes, written
// to a temporary file opened O_CREAT|O_EXCL|O_NOFOLLOW with mode 0600, fsynced, then
// linked into place (link(2) never replaces, so two racing processes agree on one key).
// The state directory must exist.
// Errors: FAILED_PRECONDITION when the file is not a regular file, is group/other
// accessible (mode & 077), is owned by another user, or is not exactly 32 bytes (a key is
// never silently replaced); a symlink fails with the errno status of O_NOFOLLOW (ELOOP);
// other I/O errors as ErrnoStatus (e.g. NOT_FOUND for a missing state dir); INTERNAL
// when the random generator fails. Every message names the path.
absl::StatusOr<std::string> LoadOrCreateMaskKey(const std::string& state_dir);

}  // namespace interlock::mask
