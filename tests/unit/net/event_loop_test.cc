#include "userspace/net/event_loop.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// An eventfd with a handler that calls `fn(events)`. Signal() makes it readable; it stays
// readable (level-triggered) until Clear().
class EventFd final : public IoHandler {
 public:
  explicit EventFd(std::function<void(uint32_t)> fn)
      : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), fn_(std::move(fn)) {}
  int fd() const { return fd_.get(); }
  void Signal() {
    uint64_t one = 1;
    if (::write(fd_.get(), &one, sizeof one) != sizeof one) abort();
  }
  void Clear() {
    uint64_t v;
    (void)!::read(fd_.get(), &v, sizeof v);
  }
  void OnIo(uint32_t events) override { fn_(events); }

 private:
  UniqueFd fd_;
  std::function<void(uint32_t)> fn_;
};

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create(clock_);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  interlock::testing::FakeClock clock_;
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::string> log_;
};

TEST_F(EventLoopTest, TimersFireInDeadlineOrder) {
  loop_->RunAfter(absl::Seconds(3), [&] { log_.push_back("3s"); });
  loop_->RunAfter(absl::Seconds(1), [&] { log_.push_back("1s"); });
  loop_->RunAfter(absl::Seconds(2), [&] { log_.push_back("2s"); });
  loop_->RunAfter(absl::Seconds(10), [&] { log_.push_back("10s"); });
  loop_->RunAfter(absl::Seconds(4), [&] { loop_->Stop(); });
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(loop_->Run().ok());
  // The 10 s timer is not due on the fake clock.
  EXPECT_THAT(log_, ElementsAre("1s", "2s", "3s"));
}

TEST_F(EventLoopTest, EqualDeadlinesFireInScheduleOrder) {
  for (const char* name : {"a", "b", "c"}) {
    loop_->RunAfter(absl::Seconds(1), [&, name] { log_.push_back(name); });
  }
  loop_->RunAfter(absl::Seconds(1), [&] { loop_->Stop(); });
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("a", "b", "c"));
}

TEST_F(EventLoopTest, TimerDueOnlyWhenClockReachesDeadline) {
  // The handler moves the fake clock by 4 s per wake-up; the 10 s timer fires on the third.
  int wakeups = 0;
  EventFd ev([&](uint32_t) {
    ++wakeups;
    clock_.Advance(absl::Seconds(4));
  });
  ev.Signal();
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  loop_->RunAfter(absl::Seconds(10), [&] {
    log_.push_back(absl::StrCat("fired after ", wakeups));
    loop_->Stop();
  });
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("fired after 3"));
  loop_->Remove(ev.fd());
}

TEST_F(EventLoopTest, CancelPreventsFiring) {
  EventLoop::TimerId id = loop_->RunAfter(absl::Seconds(1), [&] { log_.push_back("cancelled"); });
  loop_->RunAfter(absl::Seconds(2), [&] { log_.push_back("kept"); });
  loop_->RunAfter(absl::Seconds(3), [&] { loop_->Stop(); });
  loop_->Cancel(id);
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("kept"));
}

TEST_F(EventLoopTest, TimerCanCancelALaterDueTimerInTheSameBatch) {
  EventLoop::TimerId victim = 0;
  loop_->RunAfter(absl::Seconds(1), [&] {
    log_.push_back("first");
    loop_->Cancel(victim);
  });
  victim = loop_->RunAfter(absl::Seconds(2), [&] { log_.push_back("victim"); });
  loop_->RunAfter(absl::Seconds(3), [&] { loop_->Stop(); });
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("first"));
}

TEST_F(EventLoopTest, CancelAfterFiringIsHarmless) {
  EventLoop::TimerId id = loop_->RunAfter(absl::ZeroDuration(), [&] {
    log_.push_back("fired");
    loop_->Stop();
  });
  ASSERT_TRUE(loop_->Run().ok());
  loop_->Cancel(id);
  EXPECT_THAT(log_, ElementsAre("fired"));
}

TEST_F(EventLoopTest, DeferRunsAfterTheBatch) {
  // One iteration: I/O events, then due timers, then deferred work (including work that
  // deferred work defers), then the iteration hook.
  EventFd ev([&](uint32_t events) {
    EXPECT_TRUE(events & EPOLLIN);
    log_.push_back("io");
    loop_->Defer([&] {
      log_.push_back("deferred");
      loop_->Defer([&] { log_.push_back("deferred by deferred"); });
    });
    log_.push_back("io end");
  });
  ev.Signal();
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  loop_->RunAfter(absl::ZeroDuration(), [&] { log_.push_back("timer"); });
  loop_->SetIterationHook([&] {
    log_.push_back("hook");
    loop_->Stop();
  });
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_,
              ElementsAre("io", "io end", "timer", "deferred", "deferred by deferred", "hook"));
  loop_->Remove(ev.fd());
}

TEST_F(EventLoopTest, WorkDeferredAtStopStillRuns) {
  loop_->SetIterationHook([&] {
    loop_->Defer([&] { log_.push_back("deferred after hook"); });
    loop_->Stop();
  });
  loop_->Defer([&] { log_.push_back("first"); });
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("first", "deferred after hook"));
}

