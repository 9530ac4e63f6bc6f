// Dropping privileges for a child that is about to exec an untrusted program (the agent
// of `interlock run`). Two halves:
//
//  * ResolveCredentials: pure. The command line (--user, --group, --allow-root) and the
//    invoker's SUDO_UID/SUDO_GID, against an injected user database, become a
//    Credentials value — or a status saying why not (unknown user, root refused).
//  * PreparedDrop / ApplyDrop: PrepareDrop does every allocation and lookup in the
//    parent (group ids, the environment, the kernel's last capability); ApplyDrop runs in
//    the child between fork and exec and is async-signal-safe: syscalls only, no malloc,
//    no locks. It fails closed: after dropping it checks that the ids are what was asked,
//    that no capability is left and that setuid(0) is refused.
//
//   INTERLOCK_ASSIGN_OR_RETURN(Credentials c, ResolveCredentials(spec, SystemUserDb()));
//   INTERLOCK_ASSIGN_OR_RETURN(PreparedDrop drop, PrepareDrop(c, environ));
//   pid_t pid = fork();
//   if (pid == 0) {
//     DropFailure f = ApplyDrop(drop);
//     if (f.stage != DropStage::kNone) { /* report f to the parent, _exit */ }
//     environ = drop.envp(); execvp(...);
//   }
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace interlock {

// One passwd entry, the fields we use.
struct UserEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // primary group
  std::string home;
};

// The user and group database. SystemUserDb() reads it through getpwnam_r & co. (NSS);
// tests inject a table.
class UserDb {
 public:
  virtual ~UserDb() = default;
  virtual std::optional<UserEntry> UserByName(const std::string& name) const = 0;
  virtual std::optional<UserEntry> UserById(uid_t uid) const = 0;
  virtual std::optional<gid_t> GroupByName(const std::string& name) const = 0;
};
const UserDb& SystemUserDb();

// What the invoker asked for. Empty strings mean "not given".
struct PrivilegeSpec {
  std::string user;   // --user NAME|UID
  std::string group;  // --group NAME|GID
  bool allow_root = false;
  // The invoker's environment: sudo's record of who ran it. Used when --user is absent.
  std::optional<std::string> sudo_uid;
  std::optional<std::string> sudo_gid;
};

// Who the child will be.
struct Credentials {
  // false: the child keeps the invoker's ids and capabilities (root, with --allow-root).
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
  // Set when the target has a passwd entry: HOME, USER and LOGNAME for the child, so
  // that tools do not look for their dotfiles in the invoker's (root's) home.
  std::optional<UserEntry> entry;
};

// Resolves the spec. A value that is all digits is an id, anything else a name.
//  * --user given: that user; its primary group unless --group is given. A numeric uid
//    with no passwd entry needs --group (we do not guess a group).
//  * no --user, SUDO_UID set: that user (sudo's invoker); group from SUDO_GID, else the
//    passwd entry's.
//  * neither: the invoker stays who it is (`invoker_uid`).
// Errors (INVALID_ARGUMENT / NOT_FOUND / PERMISSION_DENIED), each with the flag as
// context: unknown user or group, malformed id or SUDO_UID, a uid of 0 without
// allow_root, --group for a root target.
absl::StatusOr<Credentials> ResolveCredentials(const PrivilegeSpec& spec, const UserDb& db,
                                               uid_t invoker_uid);

// `--preserve-fds N`: a non-negative decimal count of at most kMaxPreserveFds.
inline constexpr int kMaxPreserveFds = 1024;
absl::StatusOr<int> ParsePreserveFds(const std::string& text);

// Which step of ApplyDrop failed.
enum class DropStage : int {
  kNone = 0,
  kAmbient,     // PR_CAP_AMBIENT_CLEAR_ALL
  kBounding,    // PR_CAPBSET_DROP
  kGroups,      // setgroups(0, NULL)
  kGid,         // setresgid
  kUid,         // setresuid
  kCaps,        // capset to nothing
  kNoNewPrivs,  // PR_SET_NO_NEW_PRIVS
  kVerify,      // the ids, groups or capabilities are not what was asked; or setuid(0) worked
};
const char* DropStageName(DropStage stage);

struct DropFailure {
  DropStage stage = DropStage::kNone;
  int err = 0;  // errno of the failed call; 0 for kVerify
};

// Everything ApplyDrop needs, computed before fork. Owns the environment strings that
// envp() points into; not copyable (envp points into it), movable through unique_ptr.
class PreparedDrop {
 public:
  PreparedDrop() = default;
  PreparedDrop(const PreparedDrop&) = delete;
  PreparedDrop& operator=(const PreparedDrop&) = delete;

  bool drop() const { return drop_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  int last_cap() const { return last_cap_; }
  // NULL-terminated, for `environ = envp()` in the child.
  char** envp() { return envp_.data(); }

 private:
  friend absl::StatusOr<std::unique_ptr<PreparedDrop>> PrepareDrop(const Credentials& creds,
                                                                   char** environ_in);
  bool drop_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int last_cap_ = 0;
  std::vector<std::string> env_;
  std::vector<char*> envp_;
};

// Copies `environ_in` (NULL-terminated), replacing HOME, USER and LOGNAME when the
// target has a passwd entry, and reads /proc/sys/kernel/cap_last_cap. Errors: that file
// unreadable or nonsense (we would not know which capabilities to drop).
absl::StatusOr<std::unique_ptr<PreparedDrop>> PrepareDrop(const Credentials& creds,
                                                          char** environ_in);

// The child's half; async-signal-safe. With drop() false it does nothing. Otherwise, in
// this order (each step needs the privilege the next one removes): clear ambient
// capabilities; drop every capability 0..last_cap from the bounding set (needs
// CAP_SETPCAP); setgroups(0, NULL) — no supplementary groups at all, not the target's
// (see README: a group such as `disk` or `docker` would be a privilege the operator did
// not grant on the command line); setresgid; setresuid; capset to nothing (setresuid
// leaves the inheritable set); PR_SET_NO_NEW_PRIVS. Then verifies all of it.
DropFailure ApplyDrop(const PreparedDrop& drop);

// Marks every fd >= first_fd close-on-exec (close_range(first_fd, ~0U,
// CLOSE_RANGE_CLOEXEC); on kernels without it, fcntl on each fd below `fd_limit`, which
// the caller reads from RLIMIT_NOFILE before fork). Marking rather than closing lets the
// caller keep its own CLOEXEC pipe open up to exec. Async-signal-safe; returns 0 or an
// errno.
int CloseOnExecFrom(int first_fd, int fd_limit);

}  // namespace interlock
