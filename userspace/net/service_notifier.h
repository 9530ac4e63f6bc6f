// ServiceNotifier: tells the service manager how interlockd is doing, with the sd_notify(3)
// datagram protocol that systemd's Type=notify services speak: READY=1 once the pins and the
// listeners are up, WATCHDOG=1 keep-alives from the event loop, RELOADING=1 then READY=1
// around a reload, STOPPING=1 when shutdown begins.
//
//   INTERLOCK_ASSIGN_OR_RETURN(ServiceNotifier notifier, ServiceNotifier::FromEnvironment());
//   (void)notifier.Ready("enforcing 3 resources");
//   if (notifier.watchdog_interval() > absl::ZeroDuration()) {
//     loop->RunAfter(notifier.watchdog_interval() / 2, [&] { (void)notifier.Watchdog(); ... });
//   }
//
// Without NOTIFY_SOCKET (not started by systemd, or not Type=notify) every call is a no-op
// that returns OK, so the daemon calls it unconditionally.
//
// Why not libsystemd's sd_notify(): the protocol is one datagram of "KEY=VALUE\n" lines to
// the unix socket named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace);
// systemd documents it as a stable interface meant to be reimplemented (sd_notify(3),
// "Notes"). Writing it here is ~40 lines, keeps libsystemd out of the build and runtime
// dependencies of the .deb and the .rpm, and lets the loop send without blocking (a busy
// service manager must never stall the data path: sends use MSG_DONTWAIT). vsock
// addresses ("vsock:CID:PORT", for VMs) are not supported; such a NOTIFY_SOCKET is an error.
#pragma once

#include <sys/un.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (systemd.exec(5)). The watchdog is
  // on when WATCHDOG_USEC is a positive number and WATCHDOG_PID is absent or this process's
  // pid. Errors: INVALID_ARGUMENT for a NOTIFY_SOCKET that is neither an absolute path nor
  // "@name", or too long; the errno status of socket(2).
  static absl::StatusOr<ServiceNotifier> FromEnvironment();
  // `socket_path`: empty (disabled), an absolute path or "@abstract-name". `watchdog`: the
  // service manager's watchdog timeout (zero: none).
  static absl::StatusOr<ServiceNotifier> Create(absl::string_view socket_path,
                                                absl::Duration watchdog);

  ServiceNotifier() = default;  // disabled, as without NOTIFY_SOCKET
  ServiceNotifier(ServiceNotifier&&) = default;
  ServiceNotifier& operator=(ServiceNotifier&&) = default;

  bool enabled() const { return fd_.valid(); }
  // How long the service manager waits for a WATCHDOG=1 before it kills and restarts the
  // service; zero when there is no watchdog. Ping at half of it.
  absl::Duration watchdog_interval() const { return watchdog_; }

  // READY=1 (and STATUS=`status` when not empty): startup or a reload finished.
  absl::Status Ready(absl::string_view status = "");
  // RELOADING=1 with MONOTONIC_USEC=`monotonic_now` (CLOCK_MONOTONIC, which systemd 253's
  // Type=notify-reload requires and older versions ignore).
  absl::Status Reloading(absl::Duration monotonic_now);
  // STOPPING=1 (and STATUS=`status` when not empty): shutdown began.
  absl::Status Stopping(absl::string_view status = "");
  // WATCHDOG=1: the event loop is alive.
  absl::Status Watchdog();
  // STATUS=`status`: one line of free text for `systemctl status`.
  absl::Status Status(absl::string_view status);

  // Sends `state` ("KEY=VALUE" lines) as one datagram. OK without doing anything when
  // disabled. Never blocks: a full receive queue is UNAVAILABLE (EAGAIN); a missing socket
  // is the errno status of sendto(2).
  absl::Status Send(absl::string_view state);

 private:
  ServiceNotifier(UniqueFd fd, sockaddr_un addr, socklen_t addr_len, absl::Duration watchdog)
      : fd_(std::move(fd)), addr_(addr), addr_len_(addr_len), watchdog_(watchdog) {}

  UniqueFd fd_;  // an unbound AF_UNIX datagram socket; invalid when disabled
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  absl::Duration watchdog_;
};

}  // namespace interlock::net