TEST_F(EventLoopTest, IterationHookRunsOncePerIteration) {
  int io_calls = 0;
  int hook_calls = 0;
  EventFd ev([&](uint32_t) { ++io_calls; });  // never cleared: readable every iteration
  ev.Signal();
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  loop_->SetIterationHook([&] {
    if (++hook_calls == 3) loop_->Stop();
  });
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_EQ(hook_calls, 3);
  EXPECT_EQ(io_calls, 3);
  loop_->Remove(ev.fd());
}

TEST_F(EventLoopTest, ModifyAndRemoveChangeDispatch) {
  int io_calls = 0;
  EventFd ev([&](uint32_t) { ++io_calls; });
  ev.Signal();
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  // An eventfd is always writable: EPOLLOUT alone still dispatches, with EPOLLOUT.
  uint32_t seen = 0;
  EventFd out([&](uint32_t events) { seen = events; });
  ASSERT_TRUE(loop_->Add(out.fd(), EPOLLIN, &out).ok());
  ASSERT_TRUE(loop_->Modify(out.fd(), EPOLLOUT, &out).ok());
  int iterations = 0;
  loop_->SetIterationHook([&] {
    ++iterations;
    if (iterations == 1) loop_->Remove(ev.fd());
    if (iterations == 3) loop_->Stop();
  });
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_EQ(io_calls, 1);
  EXPECT_EQ(seen, static_cast<uint32_t>(EPOLLOUT));
  loop_->Remove(out.fd());
}

TEST_F(EventLoopTest, EpollErrorsAreStatuses) {
  EventFd ev([](uint32_t) {});
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  EXPECT_EQ(loop_->Add(ev.fd(), EPOLLIN, &ev).code(), absl::StatusCode::kAlreadyExists);
  loop_->Remove(ev.fd());
  EXPECT_EQ(loop_->Modify(ev.fd(), EPOLLIN, &ev).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(loop_->Add(-1, EPOLLIN, &ev).ok());
}

TEST_F(EventLoopTest, StopFromAnotherHandlerEndsRunAfterTheIteration) {
  int hook_calls = 0;
  loop_->SetIterationHook([&] { ++hook_calls; });
  EventFd ev([&](uint32_t) {
    loop_->Stop();
    log_.push_back("stop requested");
  });
  ev.Signal();
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("stop requested"));
  EXPECT_EQ(hook_calls, 1);
  loop_->Remove(ev.fd());
}

TEST_F(EventLoopTest, PostFromAnotherThreadRunsOnTheLoopThreadInOrder) {
  std::thread::id loop_thread = std::this_thread::get_id();
  std::atomic<bool> go{false};
  std::vector<int> seen;
  bool all_on_loop_thread = true;
  constexpr int kPosts = 1000;
  std::thread poster([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < kPosts; ++i) {
      loop_->Post([&, i] {
        all_on_loop_thread &= std::this_thread::get_id() == loop_thread;
        seen.push_back(i);
        if (i == kPosts - 1) loop_->Stop();
      });
    }
  });
  loop_->Defer([&] { go.store(true); });  // post while the loop runs
  ASSERT_TRUE(loop_->Run().ok());
  poster.join();
  EXPECT_TRUE(all_on_loop_thread);
  ASSERT_EQ(seen.size(), static_cast<size_t>(kPosts));
  for (int i = 0; i < kPosts; ++i) EXPECT_EQ(seen[i], i);
}

TEST_F(EventLoopTest, PostWakesALoopBlockedInEpollWait) {
  // No timers and no I/O: epoll_wait blocks for its idle timeout (1 s) unless the post's
  // eventfd wakes it, which takes far less.
  std::thread poster([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the loop block
    loop_->Post([&] { loop_->Stop(); });
  });
  absl::Duration start = RealClock::Get().Monotonic();
  ASSERT_TRUE(loop_->Run().ok());
  absl::Duration took = RealClock::Get().Monotonic() - start;
  poster.join();
  EXPECT_LT(took, absl::Milliseconds(900));
}

TEST_F(EventLoopTest, PostedWorkRunsLikeDeferredWorkAfterTheBatch) {
  EventFd ev([&](uint32_t) {
    log_.push_back("io");
    loop_->Post([&] { log_.push_back("posted"); });
    log_.push_back("io end");
  });
  ev.Signal();
  ASSERT_TRUE(loop_->Add(ev.fd(), EPOLLIN, &ev).ok());
  loop_->SetIterationHook([&] {
    log_.push_back("hook");
    if (log_.size() > 3) loop_->Stop();
    ev.Clear();
  });
  ASSERT_TRUE(loop_->Run().ok());
  // Posted during dispatch: the eventfd wakes the next iteration, whose deferred phase
  // runs the work before the hook.
  EXPECT_THAT(log_, ElementsAre("io", "io end", "hook", "posted", "hook"));
  loop_->Remove(ev.fd());
}

TEST_F(EventLoopTest, WorkPostedWhileStoppedRunsOnTheNextRun) {
  std::thread poster([&] { loop_->Post([&] { log_.push_back("posted before run"); }); });
  poster.join();
  loop_->SetIterationHook([&] {
    if (!log_.empty()) loop_->Stop();
  });
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_THAT(log_, ElementsAre("posted before run"));
}

TEST_F(EventLoopTest, WorkStillPostedAtDestructionIsDroppedUnrun) {
  auto flag = std::make_shared<int>(0);
  std::weak_ptr<int> weak = flag;
  loop_->Post([flag = std::move(flag)] { ++*flag; });
  loop_.reset();  // the closure (and the shared_ptr it holds) is destroyed, not run
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace interlock::net
