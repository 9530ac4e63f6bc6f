#include "userspace/net/relay_buffer.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "userspace/common/errno_status.h"

namespace interlock::net {

IoResult ReadSome(int fd, char* buf, size_t len, absl::string_view what) {
  IoResult r;
  ssize_t n = ::read(fd, buf, len);
  if (n > 0) {
    r.bytes = static_cast<size_t>(n);
  } else if (n == 0) {
    r.eof = true;
  } else if (errno == EAGAIN || errno == EINTR) {
    r.would_block = true;
  } else {
    r.status = ErrnoStatus(errno, what);
  }
  return r;
}

IoResult SendSome(int fd, const char* buf, size_t len, absl::string_view what) {
  IoResult r;
  ssize_t n = ::send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n > 0) {
    r.bytes = static_cast<size_t>(n);
  } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    r.would_block = true;
  } else {
    r.status = ErrnoStatus(n < 0 ? errno : EPIPE, what);
  }
  return r;
}

RelayBuffer::RelayBuffer(size_t capacity)
    : capacity_(capacity), data_(new char[capacity]) {}

void RelayBuffer::Compact() {
  if (begin_ == 0) return;
  if (begin_ != end_) std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

IoResult RelayBuffer::ReadFrom(int fd) {
  IoResult r;
  last_read_ = {};
  if (end_ == capacity_) Compact();
  if (end_ == capacity_) return r;  // full: caller should not have asked
  for (;;) {
    ssize_t n = ::read(fd, data_.get() + end_, capacity_ - end_);
    if (n > 0) {
      last_read_ = absl::string_view(data_.get() + end_, static_cast<size_t>(n));
      end_ += static_cast<size_t>(n);
      r.bytes = static_cast<size_t>(n);
      return r;
    }
    if (n == 0) {
      r.eof = true;
      return r;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      r.would_block = true;
      return r;
    }
    r.status = ErrnoStatus(errno, "read");
    return r;
  }
}

IoResult RelayBuffer::WriteTo(int fd) {
  IoResult r;
  last_read_ = {};
  while (begin_ < end_) {
    ssize_t n = ::send(fd, data_.get() + begin_, end_ - begin_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      begin_ += static_cast<size_t>(n);
      r.bytes += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      r.would_block = true;
      break;
    }
    r.status = ErrnoStatus(n < 0 ? errno : EPIPE, "write");
    break;
  }
  if (begin_ == end_) begin_ = end_ = 0;
  return r;
}

}  // namespace interlock::net
