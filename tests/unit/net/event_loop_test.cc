#include "userspace/net/event_loop.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
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

}  // namespace
}  // namespace interlock::net
