#include "userspace/audit/sinks/event_body.h"

#include "userspace/audit/ecs.h"
#include "userspace/audit/json_writer.h"
#include "userspace/audit/ocsf.h"

namespace interlock::audit::sinks {

void AppendEventBody(config::AuditSinkFormat format, const v1::AuditEvent& event, std::string* out) {
  switch (format) {
    case config::AuditSinkFormat::kOcsf:
      AppendOcsfJson(out, event);
      return;
    case config::AuditSinkFormat::kEcs:
      AppendEcsJson(out, event);
      return;
    case config::AuditSinkFormat::kJson:
      break;
  }
  const size_t start = out->size();
  AppendEventJsonLine(out, event);
  if (out->size() > start && out->back() == '\n') out->pop_back();
}

}  // namespace interlock::audit::sinks
