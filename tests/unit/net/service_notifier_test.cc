#include "userspace/net/service_notifier.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {
namespace {

using ::testing::HasSubstr;

// A real service-manager end: a bound AF_UNIX datagram socket, as systemd's
// NOTIFY_SOCKET, at a path in a fresh temp dir or (abstract) "@name".
class NotifyReceiver {
 public:
  explicit NotifyReceiver(bool abstract = false) {
    fd_.Reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract) {
      name_ = absl::StrCat("@interlock-notify-test-", ::getpid());
      std::memcpy(addr.sun_path + 1, name_.data() + 1, name_.size() - 1);
      len = offsetof(sockaddr_un, sun_path) + name_.size();
    } else {
      char tmpl[] = "/tmp/interlock-notify-XXXXXX";
      dir_ = ::mkdtemp(tmpl);
      name_ = dir_ + "/notify";
      std::memcpy(addr.sun_path, name_.c_str(), name_.size() + 1);
      len = sizeof addr;
    }
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~NotifyReceiver() {
    if (!dir_.empty()) {
      ::unlink(name_.c_str());
      ::rmdir(dir_.c_str());
    }
  }

  bool bound() const { return bound_; }
  const std::string& name() const { return name_; }

  // The next datagram, waiting up to 5 s; "" when none came.
  std::string Receive() {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, n) : "";
  }
  // True when nothing is queued.
  bool Empty() {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

 private:
  UniqueFd fd_;
  std::string dir_;
  std::string name_;
  bool bound_ = false;
};

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = ::getenv(name);
    if (old != nullptr) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(ServiceNotifier, SendsEachStateAsOneDatagram) {
  NotifyReceiver manager;
  ASSERT_TRUE(manager.bound());
  auto n = ServiceNotifier::Create(manager.name(), absl::ZeroDuration());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->enabled());

  ASSERT_TRUE(n->Ready("enforcing 2 resources").ok());
  EXPECT_EQ(manager.Receive(), "READY=1\nSTATUS=enforcing 2 resources");
  ASSERT_TRUE(n->Reloading(absl::Microseconds(123456789)).ok());
  EXPECT_EQ(manager.Receive(), "RELOADING=1\nMONOTONIC_USEC=123456789");
  ASSERT_TRUE(n->Ready().ok());
  EXPECT_EQ(manager.Receive(), "READY=1");
  ASSERT_TRUE(n->Watchdog().ok());
  EXPECT_EQ(manager.Receive(), "WATCHDOG=1");
  ASSERT_TRUE(n->Status("draining 3 sessions").ok());
  EXPECT_EQ(manager.Receive(), "STATUS=draining 3 sessions");
  ASSERT_TRUE(n->Stopping().ok());
  EXPECT_EQ(manager.Receive(), "STOPPING=1");
  EXPECT_TRUE(manager.Empty());
}

TEST(ServiceNotifier, ReachesAnAbstractSocket) {
  NotifyReceiver manager(/*abstract=*/true);
  ASSERT_TRUE(manager.bound());
  auto n = ServiceNotifier::Create(manager.name(), absl::ZeroDuration());
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_TRUE(n->Ready().ok());
  EXPECT_EQ(manager.Receive(), "READY=1");
}

TEST(ServiceNotifier, WithoutNotifySocketEveryCallIsANoOp) {
  auto n = ServiceNotifier::Create("", absl::Seconds(10));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_FALSE(n->enabled());
  EXPECT_EQ(n->watchdog_interval(), absl::ZeroDuration());
  EXPECT_TRUE(n->Ready().ok());
  EXPECT_TRUE(n->Watchdog().ok());
  EXPECT_TRUE(n->Stopping().ok());
}

TEST(ServiceNotifier, RejectsARelativeOrOverlongSocket) {
  auto rel = ServiceNotifier::Create("run/notify", absl::ZeroDuration());
  EXPECT_EQ(rel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rel.status().message(), HasSubstr("neither an absolute path nor @abstract"));
  auto vsock = ServiceNotifier::Create("vsock:2:1234", absl::ZeroDuration());
  EXPECT_EQ(vsock.status().code(), absl::StatusCode::kInvalidArgument);
  auto longer =
      ServiceNotifier::Create(absl::StrCat("/", std::string(200, 'a')), absl::ZeroDuration());
  EXPECT_EQ(longer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(longer.status().message(), HasSubstr("longer than"));
}

TEST(ServiceNotifier, AMissingManagerIsAnErrorNotACrash) {
  NotifyReceiver gone;
  ASSERT_TRUE(gone.bound());
  const std::string path = gone.name();
  auto n = ServiceNotifier::Create(path, absl::ZeroDuration());
  ASSERT_TRUE(n.ok());
  ::unlink(path.c_str());
  absl::Status st = n->Ready();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("sendto NOTIFY_SOCKET"));
}

TEST(ServiceNotifier, FromEnvironmentReadsSocketAndWatchdog) {
  NotifyReceiver manager;
  ASSERT_TRUE(manager.bound());
  ScopedEnv sock("NOTIFY_SOCKET", manager.name());
  ScopedEnv usec("WATCHDOG_USEC", "3000000");
  ScopedEnv pid("WATCHDOG_PID", absl::StrCat(::getpid()));
  auto n = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->enabled());
  EXPECT_EQ(n->watchdog_interval(), absl::Seconds(3));
  ASSERT_TRUE(n->Watchdog().ok());
  EXPECT_EQ(manager.Receive(), "WATCHDOG=1");
}

TEST(ServiceNotifier, WatchdogMeantForAnotherProcessIsOff) {
  NotifyReceiver manager;
  ASSERT_TRUE(manager.bound());
  ScopedEnv sock("NOTIFY_SOCKET", manager.name());
  ScopedEnv usec("WATCHDOG_USEC", "3000000");
  ScopedEnv pid("WATCHDOG_PID", absl::StrCat(::getpid() + 1));
  auto n = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->enabled());
  EXPECT_EQ(n->watchdog_interval(), absl::ZeroDuration());
}

TEST(ServiceNotifier, WatchdogNeedsAPositiveNumber) {
  NotifyReceiver manager;
  ASSERT_TRUE(manager.bound());
  for (const char* bad : {"0", "-5", "soon", ""}) {
    ScopedEnv sock("NOTIFY_SOCKET", manager.name());
    ScopedEnv usec("WATCHDOG_USEC", bad);
    auto n = ServiceNotifier::FromEnvironment();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_TRUE(n->enabled());
    EXPECT_EQ(n->watchdog_interval(), absl::ZeroDuration()) << bad;
  }
}

}  // namespace
}  // namespace interlock::net
