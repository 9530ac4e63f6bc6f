// Operation: what one policy decision is about, whatever the protocol — a SQL statement
// string (its classification), an HTTP request or an SSH channel request (the facts the
// policy matches, already normalised by the protocol's codec). The evaluator judges rules against either; each
// protocol plug-in builds its own and never sees the other's (policy.proto Match says which
// rules apply to which).
//
//   HttpRequestFacts req{.method = "DELETE", .host = "api.internal", .path = "/v1/customers/7"};
//   Decision d = eval->Evaluate(who, "crm-api", Operation{&req});
//   SshRequestFacts exec = SshExecFacts("git -C /srv/app pull", /*pty=*/false);
//   Decision e = eval->Evaluate(who, "build-host", Operation{&exec});
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/sql.pb.h"

namespace interlock::policy {

// One HTTP request as HttpMatch (policy.proto) sees it. The protocol plug-in fills it from
// the parsed request after refusing what cannot be judged (smuggling, ambiguous paths, a
// Host that disagrees with SNI).
struct HttpRequestFacts {
  std::string method;
  // Lowercase, without the port.
  std::string host;
  // Normalised (RFC 3986 §5.2.4 dot-segments resolved, unreserved escapes decoded,
  // repeated slashes collapsed); always starts with '/'.
  std::string path;
  // Decoded query parameters, in request order (a name may repeat).
  std::vector<std::pair<std::string, std::string>> query;
  // Header fields with lowercase names, in request order (a name may repeat).
  std::vector<std::pair<std::string, std::string>> headers;
  // The JSON body's fields that rules ask for (PolicyEvaluator::JsonPointersFor), by RFC
  // 6901 pointer, as JSON text (strings without their quotes). A pointer that is absent
  // from the body is absent from the map.
  enum class Body {
    kNone,        // no body: no field is present
    kJudged,      // JSON, read whole: json_fields holds what rules asked for
    kUnjudgable,  // not JSON, over the size limit, or not text: body conditions fail closed
  };
  Body body = Body::kNone;
  absl::flat_hash_map<std::string, std::string> json_fields;
};

// One SSH channel request as SshMatch (policy.proto) sees it: an "exec", "shell" or
// "subsystem" request on a session channel. The SSH plug-in builds it with the helpers
// below, which fill argv and needs_shell the one way the policy documents.
struct SshRequestFacts {
  enum class Kind {
    kExec,       // "exec": run `command` (through the user's login shell, `$SHELL -c`)
    kShell,      // "shell": an interactive login shell
    kSubsystem,  // "subsystem": run the subsystem `command` names ("sftp")
  };
  Kind kind = Kind::kExec;
  // exec: the command line exactly as sent; subsystem: the subsystem's name; shell: empty.
  std::string command;
  // exec: the words of `command` after quote removal (argv[0] is the program), when
  // !needs_shell; empty otherwise.
  std::vector<std::string> argv;
  // exec: `command` holds something a shell gives a meaning to, so argv is not what runs
  // (codec::shell::AnalyzeCommandLine). Defaults to true: facts filled without the analysis
  // are judged as a shell line (SshMatch programs/args fail closed).
  bool needs_shell = true;
  // exec with needs_shell: the construct that made it so, in words
  // (codec::shell::CommandLine::why), for audit events and the agent's error message.
  std::string shell_reason;
  // A pty was requested on the channel (pty-req) before this request.
  bool pty = false;
};

// An exec request for `command` as sent, analysed with codec::shell::AnalyzeCommandLine.
SshRequestFacts SshExecFacts(absl::string_view command, bool pty);
// A "shell" request.
SshRequestFacts SshShellFacts(bool pty);
// A "subsystem" request for `name` as sent.
SshRequestFacts SshSubsystemFacts(absl::string_view name, bool pty);

// What one decision judges. SQL: the classification of one query string (every statement
// in it); HTTP: one request; SSH: one channel request.
using Operation = std::variant<const v1::SqlClassification*, const HttpRequestFacts*, const SshRequestFacts*>;

}  // namespace interlock::policy
