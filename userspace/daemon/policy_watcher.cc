#include "userspace/daemon/policy_watcher.h"

#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/loader.h"

namespace interlock::daemon {

absl::StatusOr<std::unique_ptr<PolicyWatcher>> PolicyWatcher::Create(const std::string& path,
                                                                     audit::AuditLog* audit) {
  std::unique_ptr<PolicyWatcher> w(new PolicyWatcher(path, audit));
  size_t slash = path.rfind('/');
  w->dir_ = slash == 0 ? "/" : path.substr(0, slash);
  w->base_ = path.substr(slash + 1);
  auto first = policy::LoadPolicyFile(path);
  if (!first.ok()) {
    w->AuditResult("start", first.status());
    return first.status();
  }
  w->current_ = std::shared_ptr<const policy::PolicyEvaluator>(std::move(*first));
  w->AuditResult("start", absl::OkStatus());
  w->inotify_.Reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!w->inotify_) return ErrnoStatus(errno, "inotify_init1");
  if (::inotify_add_watch(w->inotify_.get(), w->dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    return ErrnoStatus(errno, absl::StrCat("inotify_add_watch ", w->dir_));
  }
  return w;
}

void PolicyWatcher::AuditResult(const std::string& trigger, const absl::Status& st) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_POLICY);
  ev.set_outcome(st.ok() ? "loaded" : "rejected");
  ev.set_reason(trigger);
  ev.set_detail(st.ok() ? absl::StrCat(path_, ": ", current_->policy().rules_size(), " rules in force")
                        : absl::StrCat(st.message(), current_ ? "; the previous policy stays in force" : ""));
  (void)audit_->Emit(std::move(ev));
  if (st.ok()) {
    INTERLOCK_LOG(kInfo, "policy %s (%s): %d rules", path_, trigger, current_->policy().rules_size());
  } else {
    INTERLOCK_LOG(kError, "policy %s (%s) rejected: %s", path_, trigger, st.message());
  }
}

absl::Status PolicyWatcher::Reload(const std::string& trigger) {
  auto next = policy::LoadPolicyFile(path_);
  if (next.ok() && validator_) {
    if (absl::Status v = validator_(**next); !v.ok()) {
      next = absl::InvalidArgumentError(absl::StrCat(path_, ": ", v.message()));
    }
  }
  if (!next.ok()) {
    AuditResult(trigger, next.status());
    return next.status();
  }
  current_ = std::shared_ptr<const policy::PolicyEvaluator>(std::move(*next));
  AuditResult(trigger, absl::OkStatus());
  return absl::OkStatus();
}

void PolicyWatcher::OnInotify() {
  alignas(inotify_event) char buf[4096];
  bool ours = false;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      if (ev->len > 0 && base_ == ev->name && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) ours = true;
      off += sizeof(inotify_event) + ev->len;
    }
  }
  if (ours) (void)Reload("file_change");
}

}  // namespace interlock::daemon
