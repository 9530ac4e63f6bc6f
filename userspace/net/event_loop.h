// EventLoop: a single-threaded epoll reactor with timers, deferred work, and work posted
// from other threads.
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
//
// Threads: everything runs on the thread that calls Run(), and every method except Post()
// must be called on that thread (or while the loop is not running). Post() is the one
// door in from other threads (a worker thread handing back a result):
//
//   std::thread worker([loop = loop.get()] {
//     int64_t rows = SlowBlockingWork();
//     loop->Post([rows] { OnRows(rows); });   // runs on the loop thread
//   });
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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

  // Thread-safe: may be called from any thread, including the loop's own. Runs `fn` on the
  // loop thread soon: the next loop iteration (waking a blocked epoll_wait through an
  // eventfd) moves everything posted so far, in posting order, to the deferred work of
  // that iteration, so `fn` runs like Defer()red work — outside dispatch, free to destroy
  // handlers. Work posted while the loop is not running waits for the next Run(); work
  // still queued when the loop is destroyed is destroyed without running. The loop must
  // outlive every Post() call (join the posting threads first).
  void Post(std::function<void()> fn);

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

  // Owns nothing: the eventfd readable handler that turns posted work into deferred work.
  class PostedWake final : public IoHandler {
   public:
    explicit PostedWake(EventLoop* loop) : loop_(loop) {}
    void OnIo(uint32_t events) override;

   private:
    EventLoop* loop_;
  };

  EventLoop(const Clock& clock, UniqueFd epfd, UniqueFd post_fd)
      : clock_(clock), epfd_(std::move(epfd)), post_fd_(std::move(post_fd)), posted_wake_(this) {}
  int NextTimeoutMs() const;
  void RunDueTimers();
  void RunDeferred();
  void TakePosted();

  const Clock& clock_;
  UniqueFd epfd_;
  bool stopping_ = false;
  TimerId next_timer_id_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  absl::flat_hash_map<TimerId, std::function<void()>> timer_fns_;
  std::vector<std::function<void()>> deferred_;
  std::function<void()> iteration_hook_;

  // Post(): an eventfd (non-blocking, in epfd_ for EPOLLIN from Create on) whose counter
  // is non-zero while posted_ may hold work, and the queue it guards.
  UniqueFd post_fd_;
  PostedWake posted_wake_;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
};

}  // namespace interlock::net
