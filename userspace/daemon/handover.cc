#include "userspace/daemon/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"

extern char** environ;

namespace interlock::daemon {

namespace {

std::vector<std::string>& CommandLine() {
  static std::vector<std::string> args;
  return args;
}

const char* KindName(HandoverSocket::Kind k) {
  switch (k) {
    case HandoverSocket::Kind::kTcp:
      return "tcp";
    case HandoverSocket::Kind::kUnix:
      return "unix";
    case HandoverSocket::Kind::kNetnsTcp:
      return "netns";
  }
  return "tcp";
}

// The fd is a listening stream socket of `family` bound to `name` (ToString() of the
// address, or the unix path).
absl::Status CheckListener(const HandoverSocket& s) {
  struct stat st {};
  if (::fstat(s.fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("fd ", s.fd));
  if (!S_ISSOCK(st.st_mode))
    return absl::FailedPreconditionError(absl::StrCat("fd ", s.fd, " is not a socket"));
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(s.fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM) {
    return absl::FailedPreconditionError(absl::StrCat("fd ", s.fd, " is not a stream socket"));
  }
  len = sizeof v;
  if (::getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v != 1) {
    return absl::FailedPreconditionError(absl::StrCat("fd ", s.fd, " is not listening"));
  }
  len = sizeof v;
  if (::getsockopt(s.fd, SOL_SOCKET, SO_DOMAIN, &v, &len) != 0)
    return ErrnoStatus(errno, "SO_DOMAIN");
  if (s.kind == HandoverSocket::Kind::kUnix) {
    sockaddr_un un{};
    socklen_t ulen = sizeof un;
    if (v != AF_UNIX || ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&un), &ulen) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("fd ", s.fd, " is not a unix socket"));
    }
    const size_t n =
        ulen > offsetof(sockaddr_un, sun_path) ? ulen - offsetof(sockaddr_un, sun_path) : 0;
    std::string path(un.sun_path, strnlen(un.sun_path, n));
    if (path != s.name) {
      return absl::FailedPreconditionError(
          absl::StrCat("fd ", s.fd, " is bound to \"", path, "\", not \"", s.name, "\""));
    }
    return absl::OkStatus();
  }
  if (v != AF_INET && v != AF_INET6) {
    return absl::FailedPreconditionError(absl::StrCat("fd ", s.fd, " is not a TCP socket"));
  }
  absl::string_view want = s.name;
  if (s.kind == HandoverSocket::Kind::kNetnsTcp) {
    // "DEV:INO/ADDRESS": the socket must live in that namespace.
    const size_t slash = want.find('/');
    if (slash == absl::string_view::npos) {
      return absl::FailedPreconditionError(absl::StrCat("fd ", s.fd, ": no namespace in \"", s.name, "\""));
    }
    UniqueFd ns(::ioctl(s.fd, SIOCGSKNS));
    if (!ns) return ErrnoStatus(errno, absl::StrCat("fd ", s.fd, ": SIOCGSKNS"));
    struct stat nst {};
    if (::fstat(ns.get(), &nst) != 0) return ErrnoStatus(errno, absl::StrCat("fd ", s.fd, ": its namespace"));
    const std::string have = absl::StrCat(static_cast<uint64_t>(nst.st_dev), ":", static_cast<uint64_t>(nst.st_ino));
    if (have != want.substr(0, slash)) {
      return absl::FailedPreconditionError(
          absl::StrCat("fd ", s.fd, " is in network namespace ", have, ", not ", want.substr(0, slash)));
    }
    want.remove_prefix(slash + 1);
  }
  INTERLOCK_ASSIGN_OR_RETURN(net::SockAddr local, net::LocalAddr(s.fd));
  if (local.ToString() != want) {
    return absl::FailedPreconditionError(
        absl::StrCat("fd ", s.fd, " is bound to ", local.ToString(), ", not ", want));
  }
  return absl::OkStatus();
}

