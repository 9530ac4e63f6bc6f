#include "userspace/daemon/handover.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "userspace/net/socket.h"

namespace interlock::daemon {
namespace {

TEST(HandoverEnv, FormatsAndParsesBack) {
  std::vector<HandoverSocket> in = {
      {HandoverSocket::Kind::kTcp, 5, "127.0.0.1:1015"},
      {HandoverSocket::Kind::kTcp, 6, "[::1]:1015"},
      {HandoverSocket::Kind::kUnix, 7, "/run/interlock/control.sock"},
      {HandoverSocket::Kind::kNetnsTcp, 8, "4:4026532291/127.0.0.1:1015"}};
  const std::string text = FormatHandoverEnv(3, 4, in);
  EXPECT_EQ(text,
            "v1 ready=3 audit=4 tcp=5@127.0.0.1:1015 tcp=6@[::1]:1015 "
            "unix=7@/run/interlock/control.sock netns=8@4:4026532291/127.0.0.1:1015");
  auto env = ParseHandoverEnv(text);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->ready_fd, 3);
  EXPECT_EQ(env->audit_fd, 4);
  ASSERT_EQ(env->sockets.size(), 4u);
  EXPECT_EQ(env->sockets[1].name, "[::1]:1015");
  EXPECT_EQ(env->sockets[2].kind, HandoverSocket::Kind::kUnix);
  EXPECT_EQ(env->sockets[2].fd, 7);
  EXPECT_EQ(env->sockets[3].kind, HandoverSocket::Kind::kNetnsTcp);
  EXPECT_EQ(env->sockets[3].name, "4:4026532291/127.0.0.1:1015");
}

TEST(HandoverEnv, RejectsMalformed) {
  for (const char* bad :
       {"", "v2 ready=3 audit=4", "v1 audit=4", "v1 ready=3", "v1 ready=1 audit=4",
        "v1 ready=3 audit=x", "v1 ready=3 audit=4 tcp=5", "v1 ready=3 audit=4 tcp=5@",
        "v1 ready=3 audit=4 udp=5@127.0.0.1:1", "v1 ready=3 audit=4 junk"}) {
    EXPECT_FALSE(ParseHandoverEnv(bad).ok()) << bad;
  }
}

// Sets INTERLOCK_HANDOVER for one FromEnvironment() call.
absl::StatusOr<std::unique_ptr<Handover>> FromEnv(const std::string& text) {
  ::setenv(Handover::kEnvVar, text.c_str(), 1);
  auto h = Handover::FromEnvironment();
  EXPECT_EQ(::getenv(Handover::kEnvVar), nullptr) << "the variable is not passed on";
  return h;
}

TEST(Handover, NoVariableIsANormalStart) {
  ::unsetenv(Handover::kEnvVar);
  auto h = Handover::FromEnvironment();
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE((*h)->inherited());
}

struct Fds {
  int ready[2] = {-1, -1};
  int audit[2] = {-1, -1};
  Fds() {
    EXPECT_EQ(::pipe(ready), 0);
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, audit), 0);
  }
  ~Fds() {
    ::close(ready[0]);
    ::close(audit[0]);
  }
};

TEST(Handover, TakesTheInheritedListenerBoundToTheAddress) {
  auto addr = net::SockAddr::Parse("127.0.0.1", 0);
  ASSERT_TRUE(addr.ok());
  auto lfd = net::ListenTcp(*addr, 16);
  ASSERT_TRUE(lfd.ok()) << lfd.status();
  auto bound = net::LocalAddr(lfd->get());
  ASSERT_TRUE(bound.ok());
  const int raw = lfd->Release();  // the handover owns it from here
  Fds fds;
  auto h = FromEnv(FormatHandoverEnv(fds.ready[1], fds.audit[1],
                                     {{HandoverSocket::Kind::kTcp, raw, bound->ToString()}}));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE((*h)->inherited());
  EXPECT_EQ((*h)->parent_pid(), ::getppid());
  auto got = (*h)->ListenTcp(*bound, 16);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->get(), raw);
  EXPECT_NE(::fcntl(raw, F_GETFD) & FD_CLOEXEC, 0) << "not left to whatever this process starts";
  // The ready byte reaches the old process's end.
  ASSERT_TRUE((*h)->SignalReady().ok());
  char byte = 0;
  EXPECT_EQ(::read(fds.ready[0], &byte, 1), 1);
  EXPECT_EQ(byte, 'R');
}

