#include "userspace/net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::net {
namespace {

using ::testing::HasSubstr;

// Waits up to 5 s for `events` on `fd`; returns the revents.
short WaitFor(int fd, short events) {
  pollfd p{fd, events, 0};
  if (::poll(&p, 1, 5000) != 1) return 0;
  return p.revents;
}

TEST(SockAddr, ParsesIpv4) {
  auto addr = SockAddr::Parse("127.0.0.1", 5432);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->family(), AF_INET);
  EXPECT_EQ(addr->len, sizeof(sockaddr_in));
  EXPECT_EQ(addr->port(), 5432);
  EXPECT_EQ(addr->ip(), "127.0.0.1");
  EXPECT_EQ(addr->ToString(), "127.0.0.1:5432");
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr->sa());
  EXPECT_EQ(v4->sin_port, htons(5432));
  EXPECT_EQ(v4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

TEST(SockAddr, ParsesIpv6) {
  auto addr = SockAddr::Parse("::1", 80);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->family(), AF_INET6);
  EXPECT_EQ(addr->len, sizeof(sockaddr_in6));
  EXPECT_EQ(addr->port(), 80);
  EXPECT_EQ(addr->ip(), "::1");
  EXPECT_EQ(addr->ToString(), "[::1]:80");
  // Textual form is canonical (RFC 5952).
  EXPECT_EQ(SockAddr::Parse("0:0:0:0:0:0:0:1", 1)->ToString(), "[::1]:1");
  // Parse keeps a mapped address as IPv6; only FromMapped unmaps.
  auto mapped = SockAddr::Parse("::ffff:127.0.0.1", 1);
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(mapped->family(), AF_INET6);
}

TEST(SockAddr, RejectsNonAddresses) {
  for (const char* text :
       {"", "localhost", "127.0.0.1:80", "1.2.3", "256.0.0.1", "[::1]", "::1%lo", " 127.0.0.1"}) {
    auto addr = SockAddr::Parse(text, 1);
    EXPECT_EQ(addr.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(addr.status().message(), HasSubstr(absl::StrCat("\"", text, "\""))) << text;
  }
}

TEST(SockAddr, FromMappedUnmapsIpv4) {
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 42};
  SockAddr addr = SockAddr::FromMapped(mapped, 5432);
  EXPECT_EQ(addr.family(), AF_INET);
  EXPECT_EQ(addr.len, sizeof(sockaddr_in));
  EXPECT_EQ(addr.ToString(), "127.0.0.42:5432");
}

TEST(SockAddr, FromMappedKeepsIpv6) {
  uint8_t loopback[16] = {0};
  loopback[15] = 1;
  SockAddr addr = SockAddr::FromMapped(loopback, 8080);
  EXPECT_EQ(addr.family(), AF_INET6);
  EXPECT_EQ(addr.len, sizeof(sockaddr_in6));
  EXPECT_EQ(addr.ToString(), "[::1]:8080");
  // ::ffff:0:0/96 only; ::ffff:1:0:0 style neighbours stay IPv6.
  const uint8_t near[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 127, 0, 0, 1};
  EXPECT_EQ(SockAddr::FromMapped(near, 1).family(), AF_INET6);
}

