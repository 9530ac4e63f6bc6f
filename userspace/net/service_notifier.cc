#include "userspace/net/service_notifier.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace interlock::net {

namespace {

std::string Getenv(const char* name) {
  const char* v = ::getenv(name);
  return v != nullptr ? v : "";
}

std::string WithStatus(absl::string_view state, absl::string_view status) {
  if (status.empty()) return std::string(state);
  return absl::StrCat(state, "\nSTATUS=", status);
}

}  // namespace

absl::StatusOr<ServiceNotifier> ServiceNotifier::FromEnvironment() {
  absl::Duration watchdog;
  uint64_t usec = 0;
  if (absl::SimpleAtoi(Getenv("WATCHDOG_USEC"), &usec) && usec > 0) {
    // WATCHDOG_PID names the process meant to ping; another one (a child that inherited
    // the environment) must not.
    const std::string pid = Getenv("WATCHDOG_PID");
    int64_t want = 0;
    if (pid.empty() || (absl::SimpleAtoi(pid, &want) && want == ::getpid())) {
      watchdog = absl::Microseconds(usec);
    }
  }
  return Create(Getenv("NOTIFY_SOCKET"), watchdog);
}

absl::StatusOr<ServiceNotifier> ServiceNotifier::Create(absl::string_view socket_path,
                                                        absl::Duration watchdog) {
  if (socket_path.empty())
    return ServiceNotifier(UniqueFd(), sockaddr_un{}, 0, absl::ZeroDuration());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("NOTIFY_SOCKET: \"", socket_path,
                                                   "\" is longer than ", sizeof addr.sun_path - 1,
                                                   " bytes"));
  }
  if (socket_path[0] != '/' && socket_path[0] != '@') {
    return absl::InvalidArgumentError(absl::StrCat("NOTIFY_SOCKET: \"", socket_path,
                                                   "\" is neither an absolute path nor @abstract"));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + socket_path.size();
  if (addr.sun_path[0] == '@') {
    addr.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  } else {
    len += 1;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "NOTIFY_SOCKET: socket");
  return ServiceNotifier(std::move(fd), addr, len, watchdog);
}

absl::Status ServiceNotifier::Send(absl::string_view state) {
  if (!enabled()) return absl::OkStatus();
  ssize_t n;
  do {
    n = ::sendto(fd_.get(), state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "sd_notify: sendto NOTIFY_SOCKET");
  return absl::OkStatus();
}

absl::Status ServiceNotifier::Ready(absl::string_view status) {
  return Send(WithStatus("READY=1", status));
}

absl::Status ServiceNotifier::Reloading(absl::Duration monotonic_now) {
  return Send(
      absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", absl::ToInt64Microseconds(monotonic_now)));
}

absl::Status ServiceNotifier::Stopping(absl::string_view status) {
  return Send(WithStatus("STOPPING=1", status));
}

absl::Status ServiceNotifier::Watchdog() { return Send("WATCHDOG=1"); }

absl::Status ServiceNotifier::Status(absl::string_view status) {
  return Send(absl::StrCat("STATUS=", status));
}

}  // namespace interlock::net
