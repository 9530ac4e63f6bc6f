// interlockd under a service manager's eyes: a real interlockd with NOTIFY_SOCKET and
// WATCHDOG_USEC pointing at this test's own AF_UNIX datagram socket (what systemd gives a
// Type=notify service), checked for READY=1 only once it answers on its control socket,
// WATCHDOG=1 pings from its loop, RELOADING=1/READY=1 around SIGHUP and STOPPING=1 on
// SIGTERM.
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/client.h"

namespace interlock::testing {
namespace {

// The next datagram within `timeout_ms`, "" when none came.
std::string Receive(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return "";
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, n) : "";
}

// The next datagram that is not a watchdog ping, within `timeout_ms`.
std::string ReceiveState(int fd, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string m = Receive(fd, 100);
    if (!m.empty() && m != "WATCHDOG=1") return m;
  }
  return "";
}

TEST(ServiceNotify, ReadyWatchdogReloadAndStopping) {
  INTERLOCK_REQUIRE_ROOT();
  const std::string dir = MakeTempDir("interlock-notify");
  const std::string path = dir + "/notify";
  UniqueFd manager(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(manager.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", FreePort()}}});
  // interlockd inherits these (the harness execs it); nothing else started here does.
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "400000", 1);  // pings every 200 ms
  // The manager's view: when READY=1 arrives, the control socket must answer at once.
  std::atomic<int> ready_then_answered{-1};
  std::string first;
  std::thread watcher([&] {
    first = ReceiveState(manager.get(), 15000);
    v1::ControlRequest req;
    req.mutable_status();
    ready_then_answered = control::CallControl(h.state_dir() + "/control.sock", req).ok() ? 1 : 0;
  });
  absl::Status started = h.Start();
  watcher.join();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(first, "READY=1\nSTATUS=enforcing 1 resource");
  EXPECT_EQ(ready_then_answered.load(), 1) << "READY=1 came before the control socket answered";

  // Pings at half the watchdog interval: at least 3 in a second.
  int pings = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until) {
    if (Receive(manager.get(), 100) == "WATCHDOG=1") ++pings;
  }
  EXPECT_GE(pings, 3);

  ASSERT_EQ(::kill(h.pid(), SIGHUP), 0);
  std::string reloading = ReceiveState(manager.get(), 5000);
  EXPECT_TRUE(absl::StartsWith(reloading, "RELOADING=1\nMONOTONIC_USEC=")) << reloading;
  EXPECT_EQ(ReceiveState(manager.get(), 5000), "READY=1");

  EXPECT_EQ(h.Stop(), 0) << h.DaemonLog();
  EXPECT_EQ(ReceiveState(manager.get(), 5000), "STOPPING=1\nSTATUS=draining 0 sessions");
  manager.Reset();
  RemoveTree(dir);
}

}  // namespace
}  // namespace interlock::testing
