#include "userspace/control/client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/framing.h"
#include "userspace/net/socket.h"

namespace interlock::control {

absl::StatusOr<v1::ControlResponse> CallControl(const std::string& socket_path,
                                                const v1::ControlRequest& request) {
  auto fd = net::ConnectUnix(socket_path);
  if (!fd.ok()) {
    return absl::UnavailableError(
        absl::StrCat("interlockd is not reachable (", fd.status().message(), ")"));
  }
  timeval tv{30, 0};
  ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // The daemon may refuse the caller at accept and close before reading the request;
  // its answer is still queued on this unix socket, so read it even when our write
  // failed (EPIPE) and report the write error only if there is no answer.
  absl::Status wrote = net::WriteAll(fd->get(), EncodeFrame(request));
  char hdr[4];
  absl::Status got = net::ReadExact(fd->get(), hdr, 4);
  if (!got.ok()) {
    INTERLOCK_RETURN_IF_ERROR(Annotate(wrote, "control: sending request"));
    return Annotate(got, "control: reading response");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(hdr);
  uint32_t n = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (n > kMaxControlFrameBytes) {
    return absl::DataLossError(absl::StrCat("control: response length ", n, " too large"));
  }
  std::string body(n, '\0');
  INTERLOCK_RETURN_IF_ERROR(net::ReadExact(fd->get(), body.data(), n));
  v1::ControlResponse resp;
  if (!resp.ParseFromString(body)) return absl::DataLossError("control: bad response");
  if (resp.error_code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(resp.error_code()), resp.error());
  }
  return resp;
}

}  // namespace interlock::control
