// The version of this build of Interlock (CMake's PROJECT_VERSION), in one place: what
// `interlock --version`, `interlockd --version`, `interlock status`, the start-up audit
// event and the OCSF/ECS product fields say.
#pragma once

namespace interlock {

// "0.1.0".
const char* InterlockVersion();

}  // namespace interlock
