// The engine's side of a live binary upgrade (userspace/daemon/handover.h says how it goes
// and why): `interlock upgrade` / SIGUSR2 in the old process, the audit events the old
// process forwards, received in the new one.
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/framing.h"
#include "userspace/daemon/engine.h"
#include "userspace/net/socket.h"

namespace interlock::daemon {

namespace {

// How long the new process may take to be ready. The old process's loop waits meanwhile
// (handover.h): well under systemd's WatchdogSec (30 s in the unit), pinged just before.
constexpr absl::Duration kUpgradeStartTimeout = absl::Seconds(20);

class CallOnIo final : public net::IoHandler {
 public:
  explicit CallOnIo(std::function<void()> fn) : fn_(std::move(fn)) {}
  void OnIo(uint32_t) override { fn_(); }

 private:
  std::function<void()> fn_;
};

}  // namespace

absl::StatusOr<v1::UpgradeResponse> Engine::Upgrade(const std::string& trigger) {
  if (handed_over_)
    return absl::FailedPreconditionError(
        "upgrade: already handed over; this interlockd is draining");
  if (draining_) return absl::FailedPreconditionError("upgrade: interlockd is shutting down");
  v1::AuditEvent started;
  started.set_kind(v1::AUDIT_KIND_DAEMON);
  started.set_outcome("upgrade_started");
  started.set_detail(
      absl::StrCat("pid ", ::getpid(), " starts the interlockd on disk (", trigger, ")"));
  Audit(std::move(started));
  // Everything this process wrote is in the files before the new one opens them; from here
  // until the answer this process writes no audit line (the loop waits in Start()).
  WriteBuffered();
  (void)notifier_.Watchdog();
  auto s = handover_->Start(kUpgradeStartTimeout, clock_);
  if (!s.ok()) {
    // The child may have appended to the chain before it failed: continue from the file's
    // last line, not from ours.
    if (absl::Status st = ReopenAuditFile(); !st.ok())
      INTERLOCK_LOG(kError, "audit: %s", st.message());
    v1::AuditEvent failed;
    failed.set_kind(v1::AUDIT_KIND_DAEMON);
    failed.set_outcome("upgrade_failed");
    failed.set_detail(std::string(s.status().message()));
    if (absl::Status st = RestoreKernelState(); !st.ok()) {
      INTERLOCK_LOG(kError, "upgrade: restoring the kernel's tables: %s", st.message());
      failed.set_detail(
          absl::StrCat(failed.detail(), "; restoring the kernel's tables: ", st.message()));
    }
    Audit(std::move(failed));
    WriteBuffered();
    INTERLOCK_LOG(kError, "%s", s.status().message());
    return s.status();
  }
  handed_over_ = true;
  // systemd follows the new pid: said by the main process itself too, so that it holds
  // also where the unit still has NotifyAccess=main (a unit file not reloaded yet), which
  // would drop the new process's own MAINPID= and, when this one exits, stop the service.
  if (absl::Status st = notifier_.Send(absl::StrCat("MAINPID=", s->pid)); !st.ok()) {
    INTERLOCK_LOG(kWarning, "%s", st.message());
  }
  // From now on the new process chains this one's events (a blocking stream: an event is
  // in the new process's socket buffer when Emit returns).
  upgrade_audit_out_ = std::move(s->audit);
  audit_->Divert([fd = upgrade_audit_out_.get()](const v1::AuditEvent& ev) {
    return Annotate(net::WriteAll(fd, control::EncodeFrame(ev)), "audit: to the new interlockd");
  });
  v1::UpgradeResponse out;
  out.set_old_pid(static_cast<uint32_t>(::getpid()));
  out.set_new_pid(static_cast<uint32_t>(s->pid));
  out.set_binary(s->binary);
  out.set_draining_sessions(static_cast<uint32_t>(sessions_.size()));
  v1::AuditEvent done;
  done.set_kind(v1::AUDIT_KIND_DAEMON);
  done.set_outcome("upgrade_completed");
  done.set_detail(absl::StrCat(s->binary, " pid ", s->pid, " serves now; pid ", ::getpid(),
                               " drains ", sessions_.size(), " sessions"));
  Audit(std::move(done));
  INTERLOCK_LOG(kInfo, "upgrade: pid %d serves now; draining %d sessions", static_cast<int>(s->pid),
                static_cast<int>(sessions_.size()));
  // After the caller has its answer (the control connection is this process's).
  loop_->Defer([this] { FinishHandover(); });
  ReapUpgradeChild(s->pid);
  return out;
}

bool Engine::DrainDone() const {
  // A process that was itself handed over to still relays the older process's audit
  // events (upgraded twice while the first one drains): it stays until that one is done,
  // or those events (its sessions' ends) would be lost.
  return sessions_.empty() && !handover_audit_.valid();
}

void Engine::ReapUpgradeChild(pid_t pid) {
  // The new process is this one's child while this one drains: should it end first (its
  // own upgrade, a stop), it is reaped here rather than left a zombie until this exits.
  if (::waitpid(pid, nullptr, WNOHANG) != 0) return;  // reaped, or not ours any more
  loop_->RunAfter(absl::Seconds(1), [this, pid] { ReapUpgradeChild(pid); });
}

absl::Status Engine::RestoreKernelState() {
  // The pinned links keep the new binary's programs (they use the same pinned maps; a new
  // version whose maps are incompatible and that then fails is not undone here: restart).
  INTERLOCK_RETURN_IF_ERROR(datapath_->WriteSettings(Settings(/*accepting=*/true)));
  INTERLOCK_RETURN_IF_ERROR(WriteDatapathTables());
  INTERLOCK_RETURN_IF_ERROR(ApplyEnrollments(/*readopt=*/false));
  for (int fd : engine_listener_fds_) INTERLOCK_RETURN_IF_ERROR(datapath_->MarkEngineListener(fd));
  return absl::OkStatus();
}

void Engine::FinishHandover() {
  // Stop accepting: the listening sockets stay open in the new process (closing this
  // process's descriptors does not touch them), and the kernel's accepting flag stays set.
  for (UniqueFd& fd : listeners_) loop_->Remove(fd.get());
  listeners_.clear();
  engine_listener_fds_.clear();
  if (netns_ != nullptr) netns_->CloseAll();
  // The socket file is the new process's: it listens on the same socket.
  if (control_ != nullptr) control_->KeepSocketFile();
  control_.reset();
  metrics_.reset();
  // The kernel's events (denied connects) are the new process's to read and audit.
  loop_->Remove(datapath_->events_fd());
  // systemd follows the new main pid; this one must not say STOPPING=1 or ping for it.
  notifier_ = net::ServiceNotifier();
  draining_ = true;
  drain_deadline_ = clock_.Monotonic() + config_.timeouts.drain;
  if (DrainDone()) loop_->Stop();
}

absl::Status Engine::StartHandoverAudit() {
  handover_audit_ = handover_->TakeAuditFd();
  if (!handover_audit_.valid()) return absl::OkStatus();
  const int fd = handover_audit_.get();
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(errno, "handover: audit socket");
  }
  handover_audit_watcher_ = std::make_unique<CallOnIo>([this] { OnHandoverAudit(); });
  return loop_->Add(fd, EPOLLIN, handover_audit_watcher_.get());
}

