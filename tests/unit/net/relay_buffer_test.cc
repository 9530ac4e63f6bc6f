#include "userspace/net/relay_buffer.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {
namespace {

using ::testing::HasSubstr;

// A connected non-blocking AF_UNIX stream pair: a() is the side under test, b() the peer.
class SocketPair {
 public:
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) abort();
    a_.Reset(fds[0]);
    b_.Reset(fds[1]);
  }
  int a() const { return a_.get(); }
  int b() const { return b_.get(); }
  void CloseB() { b_.Reset(); }

 private:
  UniqueFd a_;
  UniqueFd b_;
};

void Send(int fd, absl::string_view data) {
  ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

// Everything readable on a non-blocking fd right now.
std::string Drain(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(RelayBuffer, ReadsIntoBufferAndExposesLastRead) {
  SocketPair p;
  RelayBuffer buf(64);
  EXPECT_TRUE(buf.empty());
  EXPECT_EQ(buf.space(), 64u);

  Send(p.b(), "hello");
  IoResult r = buf.ReadFrom(p.a());
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.bytes, 5u);
  EXPECT_FALSE(r.eof);
  EXPECT_FALSE(r.would_block);
  EXPECT_EQ(buf.LastRead(), "hello");
  EXPECT_EQ(buf.size(), 5u);
  EXPECT_EQ(buf.space(), 59u);

  Send(p.b(), " world");
  r = buf.ReadFrom(p.a());
  EXPECT_EQ(r.bytes, 6u);
  EXPECT_EQ(buf.LastRead(), " world");  // only the bytes of this read
  EXPECT_EQ(buf.size(), 11u);
}

TEST(RelayBuffer, NothingToReadWouldBlock) {
  SocketPair p;
  RelayBuffer buf(64);
  IoResult r = buf.ReadFrom(p.a());
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.would_block);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_FALSE(r.eof);
  EXPECT_TRUE(buf.LastRead().empty());
}

TEST(RelayBuffer, HoldsStorageOnlyWhileItHoldsBytes) {
  SocketPair p;
  RelayBuffer buf(4096);
  EXPECT_EQ(buf.held(), 0u);  // nothing taken at construction
  EXPECT_TRUE(buf.ReadFrom(p.a()).would_block);
  EXPECT_EQ(buf.held(), 0u);  // a read that found nothing gives it back

  Send(p.b(), "ping");
  ASSERT_EQ(buf.ReadFrom(p.a()).bytes, 4u);
  EXPECT_EQ(buf.held(), 4096u);
  // The peer's side is writable: WriteTo drains everything, and the storage goes back.
  IoResult w = buf.WriteTo(p.a());
  EXPECT_EQ(w.bytes, 4u);
  EXPECT_EQ(buf.held(), 0u);
  EXPECT_TRUE(buf.empty());
  EXPECT_EQ(buf.space(), 4096u);
  EXPECT_EQ(Drain(p.b()), "ping");

  // Taken again (from the pool) for the next bytes, which read and write as before.
  Send(p.b(), "pong");
  ASSERT_EQ(buf.ReadFrom(p.a()).bytes, 4u);
  EXPECT_EQ(buf.LastRead(), "pong");
  EXPECT_EQ(buf.held(), 4096u);
  EXPECT_EQ(buf.WriteTo(p.a()).bytes, 4u);
  EXPECT_EQ(buf.held(), 0u);
  EXPECT_EQ(Drain(p.b()), "pong");
}

TEST(RelayBuffer, FullBufferStopsReading) {
  SocketPair p;
  RelayBuffer buf(8);
  Send(p.b(), "0123456789abcdef");
  IoResult r = buf.ReadFrom(p.a());
  EXPECT_EQ(r.bytes, 8u);
  EXPECT_EQ(buf.LastRead(), "01234567");
  EXPECT_TRUE(buf.full());
  EXPECT_EQ(buf.space(), 0u);

  // Full: no read(2) happens, nothing is consumed from the socket.
  r = buf.ReadFrom(p.a());
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_FALSE(r.eof);
  EXPECT_TRUE(buf.LastRead().empty());
  EXPECT_EQ(buf.size(), 8u);

  // Drain into another pair; the rest is still waiting in the first socket.
  SocketPair out;
  IoResult w = buf.WriteTo(out.a());
  EXPECT_EQ(w.bytes, 8u);
  EXPECT_TRUE(buf.empty());
  EXPECT_EQ(Drain(out.b()), "01234567");
  EXPECT_EQ(Drain(p.a()), "89abcdef");
}

