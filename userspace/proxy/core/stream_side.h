// StreamSide: one side of a proxied session (the agent's or the upstream's) as the session
// moves bytes through it: a non-blocking stream socket, TLS over it when negotiated, the
// bytes read and not yet consumed (in), the bytes queued for it (out), end-of-stream, and
// its epoll registration. A session owns two and applies its protocol between them; what a
// read error or an end means (a protocol error to the agent, an audit reason) stays with the
// session, the mechanics are written once here.
//
//   StreamSide agent(loop, &agent_watcher, "agent");
//   agent.Attach(std::move(fd));
//   ...                                        // on epoll events:
//   agent.NoteEvents(events);
//   if (agent.readable()) { net::IoResult r = agent.Read(kChunk); ... agent.in().view() ... }
//   agent.out().Append(reply);
//   net::IoResult w = agent.Flush();           // w.bytes written, or w.status
//   agent.Watch(agent.Interest(/*read_allowed=*/true));
//
// Not thread-safe: it belongs to one session on one event loop.
#pragma once

#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/relay_buffer.h"
#include "userspace/net/tls.h"
#include "userspace/proxy/core/byte_queue.h"

namespace interlock::proxy {

// Routes one side's epoll events to its session: `session->OnIo(side, events)`. A session
// owns one per side and names this class a friend when its OnIo is private.
template <typename Session, typename Side>
class SideWatcher final : public net::IoHandler {
 public:
  SideWatcher(Session* session, Side side) : session_(session), side_(side) {}
  void OnIo(uint32_t events) override { session_->OnIo(side_, events); }

 private:
  Session* session_;
  Side side_;
};

class StreamSide {
 public:
  // `loop` and `handler` (called with this side's epoll events) outlive the side; `name`
  // ("agent", "upstream") names it in errors ("read agent: Connection reset by peer").
  StreamSide(net::EventLoop* loop, net::IoHandler* handler, absl::string_view name);
  ~StreamSide();
  StreamSide(const StreamSide&) = delete;
  StreamSide& operator=(const StreamSide&) = delete;

  // The socket to move bytes through (non-blocking). `readable` says whether a read may
  // find data before epoll says so (an accepted socket may hold bytes already).
  void Attach(UniqueFd fd, bool readable);
  // A new connection for this side after the old one ended (an HTTP upstream reconnected
  // between exchanges): the old socket, its TLS, its end-of-stream and any bytes read or
  // queued are dropped.
  void Reattach(UniqueFd fd);
  bool attached() const { return fd_.get() >= 0; }
  int fd() const { return fd_.get(); }
  // TLS over the socket from now on (its handshake is the session's to drive).
  void SetTls(std::unique_ptr<net::TlsConnection> tls) { tls_ = std::move(tls); }
  net::TlsConnection* tls() const { return tls_.get(); }

  ByteQueue& in() { return in_; }
  const ByteQueue& in() const { return in_; }
  ByteQueue& out() { return out_; }
  const ByteQueue& out() const { return out_; }
  // The peer half-closed: nothing more will be read.
  bool eof() const { return eof_; }
  // A read may return data (set by epoll, cleared when a read would block or a plain
  // socket's short read drained it): saves a failing read(2) per side per loop turn.
  bool readable() const { return readable_; }

  // Epoll reported `events` for this side.
  void NoteEvents(uint32_t events);
  // One read of at most `max` bytes (at most kReadChunk) into in(). bytes > 0; eof (eof()
  // is then set); would_block (readable() cleared); or a final socket/TLS error status.
  net::IoResult Read(size_t max);
  static constexpr size_t kReadChunk = 64 * 1024;
  // Writes out() until it is empty or the socket would block. bytes: how many were
  // written (0 too when nothing was queued); a non-OK status is final.
  net::IoResult Flush();

  // The epoll events this side needs once its TLS handshake is done: EPOLLIN when
  // `read_allowed`, EPOLLOUT while out() holds bytes, and whatever a TLS read or write
  // that would block waits for.
  uint32_t Interest(bool read_allowed) const;
  // Registers, changes or (with 0) removes this side's epoll interest.
  void Watch(uint32_t events);
  // Registers this side once for every event, edge-triggered (kEdgeEvents), and leaves it
  // so: no epoll_ctl per exchange. The session must then keep reading while readable()
  // (a deferred read is not announced again) and flush whenever out() holds bytes; each
  // new arrival, end or free space is announced once. Watch(0) and Close remove it.
  void WatchEdges();
  static constexpr uint32_t kEdgeEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  // Ends the side: deregistered; with `reset` the close sends RST (SO_LINGER 0), else TLS
  // is shut down cleanly first. The buffers stay (a session may still read them).
  void Close(bool reset);

 private:
  net::EventLoop* loop_;
  net::IoHandler* handler_;
  std::string read_what_, write_what_;
  UniqueFd fd_;
  std::unique_ptr<net::TlsConnection> tls_;
  // What the last TLS read and the last TLS write each wait for (TlsConnection::want()
  // only remembers the latest call, and a write may wait for readability).
  net::TlsWant read_want_ = net::TlsWant::kNone;
  net::TlsWant write_want_ = net::TlsWant::kNone;
  ByteQueue in_, out_;
  bool eof_ = false;
  bool readable_ = false;
  bool registered_ = false;
  uint32_t interest_ = 0;
};

}  // namespace interlock::proxy
