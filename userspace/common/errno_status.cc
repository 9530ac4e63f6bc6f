#include "userspace/common/errno_status.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace interlock {

absl::Status ErrnoStatus(int err, absl::string_view context) {
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof buf);
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(context, ": ", text));
}

}  // namespace interlock
