#include "userspace/audit/sinks/remote_sink.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"

namespace interlock::audit::sinks {
namespace {

using interlock::testing::WaitFor;

// A destination the test controls: up or down, rejecting, or stuck.
class FakeDeliverer final : public Deliverer {
 public:
  struct State {
    std::mutex mu;
    std::vector<std::string> ids;  // delivered, in order
    std::vector<size_t> batch_sizes;
    absl::Status answer = absl::OkStatus();
    std::atomic<bool> stuck{false};
    std::atomic<int> calls{0};
  };
  explicit FakeDeliverer(std::shared_ptr<State> s) : s_(std::move(s)) {}
  absl::Status Deliver(const std::vector<v1::AuditEvent>& events) override {
    ++s_->calls;
    while (s_->stuck) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard<std::mutex> lock(s_->mu);
    if (!s_->answer.ok()) return s_->answer;
    for (const auto& e : events) s_->ids.push_back(e.id());
    s_->batch_sizes.push_back(events.size());
    return absl::OkStatus();
  }
  std::string destination() const override { return "fake"; }

 private:
  std::shared_ptr<State> s_;
};

v1::AuditEvent Event(int i, v1::AuditKind kind = v1::AUDIT_KIND_STATEMENT) {
  v1::AuditEvent e;
  e.set_id(absl::StrCat("ev-", i));
  e.set_kind(kind);
  return e;
}

class RemoteSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = interlock::testing::MakeTempDir("remote-sink-test-");
    state_ = std::make_shared<FakeDeliverer::State>();
  }
  void TearDown() override { interlock::testing::RemoveTree(dir_); }

  std::unique_ptr<RemoteSink> Make(RemoteSinkOptions o = {}, uint64_t spool_max = 1 << 20) {
    if (o.name.empty()) o.name = "t";
    o.retry_initial = absl::Milliseconds(20);
    o.retry_max = absl::Milliseconds(100);
    auto spool =
        Spool::Open({.dir = dir_ + "/spool", .max_bytes = spool_max, .segment_bytes = 4096});
    EXPECT_TRUE(spool.ok());
    auto sink = RemoteSink::Create(o, *std::move(spool), std::make_unique<FakeDeliverer>(state_));
    EXPECT_TRUE(sink.ok());
    return *std::move(sink);
  }
  size_t Delivered() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->ids.size();
  }
  std::set<std::string> DeliveredSet() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return std::set<std::string>(state_->ids.begin(), state_->ids.end());
  }
  void SetAnswer(absl::Status st) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->answer = std::move(st);
  }

  std::string dir_;
  std::shared_ptr<FakeDeliverer::State> state_;
};

TEST_F(RemoteSinkTest, DeliversInOrderInBatches) {
  auto sink = Make({.batch_max_events = 10});
  for (int i = 0; i < 95; ++i) ASSERT_TRUE(sink->Write(Event(i)).ok());
  ASSERT_TRUE(WaitFor([&] { return Delivered() == 95; }));
  std::lock_guard<std::mutex> lock(state_->mu);
  for (int i = 0; i < 95; ++i) EXPECT_EQ(state_->ids[i], absl::StrCat("ev-", i));
  for (size_t n : state_->batch_sizes) EXPECT_LE(n, 10u);
  EXPECT_EQ(sink->stats().sent_events, 95u);
}

