#include "userspace/common/memory_budget.h"

#include <utility>

namespace interlock {

MemoryBudget::Lease& MemoryBudget::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Set(0);
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool MemoryBudget::Lease::Set(size_t bytes) {
  if (budget_ == nullptr) {
    bytes_ = bytes;
    return true;
  }
  MemoryBudget& b = *budget_;
  if (bytes > bytes_) {
    const size_t more = bytes - bytes_;
    if (more > b.limit_ - b.used_) {
      ++b.refusals_;
      return false;
    }
    b.used_ += more;
    if (b.used_ > b.peak_) b.peak_ = b.used_;
  } else {
    b.used_ -= bytes_ - bytes;
  }
  bytes_ = bytes;
  return true;
}

}  // namespace interlock
