// Audit events in the Open Cybersecurity Schema Framework (OCSF 1.3.0): one JSON object
// per event, for SIEMs that ingest OCSF (remote sinks offer it as `format: OCSF`).
//
//   std::string line;
//   AppendOcsfJson(&line, event);   // {"class_uid":6005,"category_uid":6,...}
//   line.push_back('\n');           // the caller frames it (JSON lines, syslog, HEC)
//
// Pure: no clock, no I/O; the same event always gives the same bytes. Strings are quoted
// by AppendJsonQuoted (invalid UTF-8 becomes U+FFFD), so the result is always valid JSON.
// It never holds more than the event: statement text, parameters and held statements are
// exactly as the audit event carries them (already capped, redacted or literal-stripped).
//
// Which class each AuditKind becomes (class_uid; activity_id from the event):
//
// | AuditKind                  | OCSF class (uid)               | activity                       |
// | -------------------------- | ------------------------------ | ------------------------------ |
// | SESSION_START              | Network Activity (4001)        | Open (1)                       |
// | SESSION_END                | Network Activity (4001)        | Close (2)                      |
// | CONNECT_DENIED             | Network Activity (4001)        | Refuse (5), Blocked            |
// | SESSION_REJECTED           | Network Activity (4001)        | Refuse (5), Rejected           |
// | CANCEL                     | Network Activity (4001)        | Other (99) "Cancel"            |
// | PROTOCOL_ERROR             | Network Activity (4001)        | Other (99) "Protocol Error"    |
// | STATEMENT                  | Datastore Activity (6005)      | by SQL verb: Query/Write/...   |
// | POLICY_DECISION (SQL)      | Datastore Activity (6005)      | by SQL verb; Blocked / Delayed |
// | MASKING                    | Datastore Activity (6005)      | Read (1); disposition "Masked" |
// | APPROVAL (postgres)        | Datastore Activity (6005)      | by SQL verb; Delayed/Approved/ |
// |                            |                                | Blocked                        |
// | HTTP_REQUEST               | HTTP Activity (4002)           | by method: Get/Post/...        |
// | POLICY_DECISION (http)     | HTTP Activity (4002)           | by method; Blocked / Delayed   |
// | APPROVAL (http)            | HTTP Activity (4002)           | by method; as above            |
// | SSH_REQUEST exec/shell/    | Process Activity (1007)        | Launch (1)                     |
// | subsystem                  |                                |                                |
// | POLICY_DECISION (ssh)      | Process Activity (1007)        | Launch (1); Delayed            |
// | APPROVAL (ssh)             | Process Activity (1007)        | Launch (1); as above           |
// | SSH_REQUEST other (port,   | SSH Activity (4007)            | Refuse (5), Blocked            |
// | agent, X11 forwarding)     |                                |                                |
// | AUTH                       | Authentication (3002)          | Logon (1); Logoff (2) when the |
// |                            |                                | session closed                 |
// | GRANT                      | Authorize Session (3003)       | Assign Privileges (1) when     |
// |                            |                                | granted/used, else Other (99)  |
// | ENROLLMENT                 | Entity Management (3004)       | Enroll (6) / Unenroll (7)      |
// | DAEMON                     | Application Lifecycle (6002)   | Start (3) / Stop (4) / Other   |
// | POLICY                     | Application Lifecycle (6002)   | Update (8)                     |
// | UNSPECIFIED / unknown      | Base Event (0)                 | Other (99)                     |
//
// Why these:
// - Policy denials, holds and approvals stay in the class of the operation they judged
//   (the SQL statement, the HTTP request), with the security_control profile: action_id
//   (Allowed/Denied), disposition_id (Allowed, Blocked, Delayed for a hold, Approved once
//   released) and the deciding rule as authorizations[].policy {uid: rule id, desc:
//   reason}. A SIEM query for "statements against X" then finds the denied ones too; a
//   Detection Finding (2004) would split one operation across two classes.
// - HTTP Activity (4002) rather than API Activity (6003): interlockd proxies raw HTTP
//   requests; API Activity needs an `api` object (service operation names) that
//   interlockd does not know, and its activities are CRUD verbs, not methods.
// - An SSH command is a process launched on the upstream host: Process Activity (1007)
//   has the slots an auditor searches for it (process.cmd_line, process.user = the upstream
//   account, exit_code, device = the upstream host), and the security_control profile for
//   the decision, so a denied or held command is the same class as one that ran. SSH
//   Activity (4007) describes the connection (HASSH, auth type, protocol version) and has
//   no slot for a command; interlockd uses it for the requests that open no process, the
//   forwarding it refuses. process.uid is "<session>/<channel>" (the channel in the
//   recording) or "<session>/<approval id>": OCSF wants a pid or uid and the upstream pid
//   is not known. argv, the shell reason, the agent's user name, bytes and the µs duration
//   stay in unmapped (Process Activity has no traffic). An SSH login (AUTH with `ssh`)
//   names the upstream account as user.
// - A grant gives a workload the right to open sessions to a resource for a while:
//   Authorize Session's "Assign Privileges" with privileges [resource] and user = the
//   workload; revocation, expiry and sessions refused for lack of a grant are Other (99)
//   with activity_name. Outside a session the actor is the operator who granted or
//   revoked (granted_by / revoked_by), or interlockd for an expiry.
// - interlockd starting/stopping and its policy reloads are the application's life
//   cycle (6002, app = interlockd); enrollment creates a workload (an entity).
//
// Common to every class: metadata {version "1.3.0", uid = event id, product {name
// "Interlock", vendor_name "Interlock", version}, profiles}, time (ms since the epoch
// from `time`), severity_id (Informational; Medium for denials and refusals; Low for
// errors), status_id from `outcome` (Failure for denied/error/rejected/...; Success for
// any other outcome; Unknown without one) with status_code = reason and status_detail =
// detail, actor {app_name = workload, user = the OIDC subject when a token was shown
// (else the Unix user), idp = token issuer, process {pid, tid, name = comm, file = exe,
// user = Unix uid/name, xattributes {cgroup_id, cgroup_path}}, session {uid}},
// dst_endpoint = the original destination with svc_name = resource, src_endpoint and
// device = the host. OCSF has no slot for the rest (gid, login uid, the upstream
// address, SQL classification, hashes, approval and grant records, masking counts, the
// outcome word, the nanosecond time...): `unmapped.interlock` holds the event's
// protobuf-JSON (json_writer.h) minus the fields written above, so nothing is lost
// (tests/unit/audit/ocsf_test.cc checks every value of a fully set event, every kind).
// Schema conformance: tests/unit/audit/ocsf_schema_check.py against tests/data/ocsf.
#pragma once

#include <string>

#include "interlock/v1/events.pb.h"

namespace interlock::audit {

// The OCSF version written in metadata.version (the schema tests/data/ocsf holds).
inline constexpr char kOcsfVersion[] = "1.3.0";

// Appends one OCSF event (a JSON object, no trailing newline) for `event` to `out`.
void AppendOcsfJson(std::string* out, const v1::AuditEvent& event);
// The same, as a new string.
std::string EventToOcsfJson(const v1::AuditEvent& event);

}  // namespace interlock::audit