TEST_F(RemoteSinkTest, KindsFilter) {
  auto sink = Make({.kinds = {v1::AUDIT_KIND_SESSION_START}});
  (void)sink->Write(Event(1, v1::AUDIT_KIND_STATEMENT));
  (void)sink->Write(Event(2, v1::AUDIT_KIND_SESSION_START));
  ASSERT_TRUE(WaitFor([&] { return Delivered() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(DeliveredSet(), std::set<std::string>{"ev-2"});
}

TEST_F(RemoteSinkTest, BatchDelayGathersEvents) {
  auto sink = Make({.batch_max_events = 100, .batch_max_delay = absl::Milliseconds(200)});
  for (int i = 0; i < 30; ++i) (void)sink->Write(Event(i));
  ASSERT_TRUE(WaitFor([&] { return Delivered() == 30; }));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->batch_sizes.size(), 1u);
}

TEST_F(RemoteSinkTest, OutageGoesToSpoolAndNothingIsLost) {
  SetAnswer(absl::UnavailableError("down"));
  auto sink = Make({.batch_max_events = 7});
  for (int i = 0; i < 200; ++i) (void)sink->Write(Event(i));
  ASSERT_TRUE(WaitFor([&] { return sink->stats().spooled_events == 200; }))
      << sink->stats().spooled_events;
  RemoteSinkStats s = sink->stats();
  EXPECT_GT(s.retries, 0u);
  EXPECT_EQ(s.last_error, "down");
  EXPECT_EQ(s.sent_events, 0u);
  SetAnswer(absl::OkStatus());
  ASSERT_TRUE(WaitFor([&] { return DeliveredSet().size() == 200; }, 20));
  ASSERT_TRUE(WaitFor([&] { return sink->stats().spooled_events == 0; }));
  EXPECT_EQ(sink->stats().dropped_events, 0u);
  EXPECT_TRUE(sink->stats().last_error.empty());
}

TEST_F(RemoteSinkTest, RejectedBatchIsCountedNotRetried) {
  SetAnswer(absl::InvalidArgumentError("hec: HTTP 400"));
  auto sink = Make({.batch_max_events = 5, .batch_max_delay = absl::Milliseconds(300)});
  for (int i = 0; i < 5; ++i) (void)sink->Write(Event(i));
  ASSERT_TRUE(WaitFor([&] { return sink->stats().failed_events == 5; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(state_->calls.load(), 1);
  EXPECT_EQ(sink->stats().spooled_events, 0u);
  RemoteSink::Problems p = sink->TakeProblems();
  EXPECT_EQ(p.failed, 5u);
  EXPECT_EQ(p.last_error, "hec: HTTP 400");
  EXPECT_FALSE(sink->TakeProblems().any());  // reported once
}

TEST_F(RemoteSinkTest, SpoolFullDropsTheNewestAndCounts) {
  SetAnswer(absl::UnavailableError("down"));
  auto sink = Make({}, /*spool_max=*/2000);
  for (int i = 0; i < 500; ++i) (void)sink->Write(Event(i));
  ASSERT_TRUE(WaitFor([&] { return sink->stats().queued_events == 0; }));
  RemoteSinkStats s = sink->stats();
  EXPECT_GT(s.dropped_events, 0u);
  EXPECT_EQ(s.spooled_events + s.dropped_events, 500u);
  EXPECT_LE(s.spooled_bytes, 2000u);
  RemoteSink::Problems p = sink->TakeProblems();
  EXPECT_EQ(p.dropped, s.dropped_events);
  SetAnswer(absl::OkStatus());
  ASSERT_TRUE(WaitFor([&] { return Delivered() == s.spooled_events; }, 20));
  // The oldest were kept.
  EXPECT_TRUE(DeliveredSet().count("ev-0"));
}

TEST_F(RemoteSinkTest, WriteNeverBlocksOnAStuckDestination) {
  state_->stuck = true;
  auto sink = Make({.queue_max_events = 100});
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5000; ++i) (void)sink->Write(Event(i));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2));
  // The queue stayed bounded; the rest is on disk.
  EXPECT_LE(sink->stats().queued_events, 100u);
  EXPECT_GE(sink->stats().spooled_events, 4800u);
  state_->stuck = false;
  ASSERT_TRUE(WaitFor([&] { return DeliveredSet().size() == 5000; }, 30));
}

TEST_F(RemoteSinkTest, RestartResendsWhatWasNotDelivered) {
  SetAnswer(absl::UnavailableError("down"));
  {
    auto sink = Make();
    for (int i = 0; i < 50; ++i) (void)sink->Write(Event(i));
    // Destroyed with events queued or spooled: all of it stays on disk.
  }
  SetAnswer(absl::OkStatus());
  auto sink = Make();
  ASSERT_TRUE(WaitFor([&] { return DeliveredSet().size() == 50; }, 20));
}

}  // namespace
}  // namespace interlock::audit::sinks
