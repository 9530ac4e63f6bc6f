#include "userspace/policy/operation.h"

#include <utility>

#include "userspace/codec/shell/command_line.h"

namespace interlock::policy {

SshRequestFacts SshExecFacts(absl::string_view command, bool pty) {
  codec::shell::CommandLine line = codec::shell::AnalyzeCommandLine(command);
  SshRequestFacts facts;
  facts.kind = SshRequestFacts::Kind::kExec;
  facts.command = std::string(command);
  facts.needs_shell = line.shell;
  if (line.shell) facts.shell_reason = std::move(line.why);
  else facts.argv = std::move(line.argv);
  facts.pty = pty;
  return facts;
}

SshRequestFacts SshShellFacts(bool pty) {
  SshRequestFacts facts;
  facts.kind = SshRequestFacts::Kind::kShell;
  facts.needs_shell = false;
  facts.pty = pty;
  return facts;
}

SshRequestFacts SshSubsystemFacts(absl::string_view name, bool pty) {
  SshRequestFacts facts;
  facts.kind = SshRequestFacts::Kind::kSubsystem;
  facts.command = std::string(name);
  facts.needs_shell = false;
  facts.pty = pty;
  return facts;
}

}  // namespace interlock::policy
