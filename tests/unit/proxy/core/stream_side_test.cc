// StreamSide over a real socketpair and a real EventLoop: reads, writes, end of stream,
// would-block, and the epoll interest it registers.
#include "userspace/proxy/core/stream_side.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "userspace/common/clock.h"
#include "userspace/net/event_loop.h"

namespace interlock::proxy {
namespace {

struct Counter final : net::IoHandler {
  void OnIo(uint32_t events) override {
    seen |= events;
    if (loop != nullptr) loop->Stop();
  }
  uint32_t seen = 0;
  net::EventLoop* loop = nullptr;
};

class StreamSideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = net::EventLoop::Create(RealClock::Get());
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    side_ = std::make_unique<StreamSide>(loop_.get(), &handler_, "agent");
    side_->Attach(UniqueFd(sv[0]), /*readable=*/false);
    peer_ = sv[1];
  }
  void TearDown() override {
    side_.reset();
    if (peer_ >= 0) ::close(peer_);
  }

  std::unique_ptr<net::EventLoop> loop_;
  Counter handler_;
  std::unique_ptr<StreamSide> side_;
  int peer_ = -1;
};

TEST_F(StreamSideTest, ReadsWhatThePeerWroteThenWouldBlock) {
  ASSERT_EQ(::write(peer_, "hello", 5), 5);
  side_->NoteEvents(EPOLLIN);
  EXPECT_TRUE(side_->readable());
  net::IoResult r = side_->Read(StreamSide::kReadChunk);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.bytes, 5u);
  EXPECT_EQ(side_->in().view(), "hello");
  EXPECT_FALSE(side_->readable()) << "a short read drained the socket";
  r = side_->Read(StreamSide::kReadChunk);
  EXPECT_TRUE(r.would_block);
  EXPECT_EQ(r.bytes, 0u);
}

TEST_F(StreamSideTest, ReadsAtMostWhatIsAskedFor) {
  ASSERT_EQ(::write(peer_, "SNext", 5), 5);
  side_->NoteEvents(EPOLLIN);
  net::IoResult r = side_->Read(1);  // an SSLRequest answer: one byte, the rest is TLS
  EXPECT_EQ(r.bytes, 1u);
  EXPECT_EQ(side_->in().view(), "S");
  EXPECT_TRUE(side_->readable()) << "a full read may have left more";
}

TEST_F(StreamSideTest, EndOfStreamIsRemembered) {
  ::shutdown(peer_, SHUT_WR);
  side_->NoteEvents(EPOLLIN);
  net::IoResult r = side_->Read(StreamSide::kReadChunk);
  EXPECT_TRUE(r.eof);
  EXPECT_TRUE(side_->eof());
}

TEST_F(StreamSideTest, FlushWritesTheQueueAndReportsErrors) {
  side_->out().Append("world");
  net::IoResult w = side_->Flush();
  ASSERT_TRUE(w.status.ok());
  EXPECT_EQ(w.bytes, 5u);
  EXPECT_TRUE(side_->out().empty());
  char buf[16];
  ASSERT_EQ(::read(peer_, buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "world");
  ::close(peer_);
  peer_ = -1;
  side_->out().Append("lost");
  w = side_->Flush();
  EXPECT_FALSE(w.status.ok());
  EXPECT_NE(std::string(w.status.message()).find("write agent"), std::string::npos) << w.status;
}

TEST_F(StreamSideTest, InterestFollowsTheQueuesAndIsRegisteredWithTheLoop) {
  EXPECT_EQ(side_->Interest(false), 0u);
  EXPECT_EQ(side_->Interest(true), static_cast<uint32_t>(EPOLLIN));
  side_->out().Append("x");
  EXPECT_EQ(side_->Interest(false), static_cast<uint32_t>(EPOLLOUT));
  side_->Watch(EPOLLOUT);
  // Registered: the loop reports writability to the handler (which stops it).
  handler_.loop = loop_.get();
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_TRUE(handler_.seen & EPOLLOUT);
  side_->Watch(0);
  side_->Close(/*reset=*/true);
  EXPECT_FALSE(side_->attached());
  side_->Watch(EPOLLIN);  // a closed side registers nothing
}

}  // namespace
}  // namespace interlock::proxy
