#include "userspace/common/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/common/file_util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace interlock {

namespace {

class SystemDb final : public UserDb {
 public:
  std::optional<UserEntry> UserByName(const std::string& name) const override {
    return Lookup([&](passwd* pw, char* buf, size_t len, passwd** out) {
      return ::getpwnam_r(name.c_str(), pw, buf, len, out);
    });
  }
  std::optional<UserEntry> UserById(uid_t uid) const override {
    return Lookup([&](passwd* pw, char* buf, size_t len, passwd** out) {
      return ::getpwuid_r(uid, pw, buf, len, out);
    });
  }
  std::optional<gid_t> GroupByName(const std::string& name) const override {
    std::vector<char> buf(16384);
    for (;;) {
      group gr{};
      group* out = nullptr;
      int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &out);
      if (rc == ERANGE && buf.size() < (1u << 24)) {
        buf.resize(buf.size() * 2);
        continue;
      }
      if (rc != 0 || out == nullptr) return std::nullopt;
      return out->gr_gid;
    }
  }

 private:
  template <typename F>
  static std::optional<UserEntry> Lookup(F call) {
    std::vector<char> buf(16384);
    for (;;) {
      passwd pw{};
      passwd* out = nullptr;
      int rc = call(&pw, buf.data(), buf.size(), &out);
      if (rc == ERANGE && buf.size() < (1u << 24)) {
        buf.resize(buf.size() * 2);
        continue;
      }
      if (rc != 0 || out == nullptr) return std::nullopt;
      return UserEntry{out->pw_name, out->pw_uid, out->pw_gid,
                       out->pw_dir != nullptr ? out->pw_dir : ""};
    }
  }
};

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A uid or gid in decimal. (uid_t)-1 is not an id: setresuid reads it as "leave as is".
std::optional<uint32_t> ParseId(const std::string& s) {
  uint32_t v;
  if (!AllDigits(s) || !absl::SimpleAtoi(s, &v) || v == static_cast<uint32_t>(-1)) {
    return std::nullopt;
  }
  return v;
}

// Raw capget/capset: glibc has no wrapper and libcap is one more dependency for two calls.
struct CapSets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
};

}  // namespace

const UserDb& SystemUserDb() {
  static const SystemDb db;
  return db;
}

absl::StatusOr<Credentials> ResolveCredentials(const PrivilegeSpec& spec, const UserDb& db,
                                               uid_t invoker_uid) {
  Credentials c;
  std::string source;  // where the user came from, for messages
  bool have_user = true;
  if (!spec.user.empty()) {
    source = absl::StrCat("--user ", spec.user);
    if (AllDigits(spec.user)) {
      std::optional<uint32_t> id = ParseId(spec.user);
      if (!id) return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid uid"));
      c.uid = *id;
      c.entry = db.UserById(c.uid);
    } else {
      c.entry = db.UserByName(spec.user);
      if (!c.entry) return absl::NotFoundError(absl::StrCat(source, ": no such user"));
      c.uid = c.entry->uid;
    }
  } else if (spec.sudo_uid.has_value() && !spec.sudo_uid->empty()) {
    source = absl::StrCat("SUDO_UID=", *spec.sudo_uid);
    std::optional<uint32_t> id = ParseId(*spec.sudo_uid);
    if (!id) return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid uid"));
    c.uid = *id;
    c.entry = db.UserById(c.uid);
  } else {
    source = "no --user and no SUDO_UID: the agent would run as the invoker";
    have_user = false;
    c.uid = invoker_uid;
  }

  if (c.uid == 0) {
    if (!spec.allow_root) {
      return absl::PermissionDeniedError(absl::StrCat(
          source, have_user ? " is root" : ", root",
          ": refusing to run the agent as root (root can detach or unpin interlock's BPF "
          "programs, move itself out of its cgroup, kill interlockd and read its state "
          "dir); give --user NAME, or --allow-root"));
    }
    if (!spec.group.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--group ", spec.group, ": needs a non-root user (root keeps its groups)"));
    }
    c.drop = false;  // root stays root, with its capabilities: --allow-root means that
    return c;
  }
  if (!have_user) {
    // A non-root invoker: there is nothing to drop and no right to change ids.
    if (!spec.group.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--group ", spec.group, ": needs --user (or SUDO_UID)"));
    }
    c.drop = false;
    return c;
  }

  c.drop = true;
  if (!spec.group.empty()) {
    std::string gsource = absl::StrCat("--group ", spec.group);
    if (AllDigits(spec.group)) {
      std::optional<uint32_t> id = ParseId(spec.group);
      if (!id) return absl::InvalidArgumentError(absl::StrCat(gsource, ": not a valid gid"));
      c.gid = *id;
    } else {
      std::optional<gid_t> g = db.GroupByName(spec.group);
      if (!g) return absl::NotFoundError(absl::StrCat(gsource, ": no such group"));
      c.gid = *g;
    }
  } else if (spec.user.empty() && spec.sudo_gid.has_value() && !spec.sudo_gid->empty()) {
    std::optional<uint32_t> id = ParseId(*spec.sudo_gid);
    if (!id) {
      return absl::InvalidArgumentError(
          absl::StrCat("SUDO_GID=", *spec.sudo_gid, ": not a valid gid"));
    }
    c.gid = *id;
  } else if (c.entry) {
    c.gid = c.entry->gid;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no passwd entry for uid ", c.uid,
                                                   ", so no primary group: give --group"));
  }
  return c;
}

