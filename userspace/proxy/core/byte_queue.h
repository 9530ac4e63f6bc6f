// ByteQueue: bytes waiting to be parsed or written, consumed from the front. Amortized
// O(1): the consumed prefix is dropped once it is at least half the storage.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace interlock::proxy {

class ByteQueue {
 public:
  absl::string_view view() const { return absl::string_view(buf_).substr(head_); }
  size_t size() const { return buf_.size() - head_; }
  bool empty() const { return size() == 0; }
  void Append(absl::string_view bytes) { buf_.append(bytes.data(), bytes.size()); }
  // Bytes allocated (what the memory budget charges), at least size().
  size_t capacity() const { return buf_.capacity(); }
  void Consume(size_t n) {
    head_ += n;
    if (head_ == buf_.size()) {
      Clear();
    } else if (head_ >= 65536 && head_ * 2 >= buf_.size()) {
      buf_.erase(0, head_);
      head_ = 0;
    }
  }
  // Empties the queue; a large allocation (one big message) is given back rather than
  // kept for the life of the session.
  void Clear() {
    if (buf_.capacity() > kKeepCapacity) {
      std::string().swap(buf_);
    } else {
      buf_.clear();
    }
    head_ = 0;
  }

 private:
  static constexpr size_t kKeepCapacity = 256 * 1024;
  std::string buf_;
  size_t head_ = 0;
};

}  // namespace interlock::proxy
