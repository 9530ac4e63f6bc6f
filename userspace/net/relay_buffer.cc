#include "userspace/net/relay_buffer.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <utility>
#include <vector>

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

namespace {

// Blocks given back by this thread's relay buffers, all of `capacity` bytes.
struct BlockPool {
  size_t capacity = 0;
  std::vector<std::unique_ptr<char[]>> blocks;
};

BlockPool& Pool() {
  static thread_local BlockPool pool;
  return pool;
}

std::unique_ptr<char[]> TakeBlock(size_t capacity) {
  BlockPool& pool = Pool();
  if (pool.capacity == capacity && !pool.blocks.empty()) {
    std::unique_ptr<char[]> block = std::move(pool.blocks.back());
    pool.blocks.pop_back();
    return block;
  }
  return std::unique_ptr<char[]>(new char[capacity]);
}

void GiveBlock(std::unique_ptr<char[]> block, size_t capacity) {
  BlockPool& pool = Pool();
  if (pool.capacity != capacity) {  // one size is pooled: the latest one seen
    pool.blocks.clear();
    pool.capacity = capacity;
  }
  if (pool.blocks.size() < RelayBuffer::kPooledBlocks) pool.blocks.push_back(std::move(block));
}

}  // namespace

RelayBuffer::RelayBuffer(size_t capacity) : capacity_(capacity) {}

RelayBuffer::~RelayBuffer() {
  if (data_ != nullptr) GiveBlock(std::move(data_), capacity_);
}

void RelayBuffer::ReleaseIfEmpty() {
  if (data_ == nullptr || begin_ != end_) return;
  begin_ = end_ = 0;
  last_read_ = {};
  GiveBlock(std::move(data_), capacity_);
}

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
  if (data_ == nullptr) data_ = TakeBlock(capacity_);
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
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      r.would_block = true;
    } else {
      r.status = ErrnoStatus(errno, "read");
    }
    ReleaseIfEmpty();
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
  ReleaseIfEmpty();
  return r;
}

}  // namespace interlock::net
