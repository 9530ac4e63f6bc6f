#include "tools/echo/echo_server.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/net/socket.h"

namespace interlock::tools {

namespace {

struct Conn {
  UniqueFd fd;
  std::string pending;  // bytes read, not yet written back
  bool eof = false;
  uint32_t interest = 0;
};

constexpr size_t kMaxPending = 1 << 20;

}  // namespace

absl::Status EchoServer::Start(const std::string& ip, uint16_t port) {
  auto addr = net::SockAddr::Parse(ip, port);
  if (!addr.ok()) return addr.status();
  auto fd = net::ListenTcp(*addr, 4096);
  if (!fd.ok()) return fd.status();
  listen_fd_ = std::move(*fd);
  auto local = net::LocalAddr(listen_fd_.get());
  if (!local.ok()) return local.status();
  port_ = local->port();
  epfd_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  wake_fd_.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epfd_ || !wake_fd_) return ErrnoStatus(errno, "echo: epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_.get();
  ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
  ev.data.fd = wake_fd_.get();
  ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void EchoServer::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)::write(wake_fd_.get(), &one, sizeof one);
  thread_.join();
  listen_fd_.Reset();
}

void EchoServer::Loop() {
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  auto set_interest = [&](Conn& c) {
    uint32_t want = 0;
    if (!c.eof && c.pending.size() < kMaxPending) want |= EPOLLIN;
    if (!c.pending.empty()) want |= EPOLLOUT;
    if (want == c.interest) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = c.fd.get();
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    c.interest = want;
  };
  char buf[65536];
  epoll_event events[128];
  for (;;) {
    int n = ::epoll_wait(epfd_.get(), events, 128, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_.get()) return;
      if (fd == listen_fd_.get()) {
        for (;;) {
          auto a = net::AcceptTcp(fd);
          if (!a.ok() || !a->has_value()) break;
          auto c = std::make_unique<Conn>();
          c->fd = std::move(**a);
          c->interest = EPOLLIN;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = c->fd.get();
          ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, c->fd.get(), &ev);
          ++accepted_;
          conns[c->fd.get()] = std::move(c);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      bool dead = false;
      if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c.eof) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r > 0) {
          c.pending.append(buf, static_cast<size_t>(r));
        } else if (r == 0) {
          c.eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          dead = true;
        }
      }
      while (!dead && !c.pending.empty()) {
        ssize_t w = ::send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          bytes_ += static_cast<uint64_t>(w);
          c.pending.erase(0, static_cast<size_t>(w));
        } else if (w < 0 && errno == EAGAIN) {
          break;
        } else {
          dead = true;
        }
      }
      if (!dead && c.eof && c.pending.empty()) {
        ::shutdown(fd, SHUT_WR);
        dead = true;  // both directions done
      }
      if (dead) {
        ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
        conns.erase(it);
      } else {
        set_interest(c);
      }
    }
  }
}

}  // namespace interlock::tools
