// RelayBuffer: a fixed-capacity byte buffer between one socket's reads and another's
// writes. Its fullness is the backpressure signal: the relay stops reading a source
// whose buffer is full, so a slow reader never makes interlockd buffer without bound.
//
//   RelayBuffer buf(256 * 1024);
//   auto r = buf.ReadFrom(agent_fd);     // appends; r.bytes / r.eof / r.status
//   on_bytes(buf.LastRead());            // the bytes just read, for the recorder
//   auto w = buf.WriteTo(upstream_fd);   // drains as much as the socket takes
//
// An empty buffer holds no memory: its storage is taken when a read needs it and given
// back once everything is written out (or a read finds nothing), so an idle session's
// buffers cost nothing. Given-back storage is kept for reuse in a small per-thread pool
// (kPooledBlocks of one capacity), so a request-response session does not call malloc and
// free around every exchange.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace interlock::net {

struct IoResult {
  size_t bytes = 0;       // moved by this call
  bool eof = false;       // read: the peer half-closed
  bool would_block = false;
  absl::Status status;    // a socket error (ECONNRESET, EPIPE, ...)
};

// One non-blocking read(2) / send(2) (MSG_NOSIGNAL) of a stream socket as an IoResult:
// bytes moved, eof, would_block (EAGAIN/EINTR), or an errno status naming `what`.
IoResult ReadSome(int fd, char* buf, size_t len, absl::string_view what);
IoResult SendSome(int fd, const char* buf, size_t len, absl::string_view what);

class RelayBuffer {
 public:
  // Free blocks a thread keeps for reuse.
  static constexpr size_t kPooledBlocks = 8;

  explicit RelayBuffer(size_t capacity);
  ~RelayBuffer();
  RelayBuffer(const RelayBuffer&) = delete;
  RelayBuffer& operator=(const RelayBuffer&) = delete;

  // The bytes of storage held now: capacity() while it holds bytes (or is mid-read), else 0.
  size_t held() const { return data_ != nullptr ? capacity_ : 0; }
  size_t capacity() const { return capacity_; }
  size_t size() const { return end_ - begin_; }
  size_t space() const { return capacity_ - end_ + begin_; }
  bool empty() const { return begin_ == end_; }
  bool full() const { return space() == 0; }

  // One read(2) of at most space() bytes. The bytes read are LastRead() until the next
  // ReadFrom/WriteTo.
  IoResult ReadFrom(int fd);
  absl::string_view LastRead() const { return last_read_; }

  // send(2) with MSG_NOSIGNAL until the buffer is empty or the socket would block.
  IoResult WriteTo(int fd);

 private:
  void Compact();
  // Gives the storage back when no bytes are in it.
  void ReleaseIfEmpty();

  size_t capacity_;
  std::unique_ptr<char[]> data_;
  size_t begin_ = 0;
  size_t end_ = 0;
  absl::string_view last_read_;
};

}  // namespace interlock::net
