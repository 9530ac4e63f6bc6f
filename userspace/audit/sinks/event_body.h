// EventBody: one audit event as a sink carries it (syslog MSG, the HEC "event"): one
// JSON object on one line, no trailing newline, in the sink's format —
//   kJson  the protobuf-JSON object of a line of the local audit file (json_writer.h);
//   kOcsf  OCSF 1.3.0 (ocsf.h);
//   kEcs   Elastic Common Schema 8.17 (ecs.h).
#pragma once

#include <string>

#include "interlock/v1/events.pb.h"
#include "userspace/config/config.h"

namespace interlock::audit::sinks {

void AppendEventBody(config::AuditSinkFormat format, const v1::AuditEvent& event, std::string* out);

}  // namespace interlock::audit::sinks