TEST(RelayBuffer, WriteToDrainsUntilWouldBlock) {
  SocketPair src;
  SocketPair dst;
  int small = 4096;
  ASSERT_EQ(::setsockopt(dst.a(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  const size_t kCap = 1 << 20;
  RelayBuffer buf(kCap);
  std::string sent;
  // Fill the buffer through the source socket.
  while (!buf.full()) {
    std::string chunk(16384, static_cast<char>('a' + sent.size() / 16384 % 26));
    ssize_t n = ::send(src.b(), chunk.data(), std::min(chunk.size(), buf.space()), MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    sent.append(chunk.data(), static_cast<size_t>(n));
    while (!buf.full()) {
      IoResult r = buf.ReadFrom(src.a());
      ASSERT_TRUE(r.status.ok()) << r.status;
      if (r.would_block) break;
    }
  }
  ASSERT_EQ(buf.size(), kCap);

  IoResult w = buf.WriteTo(dst.a());
  EXPECT_TRUE(w.status.ok()) << w.status;
  EXPECT_TRUE(w.would_block);
  EXPECT_GT(w.bytes, 0u);
  EXPECT_LT(w.bytes, kCap);
  EXPECT_EQ(buf.size(), kCap - w.bytes);

  // Alternate reader and writer until everything arrived, in order.
  std::string got = Drain(dst.b());
  while (!buf.empty()) {
    IoResult more = buf.WriteTo(dst.a());
    ASSERT_TRUE(more.status.ok()) << more.status;
    got += Drain(dst.b());
  }
  got += Drain(dst.b());
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
}

// Small buffer, small socket buffers and a slow reader: partial writes leave data at the
// front of the buffer, reads compact it. The byte stream must come out unchanged.
TEST(RelayBuffer, CompactionKeepsOrder) {
  SocketPair src;
  SocketPair dst;
  int small = 4096;
  ASSERT_EQ(::setsockopt(dst.a(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string input;
  for (int i = 0; i < 300000; ++i) input.push_back(static_cast<char>((i * 131) ^ (i >> 8)));

  RelayBuffer buf(1000);
  size_t offered = 0;
  std::string got;
  int partial_writes = 0;
  for (int iter = 0; iter < 1000000 && got.size() < input.size(); ++iter) {
    if (offered < input.size()) {
      ssize_t n = ::send(src.b(), input.data() + offered,
                         std::min<size_t>(777, input.size() - offered), MSG_NOSIGNAL);
      if (n > 0) offered += static_cast<size_t>(n);
    }
    IoResult r = buf.ReadFrom(src.a());
    ASSERT_TRUE(r.status.ok()) << r.status;
    IoResult w = buf.WriteTo(dst.a());
    ASSERT_TRUE(w.status.ok()) << w.status;
    if (w.would_block && !buf.empty()) ++partial_writes;
    // A slow reader: an odd amount per round.
    char tmp[333];
    ssize_t n = ::read(dst.b(), tmp, sizeof tmp);
    if (n > 0) got.append(tmp, static_cast<size_t>(n));
  }
  EXPECT_GT(partial_writes, 0);
  ASSERT_EQ(got.size(), input.size());
  EXPECT_TRUE(got == input);
}

TEST(RelayBuffer, PeerCloseIsEof) {
  SocketPair p;
  RelayBuffer buf(64);
  Send(p.b(), "last");
  p.CloseB();
  IoResult r = buf.ReadFrom(p.a());
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_FALSE(r.eof);
  r = buf.ReadFrom(p.a());
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(buf.size(), 4u);
}

TEST(RelayBuffer, PeerShutdownWriteIsEof) {
  SocketPair p;
  RelayBuffer buf(64);
  ASSERT_EQ(::shutdown(p.b(), SHUT_WR), 0);
  IoResult r = buf.ReadFrom(p.a());
  EXPECT_TRUE(r.eof);
}

TEST(RelayBuffer, WriteToClosedPeerIsErrorWithoutSigpipe) {
  // SIGPIPE's default action kills the process: if send(2) raised it, this test would not
  // finish.
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old), 0);

  SocketPair src;
  SocketPair dst;
  RelayBuffer buf(64);
  Send(src.b(), "data for nobody");
  ASSERT_EQ(buf.ReadFrom(src.a()).bytes, 15u);
  dst.CloseB();
  IoResult w = buf.WriteTo(dst.a());
  ::sigaction(SIGPIPE, &old, nullptr);

  EXPECT_FALSE(w.status.ok());
  EXPECT_EQ(w.status.code(), absl::StatusCode::kFailedPrecondition);  // EPIPE
  EXPECT_THAT(w.status.message(), HasSubstr("write"));
  EXPECT_THAT(w.status.message(), HasSubstr("Broken pipe"));
  EXPECT_FALSE(w.would_block);
  EXPECT_EQ(w.bytes, 0u);
}

TEST(RelayBuffer, ReadAfterPeerDiscardedOurDataIsReset) {
  // An AF_UNIX peer that closes with unread data leaves us ECONNRESET.
  SocketPair p;
  Send(p.a(), "never read");
  p.CloseB();
  RelayBuffer buf(64);
  IoResult r = buf.ReadFrom(p.a());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_THAT(r.status.message(), HasSubstr("read"));
  EXPECT_FALSE(r.eof);
}

}  // namespace
}  // namespace interlock::net
