// The command an SSH audit event is about, as the export formats show it (ocsf.cc, ecs.cc,
// report.cc). Internal to userspace/audit.
//
//   if (IsSshOperation(event)) {
//     SshCommand c = SshCommandOf(event);
//     if (c.runs_process) Write(c.command, c.upstream_user, c.exit_code);
//   }
//
// An SSH_REQUEST and a held command's POLICY_DECISION carry it in `ssh`; an approval
// (protocol "ssh") in the request: statement = the command line exactly (a shell or
// subsystem request: its description), db_user = the upstream user, classification
// "ssh <request>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "interlock/v1/events.pb.h"

namespace interlock::audit::internal {

struct SshCommand {
  // The request runs something on the upstream host (exec, shell, subsystem); false for
  // the forwarding requests interlockd refuses (direct-tcpip, tcpip-forward, X11, agent).
  bool runs_process = false;
  // exec: `command` is the command line. Otherwise the subsystem's name, an approval's
  // description ("interactive shell (pty)"), or a forwarding target ("host:port").
  bool exec = false;
  absl::string_view command;
  // The process's name: exec, argv[0]'s base name (empty when the line needs a shell);
  // a subsystem, its name; a shell, "shell".
  absl::string_view name;
  absl::string_view upstream_user;
  // The exit status, when the command ran upstream and exited (not by a signal).
  std::optional<int32_t> exit_code;
  // Names the run (the upstream pid is not known): "<session>/<channel>" (the channel as
  // in the session's recording), or "<session>/<approval id>" for an approval.
  std::string uid;
};

// An SSH request, a held SSH command (POLICY_DECISION with `ssh`), or its approval.
bool IsSshOperation(const v1::AuditEvent& e);

// What `e` says of the command; views into `e`.
SshCommand SshCommandOf(const v1::AuditEvent& e);

}  // namespace interlock::audit::internal
