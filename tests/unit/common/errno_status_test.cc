#include "userspace/common/errno_status.h"

#include <errno.h>

#include "gtest/gtest.h"

namespace interlock {
namespace {

TEST(ErrnoStatus, PrependsContextToStrerror) {
  absl::Status st = ErrnoStatus(ECONNREFUSED, "connect 127.0.0.1:5432");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "connect 127.0.0.1:5432: Connection refused");
}

TEST(ErrnoStatus, MapsToAbslCanonicalCodes) {
  // The mapping is absl::ErrnoToStatusCode's; these are the errnos the daemon meets.
  struct Case {
    int err;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {EEXIST, absl::StatusCode::kAlreadyExists},
      {EINVAL, absl::StatusCode::kInvalidArgument},
      {ECONNREFUSED, absl::StatusCode::kUnavailable},
      {ECONNRESET, absl::StatusCode::kUnavailable},
      {EAGAIN, absl::StatusCode::kUnavailable},
      {ETIMEDOUT, absl::StatusCode::kDeadlineExceeded},
      {EPIPE, absl::StatusCode::kFailedPrecondition},
      {ENOTDIR, absl::StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    absl::Status st = ErrnoStatus(c.err, "op");
    EXPECT_EQ(st.code(), c.code) << "errno " << c.err << ": " << st;
    EXPECT_EQ(st.message().substr(0, 4), "op: ") << st;
  }
}

TEST(ErrnoStatus, UnknownErrnoStillHasAMessage) {
  absl::Status st = ErrnoStatus(99999, "ioctl");
  EXPECT_FALSE(st.ok());
  EXPECT_GT(st.message().size(), std::string("ioctl: ").size());
}

}  // namespace
}  // namespace interlock
