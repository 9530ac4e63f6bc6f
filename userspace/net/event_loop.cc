#include "userspace/net/event_loop.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "userspace/common/errno_status.h"

namespace interlock::net {

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(const Clock& clock) {
  UniqueFd epfd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd) return ErrnoStatus(errno, "epoll_create1");
  UniqueFd post_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!post_fd) return ErrnoStatus(errno, "eventfd");
  std::unique_ptr<EventLoop> loop(new EventLoop(clock, std::move(epfd), std::move(post_fd)));
  absl::Status st = loop->Add(loop->post_fd_.get(), EPOLLIN, &loop->posted_wake_);
  if (!st.ok()) return st;
  return loop;
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

void EventLoop::Post(std::function<void()> fn) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    was_empty = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  // One wake-up per batch is enough: TakePosted() reads the eventfd before it takes the
  // queue, so work pushed onto a non-empty queue is either taken by that TakePosted() or
  // was pushed after it emptied the queue, and then this Post saw it empty and writes.
  // A failed write can only be EAGAIN (counter saturated): the fd is readable anyway.
  if (was_empty) {
    uint64_t one = 1;
    (void)!::write(post_fd_.get(), &one, sizeof one);
  }
}

void EventLoop::PostedWake::OnIo(uint32_t) { loop_->TakePosted(); }

void EventLoop::TakePosted() {
  uint64_t count;
  (void)!::read(post_fd_.get(), &count, sizeof count);  // reset the counter first (see Post)
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) deferred_.push_back(std::move(fn));
}

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
