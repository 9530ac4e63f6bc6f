// Socket helpers for the engine: addresses, non-blocking TCP listen/accept/connect, unix
// stream sockets, peer credentials. Every error names the address it was about.
//
//   INTERLOCK_ASSIGN_OR_RETURN(SockAddr addr, SockAddr::Parse("127.0.0.1", 15001));
//   INTERLOCK_ASSIGN_OR_RETURN(UniqueFd lfd, ListenTcp(addr, 4096));
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {

// An IPv4 or IPv6 socket address.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  static absl::StatusOr<SockAddr> Parse(absl::string_view ip, uint16_t port);
  // From 16 bytes (network order, IPv4-mapped for IPv4) and a host-order port. IPv4-mapped
  // addresses become AF_INET.
  static SockAddr FromMapped(const uint8_t addr16[16], uint16_t port);
  // A unix-domain socket path (AF_UNIX; at most 107 bytes, the caller checked).
  static SockAddr Unix(const std::string& path);

  int family() const { return storage.ss_family; }
  uint16_t port() const;          // 0 for AF_UNIX
  std::string ip() const;         // "127.0.0.1", "::1"; the path for AF_UNIX
  std::string ToString() const;   // "127.0.0.1:80", "[::1]:80", "unix:/run/x.sock"
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

absl::StatusOr<UniqueFd> ListenTcp(const SockAddr& addr, int backlog);

// ListenTcp in another network namespace: `netns_fd` is an open namespace file
// (/run/netns/NAME, /proc/PID/ns/net). A short-lived thread joins that namespace
// (setns(CLONE_NEWNET) changes only the calling thread's), creates, binds and listens,
// and ends; the socket stays in that namespace, the caller's thread never leaves its
// own. Needs CAP_SYS_ADMIN. Errors: setns's (PERMISSION_DENIED, INVALID_ARGUMENT for a
// file that is not a network namespace), then ListenTcp's (e.g. ALREADY_EXISTS /
// UNAVAILABLE when the address is taken or absent there).
absl::StatusOr<UniqueFd> ListenTcpInNetns(int netns_fd, const SockAddr& addr, int backlog);

// Accepts one connection, non-blocking and close-on-exec. std::nullopt when none is
// pending (EAGAIN) or the peer went away before accept (ECONNABORTED).
absl::StatusOr<std::optional<UniqueFd>> AcceptTcp(int listen_fd);

// Starts a non-blocking connect. The fd becomes writable when the connect completes;
// then ConnectResult() tells how it went.
absl::StatusOr<UniqueFd> ConnectTcpNonBlocking(const SockAddr& addr);
absl::Status ConnectResult(int fd, const SockAddr& addr);

absl::StatusOr<SockAddr> LocalAddr(int fd);
absl::StatusOr<SockAddr> PeerAddr(int fd);

// Unix stream sockets for the control API. ListenUnix removes a stale socket file,
// binds with `mode`, and is non-blocking.
absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int mode);
absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path);

struct PeerCred {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};
absl::StatusOr<PeerCred> GetPeerCred(int fd);
// A pidfd of the process that connected (SO_PEERPIDFD, Linux >= 6.5): while it is open
// and that process lives, its pid names it and no other. NOT_FOUND when it has exited.
absl::StatusOr<UniqueFd> GetPeerPidfd(int fd);
// Whether the process behind `pidfd` still runs (so its pid was not reused).
bool PidfdAlive(int pidfd);

// Blocking helpers for short control exchanges (CLI side, and tests).
absl::Status WriteAll(int fd, absl::string_view data);
absl::Status ReadExact(int fd, char* buf, size_t len);

}  // namespace interlock::net