absl::Status SetCloexec(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return ErrnoStatus(errno, absl::StrCat("fcntl fd ", fd));
  flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (::fcntl(fd, F_SETFD, flags) != 0) return ErrnoStatus(errno, absl::StrCat("fcntl fd ", fd));
  return absl::OkStatus();
}

// "/usr/sbin/interlockd (deleted)" after dpkg replaced the file: the path is what counts.
absl::StatusOr<std::string> OwnProgram() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink /proc/self/exe");
  std::string path(buf, static_cast<size_t>(n));
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(path, kDeleted)) path.resize(path.size() - kDeleted.size());
  if (::access(path.c_str(), X_OK) != 0) return ErrnoStatus(errno, absl::StrCat("upgrade: ", path));
  return path;
}

std::string ExitText(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return absl::StrCat("ended (wait status ", status, ")");
}

}  // namespace

std::string NetnsSocketName(uint64_t ns_dev, uint64_t ns_ino, const net::SockAddr& addr) {
  return absl::StrCat(ns_dev, ":", ns_ino, "/", addr.ToString());
}

std::string FormatHandoverEnv(int ready_fd, int audit_fd,
                              const std::vector<HandoverSocket>& sockets) {
  std::string out = absl::StrCat("v1 ready=", ready_fd, " audit=", audit_fd);
  for (const HandoverSocket& s : sockets)
    absl::StrAppend(&out, " ", KindName(s.kind), "=", s.fd, "@", s.name);
  return out;
}

absl::StatusOr<HandoverEnv> ParseHandoverEnv(absl::string_view text) {
  std::vector<absl::string_view> items = absl::StrSplit(text, ' ', absl::SkipEmpty());
  if (items.empty() || items[0] != "v1") {
    return absl::InvalidArgumentError(
        absl::StrCat("handover: unknown format \"", text.substr(0, 16), "\""));
  }
  HandoverEnv env;
  auto fd_of = [](absl::string_view item, absl::string_view v) -> absl::StatusOr<int> {
    int fd = -1;
    if (!absl::SimpleAtoi(v, &fd) || fd < 3) {
      return absl::InvalidArgumentError(absl::StrCat("handover: bad fd in \"", item, "\""));
    }
    return fd;
  };
  for (size_t i = 1; i < items.size(); ++i) {
    absl::string_view item = items[i];
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("handover: no '=' in \"", item, "\""));
    }
    absl::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "ready" || key == "audit") {
      INTERLOCK_ASSIGN_OR_RETURN(int fd, fd_of(item, value));
      (key == "ready" ? env.ready_fd : env.audit_fd) = fd;
      continue;
    }
    if (key != "tcp" && key != "unix" && key != "netns") {
      return absl::InvalidArgumentError(absl::StrCat("handover: unknown item \"", item, "\""));
    }
    const size_t at = value.find('@');
    if (at == absl::string_view::npos || at + 1 == value.size()) {
      return absl::InvalidArgumentError(absl::StrCat("handover: no name in \"", item, "\""));
    }
    HandoverSocket s;
    s.kind = key == "tcp"    ? HandoverSocket::Kind::kTcp
             : key == "unix" ? HandoverSocket::Kind::kUnix
                             : HandoverSocket::Kind::kNetnsTcp;
    INTERLOCK_ASSIGN_OR_RETURN(s.fd, fd_of(item, value.substr(0, at)));
    s.name = std::string(value.substr(at + 1));
    env.sockets.push_back(std::move(s));
  }
  if (env.ready_fd < 0 || env.audit_fd < 0) {
    return absl::InvalidArgumentError("handover: ready= and audit= are required");
  }
  return env;
}

void Handover::SetCommandLine(int argc, char** argv) { CommandLine().assign(argv, argv + argc); }

