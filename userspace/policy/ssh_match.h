// SshMatcher: one rule's SshMatch (policy.proto) with its command_regex patterns compiled,
// judged against one SSH channel request (SshRequestFacts). Pure; PolicyEvaluator builds
// one per rule with an `ssh` block at Create and asks it for every SSH request.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto m, SshMatcher::Create(rule.match().ssh(), "rules[3].match", rule.id()));
//   SshRequestFacts req = SshExecFacts("rm -rf /srv", /*pty=*/false);
//   if (m->Holds(req, rule.action())) ...
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/policy.pb.h"
#include "userspace/policy/operation.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace interlock::policy {

class SshMatcher {
 public:
  // Checks and compiles `match`. INVALID_ARGUMENT with one line per problem, each naming
  // the field under `where` ("rules[3].match.ssh.command_regex[0]: ...") and, for an
  // invalid regex, the rule by `rule_id`: a request type that is not exec, shell or
  // subsystem; a command_regex that is not RE2.
  static absl::StatusOr<std::unique_ptr<SshMatcher>> Create(const v1::SshMatch& match, absl::string_view where,
                                                            absl::string_view rule_id);
  ~SshMatcher();
  SshMatcher(const SshMatcher&) = delete;
  SshMatcher& operator=(const SshMatcher&) = delete;

  // Whether every set condition holds for `req`. `action`: the rule's; when the request's
  // argv is unknown (the line needs a shell) or its program path cannot be placed, the
  // conditions on them hold for DENY and REVIEW rules and not for ALLOW and MASK rules.
  bool Holds(const SshRequestFacts& req, v1::Action action) const;

 private:
  SshMatcher(v1::SshMatch match, std::vector<std::unique_ptr<re2::RE2>> regexes);
  bool ExecHolds(const SshRequestFacts& req, bool strict) const;

  v1::SshMatch match_;
  // command_regex, in order.
  std::vector<std::unique_ptr<re2::RE2>> regexes_;
};

// How many conditions `m` sets (for rule specificity).
int SshConditions(const v1::SshMatch& m);

}  // namespace interlock::policy
