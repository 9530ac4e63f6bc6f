#include "userspace/control/server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/file_util.h"

namespace interlock::control {

namespace {

// Supplementary groups and the real gid of `pid`, from /proc/<pid>/status.
std::vector<gid_t> GroupsOfPid(pid_t pid) {
  std::vector<gid_t> out;
  auto text = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!text.ok()) return out;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, "Groups:")) {
      for (absl::string_view g : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        uint32_t gid;
        if (absl::SimpleAtoi(g, &gid)) out.push_back(gid);
      }
    }
  }
  return out;
}

v1::ControlResponse ErrorResponse(const absl::Status& st) {
  v1::ControlResponse resp;
  resp.set_error_code(static_cast<int>(st.code()));
  resp.set_error(std::string(st.message()));
  return resp;
}

}  // namespace

absl::Status AuthorizeCaller(const Caller& caller, std::optional<gid_t> admin_gid,
                             const std::vector<gid_t>& caller_groups, bool in_enrolled_cgroup) {
  if (in_enrolled_cgroup) {
    return absl::PermissionDeniedError(absl::StrCat(
        "control: refused: caller pid ", caller.cred.pid, " (uid ", caller.cred.uid,
        ", cgroup ", caller.cgroup_path, ") is an enrolled workload; a workload cannot use "
        "the control API"));
  }
  if (caller.cred.uid == 0) return absl::OkStatus();
  if (admin_gid.has_value() &&
      (caller.cred.gid == *admin_gid ||
       std::find(caller_groups.begin(), caller_groups.end(), *admin_gid) != caller_groups.end())) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "control: refused: uid ", caller.cred.uid, " is neither root nor in the admin group"));
}

struct ControlServer::Conn final : net::IoHandler {
  ControlServer* server;
  UniqueFd fd;
  Caller caller;
  FrameDecoder decoder;
  void OnIo(uint32_t events) override { server->OnConn(this, events); }
};

class ControlServer::Listener final : public net::IoHandler {
 public:
  explicit Listener(ControlServer* s) : s_(s) {}
  void OnIo(uint32_t) override { s_->OnAccept(); }

 private:
  ControlServer* s_;
};

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Create(
    net::EventLoop& loop, const std::string& path, std::optional<gid_t> admin_gid,
    EnrolledCheck enrolled, Handler handler,
    std::function<void(const Caller&, const absl::Status&)> on_refused) {
  // 0660: the socket's group (set by the service) lets admins connect; the peer check
  // decides what they may do.
  auto fd = net::ListenUnix(path, 0660);
  if (!fd.ok()) return fd.status();
  return Create(loop, path, std::move(*fd), admin_gid, std::move(enrolled), std::move(handler),
                std::move(on_refused));
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Create(
    net::EventLoop& loop, const std::string& path, UniqueFd listen_fd, std::optional<gid_t> admin_gid,
    EnrolledCheck enrolled, Handler handler,
    std::function<void(const Caller&, const absl::Status&)> on_refused) {
  if (admin_gid.has_value() && ::chown(path.c_str(), 0, *admin_gid) != 0) {
    return absl::InternalError(absl::StrCat("control: chown ", path, ": ", strerror(errno)));
  }
  std::unique_ptr<ControlServer> s(new ControlServer(loop, path, std::move(listen_fd), admin_gid,
                                                     std::move(enrolled), std::move(handler),
                                                     std::move(on_refused)));
  s->listener_ = std::make_unique<Listener>(s.get());
  auto st = loop.Add(s->fd_.get(), EPOLLIN, s->listener_.get());
  if (!st.ok()) return st;
  return s;
}

ControlServer::ControlServer(net::EventLoop& loop, std::string path, UniqueFd fd,
                             std::optional<gid_t> admin_gid, EnrolledCheck enrolled,
                             Handler handler,
                             std::function<void(const Caller&, const absl::Status&)> on_refused)
    : loop_(loop),
      path_(std::move(path)),
      fd_(std::move(fd)),
      admin_gid_(admin_gid),
      enrolled_(std::move(enrolled)),
      handler_(std::move(handler)),
      on_refused_(std::move(on_refused)) {}

ControlServer::~ControlServer() {
  loop_.Remove(fd_.get());
  for (auto& [ptr, conn] : conns_) loop_.Remove(conn->fd.get());
  if (!keep_socket_file_) ::unlink(path_.c_str());
}

void ControlServer::OnAccept() {
  for (;;) {
    int cfd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;  // EAGAIN or a transient error: nothing to do until next wake-up
    auto conn = std::make_unique<Conn>();
    conn->server = this;
    conn->fd.Reset(cfd);
    auto cred = net::GetPeerCred(cfd);
    if (!cred.ok()) continue;
    conn->caller.cred = *cred;
    auto cg = CgroupPathOfPid(cred->pid);
    conn->caller.cgroup_path = cg.ok() ? *cg : "";
    // Unknown cgroup (process gone or unreadable) counts as enrolled: fail closed.
    bool enrolled = !cg.ok() || enrolled_(conn->caller);
    absl::Status auth =
        AuthorizeCaller(conn->caller, admin_gid_, GroupsOfPid(cred->pid), enrolled);
    if (!auth.ok()) {
      if (on_refused_) on_refused_(conn->caller, auth);
      (void)net::WriteAll(cfd, EncodeFrame(ErrorResponse(auth)));
      continue;  // conn (and the fd) dropped here
    }
    if (!loop_.Add(cfd, EPOLLIN, conn.get()).ok()) continue;
    Conn* raw = conn.get();
    conns_.emplace(raw, std::move(conn));
  }
}

void ControlServer::OnConn(Conn* conn, uint32_t events) {
  if (conns_.find(conn) == conns_.end()) return;
  char buf[16384];
  ssize_t n = ::read(conn->fd.get(), buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    CloseConn(conn);
    return;
  }
  if (n < 0) return;
  conn->decoder.Append(absl::string_view(buf, static_cast<size_t>(n)));
  auto frame = conn->decoder.Next();
  v1::ControlResponse resp;
  if (!frame.ok()) {
    resp = ErrorResponse(frame.status());
  } else if (!frame->has_value()) {
    return;  // need more bytes
  } else {
    v1::ControlRequest req;
    if (!req.ParseFromString(**frame)) {
      resp = ErrorResponse(absl::InvalidArgumentError("control: malformed request"));
    } else {
      resp = handler_(req, conn->caller);
    }
  }
  // Responses are small and the peer is a trusted admin tool waiting for them: write
  // blocking with a short deadline rather than buffering per connection.
  int flags = ::fcntl(conn->fd.get(), F_GETFL);
  ::fcntl(conn->fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  timeval tv{2, 0};
  ::setsockopt(conn->fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  (void)net::WriteAll(conn->fd.get(), EncodeFrame(resp));
  CloseConn(conn);
}

void ControlServer::CloseConn(Conn* conn) {
  loop_.Remove(conn->fd.get());
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  // Destroy after this dispatch batch: epoll may still hold an event for it.
  std::unique_ptr<Conn> owned = std::move(it->second);
  conns_.erase(it);
  Conn* raw = owned.release();
  loop_.Defer([raw] { delete raw; });
}

}  // namespace interlock::control
