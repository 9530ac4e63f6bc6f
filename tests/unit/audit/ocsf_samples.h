// Representative audit events for the OCSF tests: at least one of every AuditKind, with
// the fields interlockd fills for that kind (userspace/daemon, userspace/proxy), and the
// variants that pick a different class or disposition (an HTTP hold, each approval
// outcome, a grant revoked, a token expiry, SSH commands, forwarding and logins).
#pragma once

#include <string>
#include <vector>

#include "interlock/v1/events.pb.h"

namespace interlock::audit::testing {

std::vector<v1::AuditEvent> OcsfSampleEvents();

// "KIND outcome", with " http" / " ssh" for those protocols: the samples are unique on it.
std::string SampleKey(const v1::AuditEvent& e);

// The SSH sample of `kind` with `outcome`; an empty event when there is none.
v1::AuditEvent SshSampleEvent(v1::AuditKind kind, const std::string& outcome);

}  // namespace interlock::audit::testing
