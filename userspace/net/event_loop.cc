#include "userspace/net/event_loop.h"

#include <errno.h>

#include "userspace/common/errno_status.h"

namespace interlock::net {

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(const Clock& clock) {
  UniqueFd epfd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd) return ErrnoStatus(errno, "epoll_create1");
  return std::unique_ptr<EventLoop>(new EventLoop(clock, std::move(epfd)));
}

absl::Status EventLoop::Add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl add");
  }
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl mod");
  }
  return absl::OkStatus();
}

void EventLoop::Remove(int fd) { ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

EventLoop::TimerId EventLoop::RunAfter(absl::Duration delay, std::function<void()> fn) {
  TimerId id = next_timer_id_++;
  timers_.push(Timer{clock_.Monotonic() + delay, id});
  timer_fns_.emplace(id, std::move(fn));
  return id;
}

void EventLoop::Cancel(TimerId id) { timer_fns_.erase(id); }

void EventLoop::Defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

int EventLoop::NextTimeoutMs() const {
  if (!deferred_.empty()) return 0;
  if (timers_.empty()) return 1000;
  absl::Duration left = timers_.top().deadline - clock_.Monotonic();
  if (left <= absl::ZeroDuration()) return 0;
  // Round up so a timer never fires early.
  int64_t ms = absl::ToInt64Milliseconds(left + absl::Microseconds(999));
  return static_cast<int>(std::min<int64_t>(ms, 1000));
}

void EventLoop::RunDueTimers() {
  absl::Duration now = clock_.Monotonic();
  while (!timers_.empty() && timers_.top().deadline <= now) {
    TimerId id = timers_.top().id;
    timers_.pop();
    auto it = timer_fns_.find(id);
    if (it == timer_fns_.end()) continue;  // cancelled
    std::function<void()> fn = std::move(it->second);
    timer_fns_.erase(it);
    fn();
  }
}

void EventLoop::RunDeferred() {
  // Deferred work may defer more work; run until quiet.
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(deferred_);
    for (auto& fn : batch) fn();
  }
}

absl::Status EventLoop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stopping_) {
    int n = ::epoll_wait(epfd_.get(), events, kMaxEvents, NextTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      static_cast<IoHandler*>(events[i].data.ptr)->OnIo(events[i].events);
    }
    RunDueTimers();
    RunDeferred();
    if (iteration_hook_) iteration_hook_();
  }
  RunDeferred();
  stopping_ = false;  // a later Run() dispatches again
  return absl::OkStatus();
}

}  // namespace interlock::net
