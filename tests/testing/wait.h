// Small helpers for integration tests that watch a running interlockd: poll for a
// condition with a deadline, and pick audit events of one kind.
#pragma once

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "interlock/v1/events.pb.h"

namespace interlock::testing {

// Polls `pred` every 20 ms for up to `seconds` (the daemon writes audit events
// asynchronously to what the client observes). Returns its last value.
template <typename Pred>
bool WaitFor(Pred pred, int seconds = 10) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A thread joined when it goes out of scope, so that a failed ASSERT in the test body
// still waits for the agent it started (and the harness then cleans up) instead of
// std::terminate on a joinable std::thread skipping every destructor.
class JoinedThread {
 public:
  template <typename Fn>
  explicit JoinedThread(Fn&& fn) : thread_(std::forward<Fn>(fn)) {}
  ~JoinedThread() { join(); }
  JoinedThread(const JoinedThread&) = delete;
  JoinedThread& operator=(const JoinedThread&) = delete;
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

inline std::vector<v1::AuditEvent> OfKind(const std::vector<v1::AuditEvent>& all, v1::AuditKind kind) {
  std::vector<v1::AuditEvent> out;
  for (const auto& e : all) {
    if (e.kind() == kind) out.push_back(e);
  }
  return out;
}

}  // namespace interlock::testing
