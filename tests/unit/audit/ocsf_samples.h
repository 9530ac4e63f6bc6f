// Representative audit events for the OCSF tests: at least one of every AuditKind, with
// the fields interlockd fills for that kind (userspace/daemon, userspace/proxy), and the
// variants that pick a different class or disposition (an HTTP hold, each approval
// outcome, a grant revoked, a token expiry, SSH commands, forwarding and logins).
#pragma once

#include <vector>

#include "interlock/v1/events.pb.h"

namespace interlock::audit::testing {

std::vector<v1::AuditEvent> OcsfSampleEvents();

}  // namespace interlock::audit::testing