TEST(Handover, RefusesAListenerBoundElsewhere) {
  auto addr = net::SockAddr::Parse("127.0.0.1", 0);
  ASSERT_TRUE(addr.ok());
  auto lfd = net::ListenTcp(*addr, 16);
  ASSERT_TRUE(lfd.ok());
  Fds fds;
  auto h = FromEnv(FormatHandoverEnv(
      fds.ready[1], fds.audit[1], {{HandoverSocket::Kind::kTcp, lfd->Release(), "127.0.0.1:1"}}));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(h.status().message()).find("not 127.0.0.1:1"), std::string::npos)
      << h.status();
}

// A listener in another network namespace is named by that namespace and its address:
// taken only if it is in that namespace (SIOCGSKNS), and claimed by name without
// entering the namespace again.
TEST(Handover, TakesAnInheritedNetnsListenerOnlyInItsNamespace) {
  struct stat ns {};
  ASSERT_EQ(::stat("/proc/self/ns/net", &ns), 0);
  const uint64_t dev = ns.st_dev, ino = ns.st_ino;
  auto addr = net::SockAddr::Parse("127.0.0.1", 0);
  ASSERT_TRUE(addr.ok());
  auto lfd = net::ListenTcp(*addr, 16);
  ASSERT_TRUE(lfd.ok()) << lfd.status();
  auto bound = net::LocalAddr(lfd->get());
  ASSERT_TRUE(bound.ok());
  {
    auto other = net::ListenTcp(*addr, 16);
    ASSERT_TRUE(other.ok());
    auto other_bound = net::LocalAddr(other->get());
    ASSERT_TRUE(other_bound.ok());
    Fds fds;
    auto wrong = FromEnv(FormatHandoverEnv(
        fds.ready[1], fds.audit[1],
        {{HandoverSocket::Kind::kNetnsTcp, other->Release(), NetnsSocketName(dev, ino + 1, *other_bound)}}));
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(std::string(wrong.status().message()).find("network namespace"), std::string::npos) << wrong.status();
  }
  const int raw = lfd->Release();
  Fds fds;
  auto h = FromEnv(FormatHandoverEnv(fds.ready[1], fds.audit[1],
                                     {{HandoverSocket::Kind::kNetnsTcp, raw, NetnsSocketName(dev, ino, *bound)}}));
  ASSERT_TRUE(h.ok()) << h.status();
  // A plain TCP listener of the same address is not it.
  auto plain = (*h)->ListenTcp(*bound, 16);
  EXPECT_FALSE(plain.ok() && plain->get() == raw);
  auto got = (*h)->ListenTcpInNetns(/*ns_fd=*/-1, dev, ino, *bound, 16);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->get(), raw);
}

TEST(Handover, RefusesASocketThatIsNotListening) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  Fds fds;
  auto h = FromEnv(FormatHandoverEnv(fds.ready[1], fds.audit[1],
                                     {{HandoverSocket::Kind::kUnix, pair[0], "/run/x.sock"}}));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
  ::close(pair[1]);
}

TEST(Handover, RefusesAReadyFdThatIsNotAPipe) {
  Fds fds;
  int not_pipe = ::dup(fds.audit[1]);
  ::close(fds.ready[1]);
  auto h = FromEnv(FormatHandoverEnv(not_pipe, fds.audit[1], {}));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Handover, BindsWhatWasNotInheritedAndClosesWhatNobodyClaimed) {
  ::unsetenv(Handover::kEnvVar);
  auto h = Handover::FromEnvironment();
  ASSERT_TRUE(h.ok());
  auto addr = net::SockAddr::Parse("127.0.0.1", 0);
  ASSERT_TRUE(addr.ok());
  auto fd = (*h)->ListenTcp(*addr, 16);
  ASSERT_TRUE(fd.ok()) << fd.status();
  int v = 0;
  socklen_t len = sizeof v;
  ASSERT_EQ(::getsockopt(fd->get(), SOL_SOCKET, SO_ACCEPTCONN, &v, &len), 0);
  EXPECT_EQ(v, 1);
  (*h)->CloseUnclaimed();
  EXPECT_TRUE((*h)->SignalReady().ok()) << "no-op when not inherited";
}

}  // namespace
}  // namespace interlock::daemon