void Engine::OnHandoverAudit() {
  char buf[65536];
  bool closed = false;
  for (;;) {
    ssize_t n = ::read(handover_audit_.get(), buf, sizeof buf);
    if (n > 0) {
      handover_audit_buf_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    closed = n == 0 || errno != EAGAIN;
    break;
  }
  // Frames: u32 big-endian length || AuditEvent, as the control API frames its messages.
  size_t at = 0;
  while (handover_audit_buf_.size() - at >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(handover_audit_buf_.data() + at);
    const uint32_t len =
        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    if (len > control::kMaxControlFrameBytes) {
      INTERLOCK_LOG(kError, "handover: audit frame of %u bytes from the old interlockd; closed",
                    len);
      closed = true;
      break;
    }
    if (handover_audit_buf_.size() - at - 4 < len) break;
    v1::AuditEvent ev;
    if (ev.ParseFromArray(handover_audit_buf_.data() + at + 4, static_cast<int>(len))) {
      Audit(std::move(ev));  // stamped (id, time, host) by the old process already
    } else {
      INTERLOCK_LOG(kError, "handover: an unreadable audit event from the old interlockd");
    }
    at += 4 + len;
  }
  handover_audit_buf_.erase(0, at);
  if (closed) {
    // The old process exited (or closed its end): nothing more will come.
    INTERLOCK_LOG(kInfo, "handover: the old interlockd (pid %d) is done",
                  static_cast<int>(handover_->parent_pid()));
    loop_->Remove(handover_audit_.get());
    handover_audit_.Reset();
    handover_audit_buf_.clear();
    if (draining_ && DrainDone()) loop_->Stop();
  }
}

}  // namespace interlock::daemon
