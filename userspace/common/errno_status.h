// Maps an errno to the most specific canonical absl::Status, with context:
//   return ErrnoStatus(errno, "connect 127.0.0.1:5432");
//   // -> UNAVAILABLE "connect 127.0.0.1:5432: Connection refused"
#pragma once

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace interlock {

absl::Status ErrnoStatus(int err, absl::string_view context);

}  // namespace interlock
