#include "userspace/common/version.h"

namespace interlock {

// INTERLOCK_VERSION is defined for this file alone (userspace/common/CMakeLists.txt).
const char* InterlockVersion() { return INTERLOCK_VERSION; }

}  // namespace interlock