absl::StatusOr<std::unique_ptr<Handover>> Handover::FromEnvironment() {
  std::unique_ptr<Handover> h(new Handover());
  const char* text = std::getenv(kEnvVar);
  if (text == nullptr) return h;
  const std::string copy = text;
  ::unsetenv(kEnvVar);  // not for whatever this process starts later
  auto env = ParseHandoverEnv(copy);
  if (!env.ok()) return env.status();
  // Owned from here, whatever happens next (closed on a refusal).
  h->inherited_ = true;
  h->parent_pid_ = ::getppid();
  h->ready_fd_.Reset(env->ready_fd);
  h->audit_fd_.Reset(env->audit_fd);
  for (const HandoverSocket& s : env->sockets) h->inherited_sockets_.push_back({s, UniqueFd(s.fd)});
  struct stat st {};
  if (::fstat(env->ready_fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("handover: ready fd ", env->ready_fd, " is not a pipe"));
  }
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(env->audit_fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX) {
    return absl::FailedPreconditionError(
        absl::StrCat("handover: audit fd ", env->audit_fd, " is not a unix socket"));
  }
  for (Inherited& in : h->inherited_sockets_) {
    INTERLOCK_RETURN_IF_ERROR(
        Annotate(CheckListener(in.socket),
                 absl::StrCat("handover: ", KindName(in.socket.kind), " ", in.socket.name)));
    // Ours now: not for whatever this process starts (Start() clears it again for its child).
    INTERLOCK_RETURN_IF_ERROR(SetCloexec(in.socket.fd, true));
  }
  INTERLOCK_RETURN_IF_ERROR(SetCloexec(env->ready_fd, true));
  INTERLOCK_RETURN_IF_ERROR(SetCloexec(env->audit_fd, true));
  INTERLOCK_LOG(kInfo, "handover: from pid %d, %d listening sockets",
                static_cast<int>(h->parent_pid_), static_cast<int>(h->inherited_sockets_.size()));
  return h;
}

Handover::~Handover() = default;

UniqueFd Handover::TakeInherited(HandoverSocket::Kind kind, const std::string& name) {
  for (Inherited& in : inherited_sockets_) {
    if (in.fd.valid() && in.socket.kind == kind && in.socket.name == name) return std::move(in.fd);
  }
  return UniqueFd();
}

absl::StatusOr<UniqueFd> Handover::ListenTcp(const net::SockAddr& addr, int backlog) {
  const std::string name = addr.ToString();
  UniqueFd fd = TakeInherited(HandoverSocket::Kind::kTcp, name);
  if (!fd.valid()) {
    INTERLOCK_ASSIGN_OR_RETURN(fd, net::ListenTcp(addr, backlog));
  }
  handed_out_.push_back({HandoverSocket::Kind::kTcp, fd.get(), name});
  return fd;
}

absl::StatusOr<UniqueFd> Handover::ListenTcpInNetns(int ns_fd, uint64_t ns_dev, uint64_t ns_ino,
                                                    const net::SockAddr& addr, int backlog) {
  const std::string name = NetnsSocketName(ns_dev, ns_ino, addr);
  UniqueFd fd = TakeInherited(HandoverSocket::Kind::kNetnsTcp, name);
  if (!fd.valid()) {
    INTERLOCK_ASSIGN_OR_RETURN(fd, net::ListenTcpInNetns(ns_fd, addr, backlog));
  }
  handed_out_.push_back({HandoverSocket::Kind::kNetnsTcp, fd.get(), name});
  return fd;
}

absl::StatusOr<UniqueFd> Handover::ListenUnix(const std::string& path, int mode) {
  UniqueFd fd = TakeInherited(HandoverSocket::Kind::kUnix, path);
  if (!fd.valid()) {
    INTERLOCK_ASSIGN_OR_RETURN(fd, net::ListenUnix(path, mode));
  }
  if (path.find(' ') == std::string::npos)
    handed_out_.push_back({HandoverSocket::Kind::kUnix, fd.get(), path});
  return fd;
}

