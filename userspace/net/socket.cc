#include "userspace/net/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace interlock::net {

absl::StatusOr<SockAddr> SockAddr::Parse(absl::string_view ip, uint16_t port) {
  SockAddr out;
  std::string text(ip);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("not an IP address: \"", ip, "\""));
}

SockAddr SockAddr::FromMapped(const uint8_t addr16[16], uint16_t port) {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  SockAddr out;
  if (std::memcmp(addr16, kMappedPrefix, 12) == 0) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    std::memcpy(&v4->sin_addr, addr16 + 12, 4);
    out.len = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    std::memcpy(&v6->sin6_addr, addr16, 16);
    out.len = sizeof(sockaddr_in6);
  }
  return out;
}

SockAddr SockAddr::Unix(const std::string& path) {
  SockAddr out;
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
  un->sun_family = AF_UNIX;
  const size_t n = std::min(path.size(), sizeof un->sun_path - 1);
  std::memcpy(un->sun_path, path.data(), n);
  out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
  return out;
}

uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

std::string SockAddr::ip() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
  } else if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
    return std::string(un->sun_path, strnlen(un->sun_path, sizeof un->sun_path));
  }
  return buf;
}

std::string SockAddr::ToString() const {
  if (family() == AF_UNIX) return absl::StrCat("unix:", ip());
  if (family() == AF_INET6) return absl::StrCat("[", ip(), "]:", port());
  return absl::StrCat(ip(), ":", port());
}

absl::StatusOr<UniqueFd> ListenTcp(const SockAddr& addr, int backlog) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("socket for ", addr.ToString()));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.family() == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd.get(), addr.sa(), addr.len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", addr.ToString()));
  }
  if (::listen(fd.get(), backlog) != 0) {
    return ErrnoStatus(errno, absl::StrCat("listen ", addr.ToString()));
  }
  return fd;
}

absl::StatusOr<UniqueFd> ListenTcpInNetns(int netns_fd, const SockAddr& addr, int backlog) {
  absl::StatusOr<UniqueFd> result = absl::InternalError("netns listener thread did not run");
  // A thread of its own: setns() moves only the calling thread, and this one ends right
  // after, so no other work of the process ever runs in the foreign namespace.
  std::thread worker([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, absl::StrCat("setns to network namespace for ", addr.ToString()));
      return;
    }
    result = ListenTcp(addr, backlog);
  });
  worker.join();
  return result;
}

absl::StatusOr<std::optional<UniqueFd>> AcceptTcp(int listen_fd) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return std::optional<UniqueFd>(UniqueFd(fd));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == ECONNABORTED) return std::optional<UniqueFd>();
    return ErrnoStatus(errno, "accept");
  }
}

absl::StatusOr<UniqueFd> ConnectTcpNonBlocking(const SockAddr& addr) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("socket for ", addr.ToString()));
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), addr.sa(), addr.len) != 0 && errno != EINPROGRESS) {
    return ErrnoStatus(errno, absl::StrCat("connect ", addr.ToString()));
  }
  return fd;
}

absl::Status ConnectResult(int fd, const SockAddr& addr) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return ErrnoStatus(err, absl::StrCat("connect ", addr.ToString()));
  return absl::OkStatus();
}

absl::StatusOr<SockAddr> LocalAddr(int fd) {
  SockAddr out;
  out.len = sizeof out.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  return out;
}

absl::StatusOr<SockAddr> PeerAddr(int fd) {
  SockAddr out;
  out.len = sizeof out.storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.len) != 0) {
    return ErrnoStatus(errno, "getpeername");
  }
  return out;
}

static absl::StatusOr<sockaddr_un> UnixAddr(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path too long: ", path));
  }
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  return sun;
}

absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int mode) {
  auto sun = UnixAddr(path);
  if (!sun.ok()) return sun.status();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  ::unlink(path.c_str());
  // Bind under a restrictive umask so there is no window with a wider mode.
  mode_t old = ::umask(0777 & ~mode);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&*sun), sizeof *sun);
  int err = errno;
  ::umask(old);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("bind ", path));
  if (::chmod(path.c_str(), mode) != 0) return ErrnoStatus(errno, absl::StrCat("chmod ", path));
  if (::listen(fd.get(), 64) != 0) return ErrnoStatus(errno, absl::StrCat("listen ", path));
  return fd;
}

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  auto sun = UnixAddr(path);
  if (!sun.ok()) return sun.status();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&*sun), sizeof *sun) != 0) {
    return ErrnoStatus(errno, absl::StrCat("connect ", path));
  }
  return fd;
}

absl::StatusOr<PeerCred> GetPeerCred(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoStatus(errno, "SO_PEERCRED");
  }
  return PeerCred{cred.pid, cred.uid, cred.gid};
}

absl::StatusOr<UniqueFd> GetPeerPidfd(int fd) {
#ifndef SO_PEERPIDFD
  constexpr int SO_PEERPIDFD = 77;  // Linux 6.5, asm-generic/socket.h
#endif
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
    if (errno == ESRCH) return absl::NotFoundError("SO_PEERPIDFD: the peer has exited");
    return ErrnoStatus(errno, "SO_PEERPIDFD");
  }
  return UniqueFd(pidfd);
}

bool PidfdAlive(int pidfd) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0;
}

absl::Status WriteAll(int fd, absl::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write");
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ReadExact(int fd, char* buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::read(fd, buf + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read");
    }
    if (n == 0) return absl::UnavailableError("read: connection closed early");
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace interlock::net
