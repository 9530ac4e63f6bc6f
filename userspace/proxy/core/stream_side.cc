#include "userspace/proxy/core/stream_side.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace interlock::proxy {

StreamSide::StreamSide(net::EventLoop* loop, net::IoHandler* handler, absl::string_view name)
    : loop_(loop), handler_(handler), read_what_(absl::StrCat("read ", name)), write_what_(absl::StrCat("write ", name)) {}

StreamSide::~StreamSide() {
  if (registered_) loop_->Remove(fd_.get());
}

void StreamSide::Attach(UniqueFd fd, bool readable) {
  Watch(0);
  fd_ = std::move(fd);
  readable_ = readable;
}

void StreamSide::Reattach(UniqueFd fd) {
  Close(/*reset=*/false);
  in_.Clear();
  out_.Clear();
  eof_ = false;
  read_want_ = write_want_ = net::TlsWant::kNone;
  Attach(std::move(fd), /*readable=*/false);
}

void StreamSide::NoteEvents(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
  // A TLS read may wait for writability; let such an event retry the read too.
  if ((events & EPOLLOUT) && read_want_ == net::TlsWant::kWrite) readable_ = true;
}

net::IoResult StreamSide::Read(size_t max) {
  char buf[kReadChunk];
  const size_t want = std::min(max, sizeof buf);
  net::IoResult r;
  if (tls_ != nullptr) {
    r = tls_->Read(buf, want);
    read_want_ = r.would_block ? tls_->want() : net::TlsWant::kNone;
  } else {
    r = net::ReadSome(fd_.get(), buf, want, read_what_);
  }
  if (!r.status.ok()) return r;
  if (r.eof) {
    eof_ = true;
    return r;
  }
  if (r.bytes == 0) {
    r.would_block = true;
    readable_ = false;  // wait for epoll
    return r;
  }
  in_.Append(absl::string_view(buf, r.bytes));
  // A short read from a stream socket drained it; TLS may still hold decrypted bytes.
  if (tls_ == nullptr && r.bytes < want) readable_ = false;
  return r;
}

net::IoResult StreamSide::Flush() {
  net::IoResult total;
  while (!out_.empty() && fd_.get() >= 0) {
    absl::string_view v = out_.view();
    net::IoResult w;
    if (tls_ != nullptr) {
      w = tls_->Write(v.data(), v.size());
      write_want_ = w.would_block ? tls_->want() : net::TlsWant::kNone;
    } else {
      w = net::SendSome(fd_.get(), v.data(), v.size(), write_what_);
    }
    if (!w.status.ok()) {
      total.status = w.status;
      return total;
    }
    if (w.bytes == 0) {
      total.would_block = true;
      break;
    }
    out_.Consume(w.bytes);
    total.bytes += w.bytes;
  }
  return total;
}

uint32_t StreamSide::Interest(bool read_allowed) const {
  uint32_t want = 0;
  if (read_allowed) want |= EPOLLIN;
  if (!out_.empty()) want |= EPOLLOUT;
  if (tls_ != nullptr) {
    if (read_want_ == net::TlsWant::kWrite || write_want_ == net::TlsWant::kWrite) want |= EPOLLOUT;
    if (write_want_ == net::TlsWant::kRead) want |= EPOLLIN;
  }
  return want;
}

void StreamSide::Watch(uint32_t events) {
  if (fd_.get() < 0) return;
  if (events == 0) {
    if (registered_) {
      loop_->Remove(fd_.get());
      registered_ = false;
    }
    return;
  }
  if (!registered_) {
    if (loop_->Add(fd_.get(), events, handler_).ok()) registered_ = true;
    interest_ = events;
  } else if (interest_ != events) {
    (void)loop_->Modify(fd_.get(), events, handler_);
    interest_ = events;
  }
}

void StreamSide::WatchEdges() { Watch(kEdgeEvents); }

void StreamSide::Close(bool reset) {
  Watch(0);
  if (reset && fd_.get() >= 0) {
    linger lg{1, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  if (tls_ != nullptr && !reset) (void)tls_->Shutdown();
  tls_.reset();
  fd_.Reset();
}

}  // namespace interlock::proxy
