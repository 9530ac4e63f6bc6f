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
  INTERLOCK_RETURN_IF_ERROR(net::WriteAll(fd->get(), EncodeFrame(request)));
  char hdr[4];
  INTERLOCK_RETURN_IF_ERROR(
      Annotate(net::ReadExact(fd->get(), hdr, 4), "control: reading response"));
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
