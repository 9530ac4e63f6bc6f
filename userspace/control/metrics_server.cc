#include "userspace/control/metrics_server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace interlock::control {

MetricsRequest ParseMetricsRequest(absl::string_view head) {
  // RFC 9112 section 3: request-line = method SP request-target SP HTTP-version CRLF.
  const size_t eol = head.find('\n');
  absl::string_view line = head.substr(0, eol);
  if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.")) return {400};
  if (parts[0] != "GET" && parts[0] != "HEAD") return {405};
  absl::string_view target = parts[1];
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") return {404};
  return {200};
}

struct MetricsServer::Conn final : net::IoHandler {
  MetricsServer* server = nullptr;
  uint64_t id = 0;
  UniqueFd fd;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool responding = false;
  net::EventLoop::TimerId timer = 0;
  void OnIo(uint32_t events) override { server->OnConn(id, events); }
};

class MetricsServer::Listener final : public net::IoHandler {
 public:
  explicit Listener(MetricsServer* s) : s_(s) {}
  void OnIo(uint32_t) override { s_->OnAccept(); }

 private:
  MetricsServer* s_;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(net::EventLoop& loop, UniqueFd listen_fd,
                                                                     Render render) {
  const int flags = ::fcntl(listen_fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(listen_fd.get(), F_SETFL, flags | O_NONBLOCK);
  std::unique_ptr<MetricsServer> s(new MetricsServer(loop, std::move(listen_fd), std::move(render)));
  s->listener_ = std::make_unique<Listener>(s.get());
  if (absl::Status st = loop.Add(s->fd_.get(), EPOLLIN, s->listener_.get()); !st.ok()) return st;
  return s;
}

MetricsServer::MetricsServer(net::EventLoop& loop, UniqueFd fd, Render render)
    : loop_(loop), fd_(std::move(fd)), render_(std::move(render)) {}

MetricsServer::~MetricsServer() {
  loop_.Remove(fd_.get());
  for (auto& [id, c] : conns_) {
    loop_.Remove(c->fd.get());
    if (c->timer != 0) loop_.Cancel(c->timer);
  }
}

void MetricsServer::OnAccept() {
  for (;;) {
    UniqueFd cfd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!cfd) return;  // EAGAIN, or a transient error: wait for the next wake-up
    if (conns_.size() >= kMaxConnections) continue;  // closed right here
    auto c = std::make_unique<Conn>();
    c->server = this;
    c->id = next_id_++;
    c->fd = std::move(cfd);
    if (!loop_.Add(c->fd.get(), EPOLLIN, c.get()).ok()) continue;
    const uint64_t id = c->id;
    c->timer = loop_.RunAfter(kTimeout, [this, id] {
      if (auto it = conns_.find(id); it != conns_.end()) it->second->timer = 0;
      Close(id);
    });
    conns_.emplace(id, std::move(c));
  }
}

void MetricsServer::OnConn(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.responding) {
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) return Close(id);
    return Send(id);
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return Close(id);  // EOF before a whole request head, or an error
    c.in.append(buf, static_cast<size_t>(n));
    const size_t end = c.in.find("\r\n\r\n");
    if (end != std::string::npos && end + 4 <= kMaxRequestBytes) {
      Respond(c, ParseMetricsRequest(absl::string_view(c.in).substr(0, end + 4)).status);
      return Send(id);
    }
    if (c.in.size() >= kMaxRequestBytes) {
      Respond(c, 431);
      return Send(id);
    }
  }
}

void MetricsServer::Respond(Conn& c, int status) {
  const bool head_only = absl::StartsWith(c.in, "HEAD ");
  std::string body;
  const char* reason = "Bad Request";
  const char* type = "text/plain; charset=utf-8";
  switch (status) {
    case 200:
      body = render_();
      reason = "OK";
      type = "text/plain; version=0.0.4; charset=utf-8";
      ++served_;
      break;
    case 404:
      reason = "Not Found";
      body = "only /metrics is here\n";
      break;
    case 405:
      reason = "Method Not Allowed";
      body = "GET /metrics\n";
      break;
    case 431:
      reason = "Request Header Fields Too Large";
      body = "request head too large\n";
      break;
    default:
      status = 400;
      body = "bad request\n";
  }
  c.out = absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: ", type, "\r\nContent-Length: ", body.size(),
                       "\r\nConnection: close\r\n", status == 405 ? "Allow: GET, HEAD\r\n" : "", "\r\n",
                       head_only ? "" : body);
  c.in.clear();
  c.responding = true;
}

void MetricsServer::Send(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A slow reader: wait for room (until the timeout closes it).
      (void)loop_.Modify(c.fd.get(), EPOLLOUT, &c);
      return;
    }
    if (n <= 0) return Close(id);
    c.sent += static_cast<size_t>(n);
  }
  ::shutdown(c.fd.get(), SHUT_WR);
  Close(id);
}

void MetricsServer::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  loop_.Remove(c->fd.get());
  if (c->timer != 0) loop_.Cancel(c->timer);
  // This may run inside the connection's own callback: free it after the dispatch batch.
  Conn* raw = c.release();
  loop_.Defer([raw] { delete raw; });
}

}  // namespace interlock::control