absl::StatusOr<int> ParsePreserveFds(const std::string& text) {
  int n;
  if (!AllDigits(text) || text.size() > 9 || !absl::SimpleAtoi(text, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--preserve-fds ", text, ": not a non-negative number"));
  }
  if (n > kMaxPreserveFds) {
    return absl::InvalidArgumentError(
        absl::StrCat("--preserve-fds ", text, ": more than ", kMaxPreserveFds));
  }
  return n;
}

const char* DropStageName(DropStage stage) {
  switch (stage) {
    case DropStage::kNone:
      return "none";
    case DropStage::kAmbient:
      return "clear ambient capabilities";
    case DropStage::kBounding:
      return "drop bounding capabilities";
    case DropStage::kGroups:
      return "setgroups";
    case DropStage::kGid:
      return "setresgid";
    case DropStage::kUid:
      return "setresuid";
    case DropStage::kCaps:
      return "capset";
    case DropStage::kNoNewPrivs:
      return "no_new_privs";
    case DropStage::kVerify:
      return "verify";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<PreparedDrop>> PrepareDrop(const Credentials& creds,
                                                          char** environ_in) {
  auto p = std::make_unique<PreparedDrop>();
  p->drop_ = creds.drop;
  p->uid_ = creds.uid;
  p->gid_ = creds.gid;
  if (creds.drop) {
    auto text = ReadFile("/proc/sys/kernel/cap_last_cap");
    if (!text.ok()) return text.status();
    int last;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &last) || last < 0 || last > 1023) {
      return absl::InternalError(
          absl::StrCat("/proc/sys/kernel/cap_last_cap: unexpected \"", *text, "\""));
    }
    p->last_cap_ = last;
  }
  auto replaced = [&](const char* e) {
    if (!creds.entry) return false;
    for (const char* k : {"HOME=", "USER=", "LOGNAME="}) {
      if (std::strncmp(e, k, std::strlen(k)) == 0) return true;
    }
    return false;
  };
  for (char** e = environ_in; e != nullptr && *e != nullptr; ++e) {
    if (!replaced(*e)) p->env_.emplace_back(*e);
  }
  if (creds.entry) {
    p->env_.push_back(absl::StrCat("HOME=", creds.entry->home));
    p->env_.push_back(absl::StrCat("USER=", creds.entry->name));
    p->env_.push_back(absl::StrCat("LOGNAME=", creds.entry->name));
  }
  for (std::string& s : p->env_) p->envp_.push_back(s.data());
  p->envp_.push_back(nullptr);
  return p;
}

// Between fork and exec: syscalls only. The id changes go through syscall() rather than
// glibc's wrappers, which in a threaded process broadcast the change to every thread
// with signals; the forked child has one thread and must not depend on that machinery.
DropFailure ApplyDrop(const PreparedDrop& d) {
  if (!d.drop()) return {};
  auto fail = [](DropStage s) { return DropFailure{s, errno}; };
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return fail(DropStage::kAmbient);
  }
  for (int cap = 0; cap <= d.last_cap(); ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return fail(DropStage::kBounding);
  }
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) return fail(DropStage::kGroups);
  if (::syscall(SYS_setresgid, d.gid(), d.gid(), d.gid()) != 0) return fail(DropStage::kGid);
  if (::syscall(SYS_setresuid, d.uid(), d.uid(), d.uid()) != 0) return fail(DropStage::kUid);
  CapSets none;  // all zero
  if (::syscall(SYS_capset, &none.header, none.data) != 0) return fail(DropStage::kCaps);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(DropStage::kNoNewPrivs);

  // Fail closed: check the result rather than trusting the calls above.
  const DropFailure bad{DropStage::kVerify, 0};
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (::syscall(SYS_getresuid, &ru, &eu, &su) != 0 || ru != d.uid() || eu != d.uid() ||
      su != d.uid()) {
    return bad;
  }
  if (::syscall(SYS_getresgid, &rg, &eg, &sg) != 0 || rg != d.gid() || eg != d.gid() ||
      sg != d.gid()) {
    return bad;
  }
  if (::syscall(SYS_getgroups, 0, nullptr) != 0) return bad;
  CapSets now;
  if (::syscall(SYS_capget, &now.header, now.data) != 0) return bad;
  for (const auto& s : now.data) {
    if (s.effective != 0 || s.permitted != 0 || s.inheritable != 0) return bad;
  }
  for (int cap = 0; cap <= d.last_cap(); ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0) return bad;
  }
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return bad;
  if (d.uid() != 0 && ::syscall(SYS_setresuid, 0, 0, 0) == 0) return bad;
  if (d.gid() != 0 && ::syscall(SYS_setresgid, 0, 0, 0) == 0) return bad;
  return {};
}

int CloseOnExecFrom(int first_fd, int fd_limit) {
  if (::syscall(SYS_close_range, static_cast<unsigned>(first_fd), ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
    return 0;
  }
  // Kernels before 5.11: mark them one by one (EBADF for the ones not open).
  for (int fd = first_fd; fd < fd_limit; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) return errno;
  }
  return 0;
}

}  // namespace interlock