// Listen on `ip`:0, connect, accept; checks each step.
void RoundTrip(const char* ip) {
  auto any = SockAddr::Parse(ip, 0);
  ASSERT_TRUE(any.ok());
  auto lfd = ListenTcp(*any, 16);
  ASSERT_TRUE(lfd.ok()) << lfd.status();
  EXPECT_TRUE(::fcntl(lfd->get(), F_GETFL) & O_NONBLOCK);
  auto bound = LocalAddr(lfd->get());
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_NE(bound->port(), 0);
  EXPECT_EQ(bound->ip(), ip);

  // Nothing pending yet.
  auto none = AcceptTcp(lfd->get());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  auto client = ConnectTcpNonBlocking(*bound);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(::fcntl(client->get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(client->get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_TRUE(WaitFor(client->get(), POLLOUT) & POLLOUT);
  EXPECT_TRUE(ConnectResult(client->get(), *bound).ok());

  ASSERT_TRUE(WaitFor(lfd->get(), POLLIN) & POLLIN);
  auto accepted = AcceptTcp(lfd->get());
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ASSERT_TRUE(accepted->has_value());
  UniqueFd server = std::move(**accepted);
  EXPECT_TRUE(::fcntl(server.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(server.get(), F_GETFD) & FD_CLOEXEC);

  auto client_local = LocalAddr(client->get());
  auto server_peer = PeerAddr(server.get());
  ASSERT_TRUE(client_local.ok() && server_peer.ok());
  EXPECT_EQ(server_peer->ToString(), client_local->ToString());
  EXPECT_EQ(PeerAddr(client->get())->ToString(), bound->ToString());

  ASSERT_TRUE(WriteAll(client->get(), "ping").ok());
  ASSERT_TRUE(WaitFor(server.get(), POLLIN) & POLLIN);
  char buf[4];
  ASSERT_TRUE(ReadExact(server.get(), buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST(Socket, TcpListenConnectAcceptIpv4) { RoundTrip("127.0.0.1"); }

TEST(Socket, TcpListenConnectAcceptIpv6) {
  // ::1 is on lo unless IPv6 is disabled in this environment.
  UniqueFd probe(::socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  if (!probe || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) != 0) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  RoundTrip("::1");
}

TEST(Socket, ConnectToClosedPortIsUnavailable) {
  // A bound, non-listening socket reserves a port nobody accepts on: the SYN gets a RST.
  UniqueFd reserve(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto any = SockAddr::Parse("127.0.0.1", 0);
  ASSERT_EQ(::bind(reserve.get(), any->sa(), any->len), 0);
  auto target = LocalAddr(reserve.get());
  ASSERT_TRUE(target.ok());

  auto client = ConnectTcpNonBlocking(*target);
  // The refusal arrives asynchronously, even on loopback.
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_NE(WaitFor(client->get(), POLLOUT), 0);
  absl::Status st = ConnectResult(client->get(), *target);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_EQ(st.message(), absl::StrCat("connect ", target->ToString(), ": Connection refused"));
}

TEST(Socket, ListenTcpOnTakenPortFailsNamingAddress) {
  auto any = SockAddr::Parse("127.0.0.1", 0);
  auto first = ListenTcp(*any, 4);
  ASSERT_TRUE(first.ok());
  auto bound = LocalAddr(first->get());
  auto second = ListenTcp(*bound, 4);
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("bind ", bound->ToString())));
}

class UnixSocketTest : public ::testing::Test {
 protected:
  UnixSocketTest() {
    std::string tmpl = "/tmp/socket_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    dir_ = tmpl;
  }
  ~UnixSocketTest() override {
    ::nftw(
        dir_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::string dir_;
};

TEST_F(UnixSocketTest, ListenUnixSetsModeAndKeepsUmask) {
  const std::string path = dir_ + "/control.sock";
  mode_t before = ::umask(022);
  auto lfd = ListenUnix(path, 0660);
  mode_t after = ::umask(before);
  ASSERT_TRUE(lfd.ok()) << lfd.status();
  EXPECT_EQ(after, 022u);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_TRUE(::fcntl(lfd->get(), F_GETFL) & O_NONBLOCK);

  // A stale socket file is replaced, with the new mode.
  lfd->Reset();
  auto again = ListenUnix(path, 0600);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(UnixSocketTest, ListenUnixRejectsLongPath) {
  auto lfd = ListenUnix(dir_ + "/" + std::string(200, 'x'), 0600);
  EXPECT_EQ(lfd.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UnixSocketTest, ConnectUnixErrors) {
  EXPECT_EQ(ConnectUnix(dir_ + "/missing.sock").status().code(), absl::StatusCode::kNotFound);
  // A socket file with no listener behind it.
  const std::string path = dir_ + "/stale.sock";
  { ASSERT_TRUE(ListenUnix(path, 0600).ok()); }
  auto stale = ConnectUnix(path);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnavailable) << stale.status();
  EXPECT_THAT(stale.status().message(), HasSubstr(path));
}

TEST_F(UnixSocketTest, GetPeerCredIsOurProcess) {
  const std::string path = dir_ + "/cred.sock";
  auto lfd = ListenUnix(path, 0600);
  ASSERT_TRUE(lfd.ok()) << lfd.status();
  auto client = ConnectUnix(path);
  ASSERT_TRUE(client.ok()) << client.status();
  UniqueFd server(::accept4(lfd->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid());

  for (int fd : {server.get(), client->get()}) {
    auto cred = GetPeerCred(fd);
    ASSERT_TRUE(cred.ok()) << cred.status();
    EXPECT_EQ(cred->pid, ::getpid());
    EXPECT_EQ(cred->uid, ::getuid());
    EXPECT_EQ(cred->gid, ::getgid());
  }
}

TEST_F(UnixSocketTest, ReadExactReportsEarlyClose) {
  const std::string path = dir_ + "/short.sock";
  auto lfd = ListenUnix(path, 0600);
  auto client = ConnectUnix(path);
  ASSERT_TRUE(client.ok()) << client.status();
  {
    UniqueFd server(::accept4(lfd->get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(WriteAll(server.get(), "abc").ok());
  }
  char buf[8];
  absl::Status st = ReadExact(client->get(), buf, sizeof buf);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("closed early"));
}

TEST(Socket, GetPeerCredOnNonSocketFails) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]);
  UniqueFd w(fds[1]);
  EXPECT_FALSE(GetPeerCred(r.get()).ok());
}

}  // namespace
}  // namespace interlock::net
