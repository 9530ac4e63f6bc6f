// PolicyWatcher: the policy in force, and how it changes. Loads the configured policy file
// at start (an invalid file fails start-up: better no service than an unknown policy), and
// reloads it on SIGHUP, on `interlock reload`, and when the file is written or replaced
// (inotify on its directory, so editors' rename-into-place is seen). A reload that fails
// keeps the old policy in force; success or failure is audited (AUDIT_KIND_POLICY) with
// the loader's file:line: field message.
//
// Sessions read `current()` through a pointer at each decision, so a reload applies to the
// next statement of every live session; a statement already held keeps its decision.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto pw, PolicyWatcher::Create(path, audit));
//   loop->Add(pw->inotify_fd(), EPOLLIN, handler)  ->  pw->OnInotify();
//   env.policy = pw->current_ptr();
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/unique_fd.h"
#include "userspace/policy/evaluator.h"

namespace interlock::daemon {

class PolicyWatcher {
 public:
  // `path` absolute. Errors: the loader's (INVALID_ARGUMENT naming file, line, field;
  // NOT_FOUND), or inotify setup.
  static absl::StatusOr<std::unique_ptr<PolicyWatcher>> Create(const std::string& path, audit::AuditLog* audit);

  // Re-reads the file. On error the old policy stays; either way the result is audited.
  // `trigger`: "sighup", "control", "file_change".
  absl::Status Reload(const std::string& trigger);
  // Drains inotify events; reloads when one names the policy file.
  void OnInotify();

  // An extra check a new policy must pass before it is put in force (mask profiles
  // compile); its error rejects the reload like a loader error.
  void SetValidator(std::function<absl::Status(const policy::PolicyEvaluator&)> v) { validator_ = std::move(v); }

  int inotify_fd() const { return inotify_.get(); }
  const std::shared_ptr<const policy::PolicyEvaluator>* current_ptr() const { return &current_; }
  const policy::PolicyEvaluator& current() const { return *current_; }
  const std::string& path() const { return path_; }

 private:
  PolicyWatcher(std::string path, audit::AuditLog* audit) : path_(std::move(path)), audit_(audit) {}
  void AuditResult(const std::string& trigger, const absl::Status& st);

  std::string path_;
  std::string dir_, base_;
  audit::AuditLog* audit_;
  UniqueFd inotify_;
  std::shared_ptr<const policy::PolicyEvaluator> current_;
  std::function<absl::Status(const policy::PolicyEvaluator&)> validator_;
};

}  // namespace interlock::daemon
