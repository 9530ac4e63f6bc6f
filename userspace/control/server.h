// ControlServer: the daemon side of the control API, on the event loop. Each connection
// is checked once, at accept, with SO_PEERCRED: the peer must be root or in the admin
// group, and must not run inside an enrolled cgroup (an agent can never drive its own
// enforcement). Then one framed request is read, handed to the handler, and the
// response written.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "interlock/v1/control.pb.h"
#include "userspace/control/framing.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/socket.h"

namespace interlock::control {

struct Caller {
  net::PeerCred cred;
  std::string cgroup_path;  // relative to the cgroup2 mount
};

// Pure authorization decision. `admin_gid` unset means root only. `in_enrolled_cgroup`
// is the engine's answer for the caller's cgroup. Returns PERMISSION_DENIED with the
// reason.
absl::Status AuthorizeCaller(const Caller& caller, std::optional<gid_t> admin_gid,
                             const std::vector<gid_t>& caller_groups,
                             bool in_enrolled_cgroup);

class ControlServer {
 public:
  using Handler = std::function<v1::ControlResponse(const v1::ControlRequest&, const Caller&)>;
  // True when the caller is an enrolled workload (by its cgroup, unit, user or group).
  using EnrolledCheck = std::function<bool(const Caller& caller)>;

  static absl::StatusOr<std::unique_ptr<ControlServer>> Create(
      net::EventLoop& loop, const std::string& path, std::optional<gid_t> admin_gid,
      EnrolledCheck enrolled, Handler handler, std::function<void(const Caller&, const absl::Status&)> on_refused);
  // The same on a socket already listening at `path` (inherited in a handover:
  // userspace/daemon/handover.h).
  static absl::StatusOr<std::unique_ptr<ControlServer>> Create(
      net::EventLoop& loop, const std::string& path, UniqueFd listen_fd, std::optional<gid_t> admin_gid,
      EnrolledCheck enrolled, Handler handler, std::function<void(const Caller&, const absl::Status&)> on_refused);
  // The destructor then leaves the socket file (another process serves it now), or, with
  // false, removes it again.
  void KeepSocketFile(bool keep = true) { keep_socket_file_ = keep; }
  ~ControlServer();

 private:
  struct Conn;
  class Listener;
  ControlServer(net::EventLoop& loop, std::string path, UniqueFd fd,
                std::optional<gid_t> admin_gid, EnrolledCheck enrolled, Handler handler,
                std::function<void(const Caller&, const absl::Status&)> on_refused);
  void OnAccept();
  void OnConn(Conn* conn, uint32_t events);
  void CloseConn(Conn* conn);

  net::EventLoop& loop_;
  std::string path_;
  UniqueFd fd_;
  std::optional<gid_t> admin_gid_;
  EnrolledCheck enrolled_;
  Handler handler_;
  std::function<void(const Caller&, const absl::Status&)> on_refused_;
  std::unique_ptr<Listener> listener_;
  absl::flat_hash_map<Conn*, std::unique_ptr<Conn>> conns_;
  bool keep_socket_file_ = false;
};

}  // namespace interlock::control
