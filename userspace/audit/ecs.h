// Audit events in the Elastic Common Schema (ECS 8.17): one JSON document per event, for
// Elasticsearch / Elastic Security and the SIEMs that read ECS.
//
//   std::string doc;
//   AppendEcsJson(&doc, event);   // {"@timestamp":"...","ecs":{"version":"8.17.0"},...}
//
// Pure, like ocsf.h: no clock, no I/O, nothing the event does not hold; always valid JSON.
//
// event.category / event.type per AuditKind (event.kind is always "event"):
//
// | AuditKind                           | event.category      | event.type                  |
// | ----------------------------------- | ------------------- | --------------------------- |
// | SESSION_START / SESSION_END         | network, session    | connection + start / end    |
// | CONNECT_DENIED, SESSION_REJECTED    | network             | connection, denied          |
// | CANCEL                              | database            | change                      |
// | PROTOCOL_ERROR                      | network             | protocol (+ denied)         |
// | STATEMENT, POLICY_DECISION (SQL),   | database            | access (+ change for writes)|
// | APPROVAL (postgres), MASKING        |                     |                             |
// | HTTP_REQUEST, POLICY_DECISION and   | web, network        | access + allowed / denied   |
// | APPROVAL (http)                     |                     |                             |
// | SSH_REQUEST (exec, shell,           | process, network    | start + allowed / denied    |
// | subsystem), POLICY_DECISION and     |                     |                             |
// | APPROVAL (ssh)                      |                     |                             |
// | SSH_REQUEST (forwarding)            | network             | connection + denied         |
// | AUTH                                | authentication      | start (end when closed)     |
// | GRANT                               | iam                 | change (creation / deletion)|
// | ENROLLMENT                          | iam                 | creation / deletion         |
// | DAEMON                              | process             | start / end / info          |
// | POLICY                              | configuration       | change                      |
//
// ECS slots: @timestamp (the event's RFC 3339 time as is), event {id, action (the kind,
// lower case), outcome (success / failure / unknown from `outcome`), code (reason),
// reason (detail), duration (ns)}, message (detail), user (the OIDC subject, else the
// Unix user; roles = token groups), process {pid, thread.id, name, executable, user},
// destination {ip, port, bytes}, source.bytes, network {protocol, bytes}, service.name
// (resource), url, http, rule {id, name, description}, host.hostname and observer (the
// host, product Interlock). An SSH command is the process it runs upstream: process
// {command_line, args, args_count, name, exit_code, user.name = the upstream account}
// with the agent's own process as process.parent; user.target.name is the upstream
// account (logins too), related.user both SSH user names, event.duration the channel's.
// There is no database field set in ECS: statements, and everything else of the event
// that ECS has no field for, are under `interlock` (the event's protobuf-JSON minus what
// is written elsewhere, a custom field set as ECS recommends).
#pragma once

#include <string>

#include "interlock/v1/events.pb.h"

namespace interlock::audit {

// The ECS version written in ecs.version (the field set tests/data/ecs holds).
inline constexpr char kEcsVersion[] = "8.17.0";

// Appends one ECS document (a JSON object, no trailing newline) for `event` to `out`.
void AppendEcsJson(std::string* out, const v1::AuditEvent& event);
// The same, as a new string.
std::string EventToEcsJson(const v1::AuditEvent& event);

}  // namespace interlock::audit
