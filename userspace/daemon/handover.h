// Handover: a live binary upgrade of interlockd, nginx-style. The running interlockd (the
// old process) starts the interlockd binary now on disk as its child and gives it its
// listening sockets; the new process serves from them, and the old one stops accepting and
// lets its live sessions finish, then exits. No socket is ever closed or re-bound, so a
// connect made during the upgrade waits in the shared accept queue and is taken by
// whichever process accepts first; the kernel's "engine accepting" flag stays set
// throughout (new connects are never refused, and never go direct: the pinned programs
// keep redirecting).
//
//   old process (Engine::Upgrade)                new process (Engine::Init)
//   ------------------------------               ----------------------------------------
//   audit upgrade_started, flush
//   Handover::Start(): fork, exec                Handover::FromEnvironment(): validates
//     INTERLOCK_HANDOVER=<fds>                     every inherited fd (fstat, SO_ACCEPTCONN,
//   (blocks: writes no audit line)                 getsockname) or refuses to start
//                                                re-adopts the pins with accepting kept
//                                                Listen*(): the inherited sockets
//                                                SignalReady(): a byte on the ready pipe
//   ready: audit events now go to the new        MAINPID=<pid> READY=1 to systemd
//     process (audit socket), which chains them  emits what arrives on the audit socket
//   listeners, control socket closed (the
//   socket file is the new process's)
//   sessions drain, then exit 0
//
// Why the old process blocks while the new one starts: the audit file is one hash chain.
// The new process continues it from its last line when it opens it, so the old one must not
// append from the moment it forks; blocking (typically well under a second, at most the
// timeout) is the simplest way to be sure, and costs live sessions only latency (their
// bytes wait in the socket buffers) and new connects only a wait in the accept queue. After
// the handover the old process writes no audit line itself: it sends its events (session
// ends, its "stopped") to the new one, which chains them (and, upgraded in turn before the
// old one is done, relays them on: Engine::DrainDone). If the new process fails, the old
// one reopens the file (the child may have appended lines), writes its own settings,
// tables and enrollments back into the kernel (the child may have written its
// configuration's) and keeps serving. A new process leaves the control socket's file alone
// until it is ready (KeepSocketFile): failing, it must not unlink the old one's.
//
// Under systemd the old process (the main one) sends MAINPID=<new pid> when the new one is
// ready, and the new one MAINPID=<its pid> with READY=1 (taken with the unit's
// NotifyAccess=all; with NotifyAccess=main, e.g. a unit file not reloaded yet, the old
// process's message alone moves systemd to the new pid).
//
// Listeners in other network namespaces (NetnsListeners) are handed over too, named by
// the namespace's identity (nsfs device and inode) and address: the new process claims
// them at its first sync, which runs before CloseUnclaimed(), so a connect in such a
// namespace waits in the same accept queue as on the host. (One the new process does not
// want by then — a namespace no longer configured, or one discovery has not found yet —
// is closed, and re-bound at a later sync.)
//
//   // old process
//   INTERLOCK_ASSIGN_OR_RETURN(Handover::Started s, handover->Start(absl::Seconds(20), clock));
//   // new process
//   INTERLOCK_ASSIGN_OR_RETURN(auto handover, Handover::FromEnvironment());
//   INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, handover->ListenTcp(addr, 4096));
//   ...; handover->CloseUnclaimed(); (void)handover->SignalReady();
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/socket.h"

namespace interlock::daemon {

// What an inherited fd is, as INTERLOCK_HANDOVER names it.
struct HandoverSocket {
  enum class Kind { kTcp, kUnix, kNetnsTcp };
  Kind kind = Kind::kTcp;
  int fd = -1;
  // kTcp: the bound address as SockAddr::ToString() ("127.0.0.1:1015", "[::1]:1015");
  // kUnix: the bound path; kNetnsTcp: "DEV:INO/ADDRESS", the socket's network namespace
  // (nsfs device and inode) and its bound address ("4:4026532291/127.0.0.1:1015").
  std::string name;
};

// The kNetnsTcp name of a listener on `addr` in the namespace `ns_dev`:`ns_ino`.
std::string NetnsSocketName(uint64_t ns_dev, uint64_t ns_ino, const net::SockAddr& addr);

// INTERLOCK_HANDOVER's text: "v1 ready=R audit=A tcp=FD@NAME unix=FD@NAME netns=FD@NAME ..." (space
// separated; a unix path with a space is not handed over). Pure: for tests.
std::string FormatHandoverEnv(int ready_fd, int audit_fd,
                              const std::vector<HandoverSocket>& sockets);
struct HandoverEnv {
  int ready_fd = -1;
  int audit_fd = -1;
  std::vector<HandoverSocket> sockets;
};
// INVALID_ARGUMENT naming the bad item for anything malformed (unknown version or key, a
// fd that is not a number >= 3, a name missing).
absl::StatusOr<HandoverEnv> ParseHandoverEnv(absl::string_view text);

class Handover {
 public:
  static constexpr char kEnvVar[] = "INTERLOCK_HANDOVER";