void Handover::CloseUnclaimed() {
  for (Inherited& in : inherited_sockets_) {
    if (!in.fd.valid()) continue;
    INTERLOCK_LOG(kInfo, "handover: %s %s is not configured here: closed", KindName(in.socket.kind),
                  in.socket.name);
    in.fd.Reset();
  }
  inherited_sockets_.clear();
}

absl::Status Handover::SignalReady() {
  if (!ready_fd_.valid()) return absl::OkStatus();
  const char byte = 'R';
  ssize_t n;
  do {
    n = ::write(ready_fd_.get(), &byte, 1);
  } while (n < 0 && errno == EINTR);
  absl::Status st = n == 1 ? absl::OkStatus() : ErrnoStatus(errno, "handover: ready pipe");
  ready_fd_.Reset();
  return st;
}

absl::StatusOr<Handover::Started> Handover::Start(absl::Duration timeout, const Clock& clock) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string program, OwnProgram());
  std::vector<HandoverSocket> sockets;
  for (const HandoverSocket& s : handed_out_) {
    // Still ours and still that socket (a listener closed since, e.g. by a drain, is not
    // passed on; its number may have been reused).
    if (CheckListener(s).ok()) sockets.push_back(s);
  }
  if (sockets.empty())
    return absl::FailedPreconditionError("upgrade: no listening socket to hand over");
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, "upgrade: pipe");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  int audit[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, audit) != 0) {
    return ErrnoStatus(errno, "upgrade: socketpair");
  }
  UniqueFd audit_old(audit[0]), audit_new(audit[1]);

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe
  // calls (fcntl, sigprocmask, execve, _exit).
  const std::string env_text =
      absl::StrCat(kEnvVar, "=", FormatHandoverEnv(ready_w.get(), audit_new.get(), sockets));
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    // WATCHDOG_PID names this process: the new one, soon the main process, pings systemd's
    // watchdog (without the variable ServiceNotifier takes WATCHDOG_USEC as its own).
    if (absl::StartsWith(*e, absl::StrCat(kEnvVar, "=")) || absl::StartsWith(*e, "WATCHDOG_PID="))
      continue;
    env_strings.emplace_back(*e);
  }
  env_strings.push_back(env_text);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = CommandLine();
  if (args.empty()) args.push_back(program);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<int> pass = {ready_w.get(), audit_new.get()};
  for (const HandoverSocket& s : sockets) pass.push_back(s.fd);

  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "upgrade: fork");
  if (pid == 0) {
    for (int fd : pass) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags < 0 || ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0) ::_exit(126);
    }
    // The engine blocks the signals it reads with signalfd; the new one sets its own mask.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ready_w.Reset();
  audit_new.Reset();
  INTERLOCK_LOG(kInfo, "upgrade: started %s as pid %d with %d listening sockets", program,
                static_cast<int>(pid), static_cast<int>(sockets.size()));

  auto fail = [&](const std::string& why) -> absl::Status {
    return absl::UnavailableError(absl::StrCat("upgrade: ", program, " (pid ", pid, ") ", why,
                                               "; this interlockd (pid ", ::getpid(),
                                               ") keeps serving"));
  };
  const absl::Duration deadline = clock.Monotonic() + timeout;
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - clock.Monotonic());
    if (ms <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return fail(
          absl::StrCat("was not ready within ", absl::FormatDuration(timeout), " and was killed"));
    }
    pollfd p{ready_r.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
    if (n < 0 && errno != EINTR) return ErrnoStatus(errno, "upgrade: poll");
    if (n <= 0) continue;
    char byte = 0;
    ssize_t got = ::read(ready_r.get(), &byte, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got == 1 && byte == 'R') break;
    // EOF: the child closed the pipe without the byte, i.e. it is exiting (or exec failed).
    int status = 0;
    ::waitpid(pid, &status, 0);
    return fail(ExitText(status));
  }
  Started s;
  s.pid = pid;
  s.binary = program;
  s.audit = std::move(audit_old);
  return s;
}

}  // namespace interlock::daemon
