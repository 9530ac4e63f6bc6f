// EventLoop: a single-threaded epoll reactor with timers and deferred work.
//
// Why plain epoll and not libevent/asio: the relay needs exactly three things — readiness
// per fd with interest toggled for backpressure, one-shot timers on an injected clock,
// and "run this after the current batch" for safe teardown — which is ~200 lines here,
// with no callback-with-exceptions model, no second buffering layer under ours (the
// recorder must see every byte exactly once) and nothing between us and the socket
// options the sockmap path depends on.
//
//   class Conn : public IoHandler { void OnIo(uint32_t events) override; };
//   INTERLOCK_ASSIGN_OR_RETURN(auto loop, EventLoop::Create(RealClock::Get()));
//   loop->Add(fd, EPOLLIN, &conn);
//   loop->RunAfter(absl::Seconds(5), [&] { ... });
//   loop->Run();   // until Stop()
//
// Handlers are not owned. A handler may be destroyed only after Remove() and outside
// dispatch of the current batch: use Defer() to delete it.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events` is the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP).
  virtual void OnIo(uint32_t events) = 0;
};

class EventLoop {
 public:
  using TimerId = uint64_t;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(const Clock& clock);

  absl::Status Add(int fd, uint32_t events, IoHandler* handler);
  absl::Status Modify(int fd, uint32_t events, IoHandler* handler);
  void Remove(int fd);

  // Runs `fn` once after `delay` (monotonic). Returns an id for Cancel().
  TimerId RunAfter(absl::Duration delay, std::function<void()> fn);
  void Cancel(TimerId id);

  // Runs `fn` after the current batch of events has been dispatched.
  void Defer(std::function<void()> fn);

  // Called once per loop iteration, after deferred work (e.g. flush recordings).
  void SetIterationHook(std::function<void()> fn) { iteration_hook_ = std::move(fn); }

  // Dispatches until Stop() (which may come before Run()); Run() can be called again
  // afterwards. Returns an error only when epoll itself fails.
  absl::Status Run();
  void Stop() { stopping_ = true; }

  const Clock& clock() const { return clock_; }

 private:
  struct Timer {
    absl::Duration deadline;
    TimerId id;
    bool operator>(const Timer& o) const {
      return deadline > o.deadline || (deadline == o.deadline && id > o.id);
    }
  };

  EventLoop(const Clock& clock, UniqueFd epfd) : clock_(clock), epfd_(std::move(epfd)) {}
  int NextTimeoutMs() const;
  void RunDueTimers();
  void RunDeferred();

  const Clock& clock_;
  UniqueFd epfd_;
  bool stopping_ = false;
  TimerId next_timer_id_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  absl::flat_hash_map<TimerId, std::function<void()>> timer_fns_;
  std::vector<std::function<void()>> deferred_;
  std::function<void()> iteration_hook_;
};

}  // namespace interlock::net