  // Remembers the command line the new process is started with (main() calls it; the
  // default is just the program).
  static void SetCommandLine(int argc, char** argv);

  // Reads and unsets INTERLOCK_HANDOVER. Without it: a normal start (inherited() false).
  // With it, every described fd must be what it says (FAILED_PRECONDITION otherwise: the
  // new process refuses to start, and the old one keeps serving): a listening stream socket
  // bound to the named address or path; the ready fd a pipe, the audit fd a unix socket.
  static absl::StatusOr<std::unique_ptr<Handover>> FromEnvironment();
  Handover(const Handover&) = delete;
  Handover& operator=(const Handover&) = delete;
  ~Handover();

  // True in a process started by an upgrade.
  bool inherited() const { return inherited_; }
  pid_t parent_pid() const { return parent_pid_; }

  // The listening socket for `addr`: the inherited one bound to it, else a new one
  // (net::ListenTcp). Either way it is remembered for a later upgrade of this process.
  absl::StatusOr<UniqueFd> ListenTcp(const net::SockAddr& addr, int backlog);
  // The same for a unix socket at `path` (net::ListenUnix, with `mode`; an inherited one is
  // taken as it is: its file is already there).
  absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int mode);
  // The same in the network namespace `ns_fd` (an open namespace file whose identity is
  // `ns_dev`:`ns_ino`): the inherited listener of that namespace and address, else a new one
  // (net::ListenTcpInNetns).
  absl::StatusOr<UniqueFd> ListenTcpInNetns(int ns_fd, uint64_t ns_dev, uint64_t ns_ino, const net::SockAddr& addr,
                                            int backlog);
  // Closes the inherited sockets nothing asked for (a listener the configuration dropped).
  void CloseUnclaimed();
  // A socket Listen* handed out is being closed (a reload dropped its resource): not
  // passed on by a later Start().
  void Forget(int fd) {
    std::erase_if(handed_out_, [fd](const HandoverSocket& s) { return s.fd == fd; });
  }

  // New process: tells the old one this one serves (a byte on the ready pipe, then the
  // pipe is closed). No-op when not inherited.
  absl::Status SignalReady();
  // New process: the stream the old one sends its audit events on (framed like the control
  // API: u32 length || AuditEvent), -1 when not inherited. Owned here until TakeAuditFd().
  UniqueFd TakeAuditFd() { return std::move(audit_fd_); }

  struct Started {
    pid_t pid = 0;
    std::string binary;
    UniqueFd audit;  // the old end of the audit stream (blocking)
  };
  // Old process: starts the program this process runs (/proc/self/exe's path: after a
  // package upgrade, the new file at that path) with the same arguments, passing every
  // socket handed out by Listen* that is still open, and waits up to `timeout` for its
  // ready byte. Errors: the fork/exec failed, the child exited first (its exit status), or
  // timed out (it is killed). The child is not reaped on success: it outlives this process.
  // `clock` measures the timeout.
  absl::StatusOr<Started> Start(absl::Duration timeout, const Clock& clock);

 private:
  Handover() = default;
  // The inherited socket of that kind and name, not yet claimed; an invalid fd if none.
  UniqueFd TakeInherited(HandoverSocket::Kind kind, const std::string& name);

  bool inherited_ = false;
  pid_t parent_pid_ = 0;
  UniqueFd ready_fd_;
  UniqueFd audit_fd_;
  struct Inherited {
    HandoverSocket socket;
    UniqueFd fd;
  };
  std::vector<Inherited> inherited_sockets_;
  // Sockets this process listens on (fds owned elsewhere), for Start().
  std::vector<HandoverSocket> handed_out_;
};

}  // namespace interlock::daemon
