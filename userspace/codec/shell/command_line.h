// AnalyzeCommandLine: an SSH exec request's command, as the server will run it, judged
// before it runs. OpenSSH's sshd runs the command as `$SHELL -c COMMAND` with the user's
// login shell, so what the program receives depends on that shell's parsing. A command
// with no shell construct in it (only words, single and double quotes without
// expansions, backslash escapes) reaches the program as exactly the words this returns,
// under every POSIX shell (sh, dash, bash, ksh, zsh in sh mode): a policy can match its
// program and arguments. Anything else — a separator, a pipe, a redirection, a
// substitution, an expansion, a glob, brace or tilde expansion, a comment, an assignment
// prefix, a line break, a control byte, an unterminated quote — makes the command
// "shell": its words are not what runs, so a policy judges it as a shell command, never
// by its first word (`ls; rm -rf /` is not `ls`).
//
//   CommandLine c = AnalyzeCommandLine("git -C '/srv/app repo' pull --ff-only");
//   // c.shell == false, c.argv == {"git", "-C", "/srv/app repo", "pull", "--ff-only"}
//   CommandLine d = AnalyzeCommandLine("uptime && rm -rf /srv/data");
//   // d.shell == true, d.why == "'&' (a command separator or background job)"
//
// Pure: bytes in, a value out. Conservative by design: a construct only some shells give
// a meaning to (bash's `{a,b}`, `!`, zsh's `=cmd`) counts as shell too.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace interlock::codec::shell {

// Longer commands are judged as shell without being parsed.
inline constexpr size_t kMaxCommandBytes = 64 * 1024;

struct CommandLine {
  // The words after quote removal. Filled only when !shell.
  std::vector<std::string> argv;
  // True when the words are not what runs (see above): judge it as a shell command.
  bool shell = false;
  // For shell: the first construct that made it so, in words, for audit events and the
  // agent's error message.
  std::string why;
};

CommandLine AnalyzeCommandLine(absl::string_view line);

}  // namespace interlock::codec::shell
