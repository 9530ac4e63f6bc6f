// Blocking control client for the `interlock` CLI: one request, one response.
//   INTERLOCK_ASSIGN_OR_RETURN(v1::ControlResponse resp, CallControl(path, req));
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "interlock/v1/control.pb.h"

namespace interlock::control {

// UNAVAILABLE when interlockd is not running; the daemon's own error (with its code)
// when it refused the request.
absl::StatusOr<v1::ControlResponse> CallControl(const std::string& socket_path,
                                                const v1::ControlRequest& request);

}  // namespace interlock::control
