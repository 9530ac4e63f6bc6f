#include "userspace/policy/ssh_match.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"
#include "userspace/policy/glob.h"

namespace interlock::policy {

namespace {

absl::string_view KindName(SshRequestFacts::Kind kind) {
  switch (kind) {
    case SshRequestFacts::Kind::kExec: return "exec";
    case SshRequestFacts::Kind::kShell: return "shell";
    case SshRequestFacts::Kind::kSubsystem: return "subsystem";
  }
  return "";
}

// Where a program path points, as far as its spelling tells: a bare name (PATH finds it),
// an absolute path in normal form, or neither (relative with a '/', or a ".", ".." or empty
// segment: "bin/rm", "/bin/../bin/rm", "//bin/rm"), which no full-path pattern can place.
enum class ProgramPath { kBare, kAbsolute, kUnplaced };

ProgramPath Place(absl::string_view program) {
  if (!absl::StrContains(program, '/')) return ProgramPath::kBare;
  if (program[0] != '/') return ProgramPath::kUnplaced;
  for (absl::string_view segment : absl::StrSplit(program.substr(1), '/')) {
    if (segment.empty() || segment == "." || segment == "..") return ProgramPath::kUnplaced;
  }
  return ProgramPath::kAbsolute;
}

// policy.proto SshMatch.programs. `strict`: a DENY or REVIEW rule.
bool ProgramHolds(const google::protobuf::RepeatedPtrField<std::string>& patterns, absl::string_view program,
                  bool strict) {
  const ProgramPath place = Place(program);
  // Not strict: only a program that is where its name says, matched as sent (an ALLOW
  // rule for "ls" does not let through /tmp/ls, which the agent may have uploaded).
  if (!strict) return place != ProgramPath::kUnplaced && AnyGlob(patterns, program);
  const absl::string_view base = program.substr(program.rfind('/') + 1);  // npos + 1 == 0
  for (const std::string& p : patterns) {
    if (Glob(p, program) || Glob(p, base)) return true;
    if (place == ProgramPath::kUnplaced && absl::StrContains(p, '/')) return true;
  }
  return false;
}

bool AnyArgument(const google::protobuf::RepeatedPtrField<std::string>& patterns,
                 const std::vector<std::string>& argv) {
  return std::any_of(argv.begin() + 1, argv.end(), [&](const std::string& a) { return AnyGlob(patterns, a); });
}

}  // namespace

absl::StatusOr<std::unique_ptr<SshMatcher>> SshMatcher::Create(const v1::SshMatch& match, absl::string_view where,
                                                               absl::string_view rule_id) {
  std::vector<std::string> problems;
  for (int i = 0; i < match.requests_size(); ++i) {
    const std::string& r = match.requests(i);
    if (r != "exec" && r != "shell" && r != "subsystem") {
      problems.push_back(absl::StrCat(where, ".ssh.requests[", i, "]: \"", r,
                                      "\" is not a request type (exec, shell, subsystem)"));
    }
  }
  std::vector<std::unique_ptr<re2::RE2>> regexes;
  RE2::Options options;
  options.set_log_errors(false);
  options.set_encoding(RE2::Options::EncodingLatin1);  // byte by byte: a line need not be UTF-8
  options.set_dot_nl(true);
  for (int i = 0; i < match.command_regex_size(); ++i) {
    const std::string& pattern = match.command_regex(i);
    auto re = std::make_unique<re2::RE2>(pattern, options);
    if (!re->ok()) {
      problems.push_back(absl::StrCat(where, ".ssh.command_regex[", i, "]: rule \"", rule_id, "\": \"", pattern,
                                      "\" is not a valid RE2 pattern (", re->error(), ")"));
    }
    regexes.push_back(std::move(re));
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  return std::unique_ptr<SshMatcher>(new SshMatcher(match, std::move(regexes)));
}

SshMatcher::SshMatcher(v1::SshMatch match, std::vector<std::unique_ptr<re2::RE2>> regexes)
    : match_(std::move(match)), regexes_(std::move(regexes)) {}

SshMatcher::~SshMatcher() = default;

bool SshMatcher::Holds(const SshRequestFacts& req, v1::Action action) const {
  const absl::string_view kind = KindName(req.kind);
  if (!match_.requests().empty() &&
      std::find(match_.requests().begin(), match_.requests().end(), kind) == match_.requests().end()) {
    return false;
  }
  if (match_.pty() && !req.pty) return false;
  if (!match_.subsystems().empty() &&
      (req.kind != SshRequestFacts::Kind::kSubsystem || !AnyGlob(match_.subsystems(), req.command))) {
    return false;
  }
  // Unknown actions are as strict as DENY (Severity).
  const bool strict = action != v1::ACTION_ALLOW && action != v1::ACTION_MASK;
  return ExecHolds(req, strict);
}

// The exec-only conditions: none set holds for every request; any set, only for exec.
bool SshMatcher::ExecHolds(const SshRequestFacts& req, bool strict) const {
  const v1::SshMatch& m = match_;
  const bool any = !m.programs().empty() || !m.args().empty() || !m.commands().empty() ||
                   !m.command_regex().empty() || m.shell();
  if (!any) return true;
  if (req.kind != SshRequestFacts::Kind::kExec) return false;
  if (m.shell() && !req.needs_shell) return false;
  if (!m.commands().empty() && !AnyGlob(m.commands(), req.command)) return false;
  if (!regexes_.empty() && std::none_of(regexes_.begin(), regexes_.end(), [&](const auto& re) {
        return RE2::PartialMatch(req.command, *re);
      })) {
    return false;
  }
  if (m.programs().empty() && m.args().empty()) return true;
  // The words are not what runs: program and argument conditions fail closed.
  if (req.needs_shell || req.argv.empty()) return strict;
  if (!m.programs().empty() && !ProgramHolds(m.programs(), req.argv[0], strict)) return false;
  return m.args().empty() || AnyArgument(m.args(), req.argv);
}

int SshConditions(const v1::SshMatch& m) {
  int n = !m.requests().empty() + !m.programs().empty() + !m.args().empty() + !m.commands().empty();
  return n + !m.command_regex().empty() + m.shell() + !m.subsystems().empty() + m.pty();
}

}  // namespace interlock::policy
