// MemoryBudget: one limit on what all sessions together may hold in buffers, so that many
// hostile sessions, each within its own per-message limits, cannot grow interlockd until
// the kernel's OOM killer ends it (and every session with it). Each session holds a
// Lease and sets it to what its buffers hold now; a Set that would take the total past the
// limit fails, and the session is refused or ended with a clear error, never the daemon.
//
//   MemoryBudget budget(1 << 30);
//   MemoryBudget::Lease lease = budget.NewLease();
//   if (!lease.Set(buffered_bytes)) { /* end this session: budget exhausted */ }
//
// Not thread-safe: the budget and its leases live on one event-loop thread.
#pragma once

#include <cstddef>

namespace interlock {

class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit_bytes) : limit_(limit_bytes) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // A session's share of the budget; gives it back when destroyed. Movable.
  class Lease {
   public:
    Lease() = default;
    ~Lease() { Set(0); }
    Lease(Lease&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) {
      other.budget_ = nullptr;
      other.bytes_ = 0;
    }
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    // Makes this lease hold `bytes`. Shrinking always succeeds; growing fails (and
    // changes nothing) when the budget's total would exceed its limit. A lease without a
    // budget (default-constructed) accepts anything.
    bool Set(size_t bytes);
    size_t bytes() const { return bytes_; }

   private:
    friend class MemoryBudget;
    explicit Lease(MemoryBudget* budget) : budget_(budget) {}
    MemoryBudget* budget_ = nullptr;
    size_t bytes_ = 0;
  };

  Lease NewLease() { return Lease(this); }

  size_t limit() const { return limit_; }
  size_t used() const { return used_; }
  // The most that was ever held at once.
  size_t peak() const { return peak_; }
  // How many Set calls were refused.
  size_t refusals() const { return refusals_; }
  // True when fewer than `bytes` are left.
  bool Below(size_t bytes) const { return limit_ - used_ < bytes; }

 private:
  size_t limit_;
  size_t used_ = 0;
  size_t peak_ = 0;
  size_t refusals_ = 0;
};

}  // namespace interlock
