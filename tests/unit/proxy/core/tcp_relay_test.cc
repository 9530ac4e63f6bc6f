// TcpRelay over real loopback TCP: the test owns the agent's client socket and the upstream
// server, the relay runs on a real EventLoop on the test thread. Peers that block run on
// their own threads with socket timeouts, so a broken relay fails the test instead of
// hanging it.
#include "userspace/proxy/core/tcp_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/common/clock.h"
#include "userspace/net/socket.h"
#include "userspace/record/reader.h"
#include "userspace/record/recorder.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/verifier.h"

namespace interlock::proxy {
namespace {

using ::testing::HasSubstr;

// Blocking-peer socket timeouts: long enough for a loaded CI machine, short enough that a
// stuck relay shows up as a failure.
constexpr int kPeerTimeoutSeconds = 10;

void SetBlockingWithTimeouts(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{kPeerTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Reads until EOF or an error; *err is 0 on EOF, else the errno.
std::string ReadToEnd(int fd, int* err) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    *err = n == 0 ? 0 : errno;
    return out;
  }
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 2654435761u + seed) >> 13);
  return s;
}

net::SockAddr Loopback0() { return *net::SockAddr::Parse("127.0.0.1", 0); }

// The agent's connection as interlockd sees it: a client socket the test drives, and the
// accepted server end that is handed to the relay.
struct AgentPair {
  UniqueFd client;
  UniqueFd relay_end;
};

AgentPair MakeAgentPair() {
  AgentPair p;
  auto lfd = net::ListenTcp(Loopback0(), 4);
  if (!lfd.ok()) abort();
  auto bound = net::LocalAddr(lfd->get());
  p.client.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(p.client.get(), bound->sa(), bound->len) != 0) abort();
  pollfd pfd{lfd->get(), POLLIN, 0};
  if (::poll(&pfd, 1, 5000) != 1) abort();
  auto accepted = net::AcceptTcp(lfd->get());
  if (!accepted.ok() || !accepted->has_value()) abort();
  p.relay_end = std::move(**accepted);
  SetBlockingWithTimeouts(p.client.get());
  return p;
}

// The upstream server: a listener on 127.0.0.1:0.
struct Upstream {
  Upstream() {
    auto lfd = net::ListenTcp(Loopback0(), 16);
    if (!lfd.ok()) abort();
    listen_fd = std::move(*lfd);
    addr = *net::LocalAddr(listen_fd.get());
  }
  // Waits for the relay's connection; returns a blocking fd with timeouts (invalid on
  // timeout).
  UniqueFd AcceptBlocking() const {
    pollfd pfd{listen_fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, kPeerTimeoutSeconds * 1000) != 1) return UniqueFd();
    auto accepted = net::AcceptTcp(listen_fd.get());
    if (!accepted.ok() || !accepted->has_value()) return UniqueFd();
    UniqueFd fd = std::move(**accepted);
    SetBlockingWithTimeouts(fd.get());
    return fd;
  }
  UniqueFd listen_fd;
  net::SockAddr addr;
};

// An eventfd whose handler runs `fn` on the loop thread: how peer threads poke the loop.
class Poke final : public net::IoHandler {
 public:
  explicit Poke(std::function<void()> fn)
      : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), fn_(std::move(fn)) {}
  int fd() const { return fd_.get(); }
  void Signal() {
    uint64_t one = 1;
    if (::write(fd_.get(), &one, sizeof one) != sizeof one) abort();
  }
  void OnIo(uint32_t) override {
    uint64_t v;
    (void)!::read(fd_.get(), &v, sizeof v);
    fn_();
  }

 private:
  UniqueFd fd_;
  std::function<void()> fn_;
};

class TcpRelayTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeLoop(RealClock::Get()); }

  void MakeLoop(const Clock& clock) {
    relay_.reset();
    auto loop = net::EventLoop::Create(clock);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  void StartRelay(UniqueFd agent, const net::SockAddr& upstream, RelayOptions options = {},
                  std::unique_ptr<record::Recorder> recorder = nullptr) {
    auto relay = TcpRelay::Start(*loop_, std::move(agent), upstream, options, std::move(recorder),
                                 [this](TcpRelay* r) {
                                   ++done_calls_;
                                   outcome_ = r->outcome();
                                   detail_ = r->detail();
                                   stats_ = r->stats();
                                   EXPECT_TRUE(r->done());
                                   // The documented way to destroy the relay: after this dispatch.
                                   loop_->Defer([this] {
                                     relay_.reset();
                                     loop_->Stop();
                                   });
                                 });
    ASSERT_TRUE(relay.ok()) << relay.status();
    relay_ = *std::move(relay);
  }

  // Runs the loop until the done callback has stopped it; aborts the session when it does
  // not end within `safety` (real time).
  void RunUntilDone(absl::Duration safety = absl::Seconds(20)) {
    const absl::Time give_up = absl::Now() + safety;
    loop_->SetIterationHook([this, give_up] {
      if (absl::Now() < give_up) return;
      ADD_FAILURE() << "session did not end in time";
      if (relay_ && !relay_->done()) relay_->Abort("test_timeout");
      loop_->Stop();
    });
    ASSERT_TRUE(loop_->Run().ok());
    EXPECT_EQ(done_calls_, 1);
    EXPECT_EQ(relay_, nullptr);
  }

  interlock::testing::FakeClock fake_clock_;  // for tests that call MakeLoop(fake_clock_)
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<TcpRelay> relay_;
  int done_calls_ = 0;
  std::string outcome_;
  std::string detail_;
  RelayStats stats_;
};

TEST_F(TcpRelayTest, RelaysBothWaysAndForwardsHalfClose) {
  const std::string request = "GET /orders HTTP/1.1\r\nHost: orders\r\n\r\n";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  Upstream upstream;
  AgentPair agent = MakeAgentPair();

  std::string upstream_got;
  int upstream_err = -1;
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    if (!fd) return;
    // Reads to EOF: the agent's FIN must come through.
    upstream_got = ReadToEnd(fd.get(), &upstream_err);
    // Half-closed, the upstream can still answer.
    (void)net::WriteAll(fd.get(), response);
  });
  std::string agent_got;
  int agent_err = -1;
  std::jthread agent_thread([&] {
    if (!net::WriteAll(agent.client.get(), request).ok()) return;
    ::shutdown(agent.client.get(), SHUT_WR);
    agent_got = ReadToEnd(agent.client.get(), &agent_err);
  });

  StartRelay(std::move(agent.relay_end), upstream.addr);
  RunUntilDone();
  upstream_thread.join();
  agent_thread.join();

  EXPECT_EQ(upstream_got, request);
  EXPECT_EQ(upstream_err, 0);
  EXPECT_EQ(agent_got, response);
  EXPECT_EQ(agent_err, 0);
  EXPECT_EQ(outcome_, "closed");
  EXPECT_EQ(detail_, "");
  EXPECT_EQ(stats_.bytes_to_upstream, request.size());
  EXPECT_EQ(stats_.bytes_to_agent, response.size());
}

TEST_F(TcpRelayTest, UpstreamHalfCloseFirstKeepsAgentDirectionOpen) {
  // The upstream sends a banner and shuts its side first; the agent still sends afterwards.
  const std::string banner = "220 ready\r\n";
  const std::string late = "data after the upstream's FIN";
  Upstream upstream;
  AgentPair agent = MakeAgentPair();

  std::string upstream_got;
  int upstream_err = -1;
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    if (!fd) return;
    if (!net::WriteAll(fd.get(), banner).ok()) return;
    ::shutdown(fd.get(), SHUT_WR);
    upstream_got = ReadToEnd(fd.get(), &upstream_err);
  });
  std::string agent_got;
  int agent_err = -1;
  std::jthread agent_thread([&] {
    agent_got = ReadToEnd(agent.client.get(), &agent_err);  // banner, then EOF
    (void)net::WriteAll(agent.client.get(), late);
    ::shutdown(agent.client.get(), SHUT_WR);
  });

  StartRelay(std::move(agent.relay_end), upstream.addr);
  RunUntilDone();
  upstream_thread.join();
  agent_thread.join();

  EXPECT_EQ(agent_got, banner);
  EXPECT_EQ(agent_err, 0);
  EXPECT_EQ(upstream_got, late);
  EXPECT_EQ(upstream_err, 0);
  EXPECT_EQ(outcome_, "closed");
  EXPECT_EQ(stats_.bytes_to_upstream, late.size());
  EXPECT_EQ(stats_.bytes_to_agent, banner.size());
}

TEST_F(TcpRelayTest, LargeTransferBothWaysAtOnceWithSmallBuffers) {
  const std::string up = Pattern(3 << 20, 1);
  const std::string down = Pattern(2 << 20, 2);
  Upstream upstream;
  AgentPair agent = MakeAgentPair();

  // Each peer writes and reads at the same time (one thread each way).
  std::string upstream_got;
  int upstream_err = -1;
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    if (!fd) return;
    std::jthread writer([&] {
      (void)net::WriteAll(fd.get(), down);
      ::shutdown(fd.get(), SHUT_WR);
    });
    upstream_got = ReadToEnd(fd.get(), &upstream_err);
  });
  std::string agent_got;
  int agent_err = -1;
  std::jthread agent_thread([&] {
    std::jthread writer([&] {
      (void)net::WriteAll(agent.client.get(), up);
      ::shutdown(agent.client.get(), SHUT_WR);
    });
    agent_got = ReadToEnd(agent.client.get(), &agent_err);
  });

  RelayOptions options;
  options.buffer_bytes = 4096;
  StartRelay(std::move(agent.relay_end), upstream.addr, options);
  RunUntilDone(absl::Seconds(60));
  upstream_thread.join();
  agent_thread.join();

  EXPECT_EQ(outcome_, "closed") << detail_;
  EXPECT_EQ(upstream_err, 0);
  EXPECT_EQ(agent_err, 0);
  ASSERT_EQ(upstream_got.size(), up.size());
  ASSERT_EQ(agent_got.size(), down.size());
  EXPECT_TRUE(upstream_got == up);
  EXPECT_TRUE(agent_got == down);
  EXPECT_EQ(stats_.bytes_to_upstream, up.size());
  EXPECT_EQ(stats_.bytes_to_agent, down.size());
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/tcp_relay_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~TempDir() {
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::string File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

TEST_F(TcpRelayTest, RecordsEveryByteAndSealsTheRecording) {
  const std::string request = Pattern(200000, 3);  // several reads and record frames
  const std::string response = "all recorded";
  TempDir dir;
  const std::string path = dir.File("session.rec");
  record::RecordingKey key = record::RecordingKey::Generate();
  v1::SessionOpen open;
  open.set_session_id("relay-test-1");
  open.set_protocol("tcp");
  auto recorder = record::Recorder::Create(path, open, key, RealClock::Get());
  ASSERT_TRUE(recorder.ok()) << recorder.status();

  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  std::string upstream_got;
  int upstream_err = -1;
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    if (!fd) return;
    upstream_got = ReadToEnd(fd.get(), &upstream_err);
    (void)net::WriteAll(fd.get(), response);
  });
  std::string agent_got;
  int agent_err = -1;
  std::jthread agent_thread([&] {
    if (!net::WriteAll(agent.client.get(), request).ok()) return;
    ::shutdown(agent.client.get(), SHUT_WR);
    agent_got = ReadToEnd(agent.client.get(), &agent_err);
  });

  RelayOptions options;
  options.buffer_bytes = 16384;
  StartRelay(std::move(agent.relay_end), upstream.addr, options, *std::move(recorder));
  int flush_errors = 0;
  // As the engine does: flush recordings once per loop iteration.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  loop_->SetIterationHook([&] {
    if (relay_ && !relay_->FlushRecording().ok()) ++flush_errors;
    if (absl::Now() > give_up) {
      ADD_FAILURE() << "session did not end in time";
      loop_->Stop();
    }
  });
  ASSERT_TRUE(loop_->Run().ok());
  upstream_thread.join();
  agent_thread.join();

  EXPECT_EQ(flush_errors, 0);
  EXPECT_EQ(outcome_, "closed") << detail_;
  EXPECT_EQ(upstream_got, request);
  EXPECT_EQ(agent_got, response);

  auto report = record::VerifyFile(path, key.public_key());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->verdict, record::VerifyReport::kValid) << report->detail;
  EXPECT_EQ(report->session_id, "relay-test-1");

  auto rec = record::ReadRecordingFile(path);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_TRUE(rec->stop.ok()) << rec->stop;
  std::string to_upstream;
  std::string to_agent;
  std::vector<std::string> events;
  const v1::SessionClose* close = nullptr;
  for (const v1::Record& r : rec->records) {
    if (r.has_data()) {
      (r.data().direction() == v1::DIRECTION_TO_UPSTREAM ? to_upstream : to_agent) +=
          r.data().payload();
    } else if (r.has_event()) {
      events.push_back(absl::StrCat(r.event().kind(), " ", r.event().detail()));
    } else if (r.has_close()) {
      close = &r.close();
    }
  }
  EXPECT_TRUE(to_upstream == request);
  EXPECT_EQ(to_agent, response);
  EXPECT_THAT(events,
              ::testing::ElementsAre(absl::StrCat("upstream_connected ", upstream.addr.ToString()),
                                     "half_close agent", "half_close upstream"));
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->outcome(), "closed");
  EXPECT_EQ(close->bytes_to_upstream(), request.size());
  EXPECT_EQ(close->bytes_to_agent(), response.size());
}

// A bound socket that never listens: connects to it are refused.
struct ClosedPort {
  ClosedPort() {
    fd.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    net::SockAddr any = Loopback0();
    if (::bind(fd.get(), any.sa(), any.len) != 0) abort();
    addr = *net::LocalAddr(fd.get());
  }
  UniqueFd fd;
  net::SockAddr addr;
};

TEST_F(TcpRelayTest, RefusedUpstreamEndsSessionAndResetsAgent) {
  ClosedPort closed;
  AgentPair agent = MakeAgentPair();
  ASSERT_TRUE(net::WriteAll(agent.client.get(), "hello?").ok());

  StartRelay(std::move(agent.relay_end), closed.addr);
  RunUntilDone();

  EXPECT_EQ(outcome_, "upstream_unreachable");
  EXPECT_THAT(detail_, HasSubstr(closed.addr.ToString()));
  EXPECT_THAT(detail_, HasSubstr("Connection refused"));
  EXPECT_EQ(stats_.bytes_to_upstream, 0u);
  EXPECT_EQ(stats_.bytes_to_agent, 0u);
  int err = -1;
  EXPECT_EQ(ReadToEnd(agent.client.get(), &err), "");
  EXPECT_EQ(err, ECONNRESET);
}

TEST_F(TcpRelayTest, AbortResetsBothPeers) {
  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  Poke abort_now([this] {
    ASSERT_NE(relay_, nullptr);
    relay_->Abort("drain", "interlockd is shutting down");
  });
  ASSERT_TRUE(loop_->Add(abort_now.fd(), EPOLLIN, &abort_now).ok());

  std::string upstream_got;
  int upstream_err = -1;
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    if (!fd) return;
    char buf[4];
    if (!net::ReadExact(fd.get(), buf, 4).ok()) return;
    upstream_got.assign(buf, 4);
    abort_now.Signal();  // the session is live and has moved bytes: abort it
    upstream_got += ReadToEnd(fd.get(), &upstream_err);
  });
  std::string agent_got;
  int agent_err = -1;
  std::jthread agent_thread([&] {
    if (!net::WriteAll(agent.client.get(), "ping").ok()) return;
    agent_got = ReadToEnd(agent.client.get(), &agent_err);
  });

  StartRelay(std::move(agent.relay_end), upstream.addr);
  RunUntilDone();
  upstream_thread.join();
  agent_thread.join();
  loop_->Remove(abort_now.fd());

  EXPECT_EQ(outcome_, "drain");
  EXPECT_EQ(detail_, "interlockd is shutting down");
  EXPECT_EQ(stats_.bytes_to_upstream, 4u);
  EXPECT_EQ(stats_.bytes_to_agent, 0u);
  EXPECT_EQ(upstream_got, "ping");
  EXPECT_EQ(upstream_err, ECONNRESET);
  EXPECT_EQ(agent_got, "");
  EXPECT_EQ(agent_err, ECONNRESET);
}

TEST_F(TcpRelayTest, AgentResetAbortsUpstream) {
  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  std::promise<void> upstream_saw_data;

  std::string upstream_got;
  int upstream_err = -1;
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    if (!fd) return;
    char c;
    if (!net::ReadExact(fd.get(), &c, 1).ok()) return;
    upstream_saw_data.set_value();
    upstream_got = ReadToEnd(fd.get(), &upstream_err);
  });
  std::jthread agent_thread([&] {
    if (!net::WriteAll(agent.client.get(), "x").ok()) return;
    if (upstream_saw_data.get_future().wait_for(std::chrono::seconds(kPeerTimeoutSeconds)) !=
        std::future_status::ready) {
      return;
    }
    linger lg{1, 0};  // close with RST
    ::setsockopt(agent.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    agent.client.Reset();
  });

  StartRelay(std::move(agent.relay_end), upstream.addr);
  RunUntilDone();
  upstream_thread.join();
  agent_thread.join();

  EXPECT_EQ(outcome_, "agent_reset");
  EXPECT_THAT(detail_, HasSubstr("Connection reset"));
  EXPECT_EQ(stats_.bytes_to_upstream, 1u);
  EXPECT_EQ(upstream_got, "");
  EXPECT_EQ(upstream_err, ECONNRESET);
}

// Bytes queued in a TCP socket: sent-but-unacknowledged plus unsent (SIOCOUTQ), and received
// but not yet read (SIOCINQ).
int OutQ(int fd) {
  int n = -1;
  ::ioctl(fd, SIOCOUTQ, &n);
  return n;
}
int InQ(int fd) {
  int n = -1;
  ::ioctl(fd, SIOCINQ, &n);
  return n;
}

// The upstream does not read. The relay must fill its one buffer, stop reading the agent
// (whose writes then hit EAGAIN), hold no more than buffer_bytes, and not spin. When the
// upstream reads again, every byte arrives in order.
TEST_F(TcpRelayTest, SlowUpstreamStallsAgentWithBoundedBuffer) {
  constexpr size_t kBuffer = 4096;
  const std::string input = Pattern(64 << 20, 4);  // far more than any socket buffers
  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  ASSERT_EQ(::fcntl(agent.client.get(), F_SETFL, O_NONBLOCK), 0);
  // A second descriptor for the relay's end, only to measure its receive queue.
  UniqueFd relay_end_probe(::dup(agent.relay_end.get()));
  ASSERT_TRUE(relay_end_probe.valid());

  size_t written = 0;
  bool agent_shut = false;
  UniqueFd upstream_conn;
  std::string upstream_got;
  bool upstream_eof = false;
  int stalled_ticks = 0;
  int iterations = 0;
  int iterations_at_stall_start = 0;
  bool measured = false;
  size_t relay_held = 0;
  size_t written_at_stall = 0;
  uint64_t forwarded_at_stall = 0;
  int iterations_while_stalled = 0;

  std::function<void()> tick = [&] {
    if (!upstream_conn) {
      auto accepted = net::AcceptTcp(upstream.listen_fd.get());
      if (accepted.ok() && accepted->has_value()) upstream_conn = std::move(**accepted);
    }
    if (!measured) {
      // Phase 1: the agent writes as fast as it can; the upstream reads nothing.
      bool blocked = false;
      size_t before = written;
      while (written < input.size()) {
        ssize_t n = ::send(agent.client.get(), input.data() + written,
                           std::min<size_t>(65536, input.size() - written), MSG_NOSIGNAL);
        if (n > 0) {
          written += static_cast<size_t>(n);
          continue;
        }
        blocked = n < 0 && errno == EAGAIN;
        break;
      }
      uint64_t forwarded = relay_ ? relay_->stats().bytes_to_upstream : 0;
      if (blocked && written == before && forwarded == forwarded_at_stall) {
        if (stalled_ticks++ == 0) iterations_at_stall_start = iterations;
      } else {
        stalled_ticks = 0;
        forwarded_at_stall = forwarded;
      }
      if (stalled_ticks == 50) {  // about 100 ms with nothing moving
        measured = true;
        written_at_stall = written;
        iterations_while_stalled = iterations - iterations_at_stall_start;
        // What the relay consumed from the agent minus what it passed on.
        size_t consumed = written - static_cast<size_t>(OutQ(agent.client.get())) -
                          static_cast<size_t>(InQ(relay_end_probe.get()));
        relay_held = consumed - static_cast<size_t>(forwarded);
        relay_end_probe.Reset();
        ::shutdown(agent.client.get(), SHUT_WR);
        agent_shut = true;
      }
    } else if (upstream_conn && !upstream_eof) {
      // Phase 2: the upstream drains everything, then closes.
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(upstream_conn.get(), buf, sizeof buf);
        if (n > 0) {
          upstream_got.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (n == 0) {
          upstream_eof = true;
          upstream_conn.Reset();
        }
        break;
      }
    }
  };
  std::function<void()> rearm = [&] {
    loop_->RunAfter(absl::Milliseconds(2), [&] {
      tick();
      if (relay_) rearm();
    });
  };

  RelayOptions options;
  options.buffer_bytes = kBuffer;
  StartRelay(std::move(agent.relay_end), upstream.addr, options);
  rearm();
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  loop_->SetIterationHook([&] {
    ++iterations;
    if (absl::Now() > give_up) {
      ADD_FAILURE() << "did not finish; written " << written << " measured " << measured;
      if (relay_ && !relay_->done()) relay_->Abort("test_timeout");
      loop_->Stop();
    }
  });
  ASSERT_TRUE(loop_->Run().ok());

  ASSERT_TRUE(measured);
  EXPECT_TRUE(agent_shut);
  // The agent was stopped long before it could write everything.
  EXPECT_LT(written_at_stall, input.size() / 4);
  // Exactly one full buffer sits in the relay; the rest waits in kernel queues.
  EXPECT_EQ(relay_held, kBuffer);
  // While stalled, the loop woke only for the test's 2 ms timer (50 ticks), not in a spin.
  EXPECT_LT(iterations_while_stalled, 200);

  EXPECT_EQ(outcome_, "closed") << detail_;
  EXPECT_TRUE(upstream_eof);
  EXPECT_EQ(stats_.bytes_to_upstream, written);
  EXPECT_EQ(stats_.bytes_to_agent, 0u);
  ASSERT_EQ(upstream_got.size(), written);
  EXPECT_TRUE(upstream_got == input.substr(0, written));
}

// Connect timeout on the fake clock. A listener with backlog 0 and one unaccepted
// connection has a full accept queue, so Linux drops further SYNs: the relay's connect stays
// pending until the fake clock passes connect_timeout.
TEST_F(TcpRelayTest, ConnectTimeoutOnFakeClock) {
  MakeLoop(fake_clock_);
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  net::SockAddr any = Loopback0();
  ASSERT_EQ(::bind(listener.get(), any.sa(), any.len), 0);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  net::SockAddr addr = *net::LocalAddr(listener.get());
  UniqueFd filler(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(filler.get(), addr.sa(), addr.len), 0);

  AgentPair agent = MakeAgentPair();
  RelayOptions options;
  options.connect_timeout = absl::Seconds(5);

  int wakeups = 0;
  bool done_before_deadline = true;
  Poke advance([&] {
    ++wakeups;
    if (wakeups == 1) {
      fake_clock_.Advance(absl::Seconds(4));  // not yet
      advance.Signal();
    } else if (wakeups == 2) {
      done_before_deadline = relay_ == nullptr || relay_->done();
      fake_clock_.Advance(absl::Seconds(2));
    }
  });
  ASSERT_TRUE(loop_->Add(advance.fd(), EPOLLIN, &advance).ok());
  StartRelay(std::move(agent.relay_end), addr, options);
  advance.Signal();
  RunUntilDone();
  loop_->Remove(advance.fd());

  EXPECT_EQ(wakeups, 2);
  EXPECT_FALSE(done_before_deadline);
  EXPECT_EQ(outcome_, "upstream_timeout");
  EXPECT_EQ(detail_, absl::StrCat("connect ", addr.ToString(), ": timed out"));
  int err = -1;
  EXPECT_EQ(ReadToEnd(agent.client.get(), &err), "");
  EXPECT_EQ(err, ECONNRESET);
}

}  // namespace
}  // namespace interlock::proxy

namespace interlock::proxy {
namespace {

// An idle session gives its buffers back: after one exchange, nothing of the memory budget
// is held while both peers wait.
TEST_F(TcpRelayTest, IdleSessionHoldsNoBufferMemory) {
  MemoryBudget budget(1 << 20);
  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    char c;
    if (!fd || ::read(fd.get(), &c, 1) != 1) return;
    (void)!::write(fd.get(), &c, 1);
    int err;
    (void)ReadToEnd(fd.get(), &err);  // idle until the relay ends
  });
  size_t held_while_idle = 12345;
  size_t held_limit_seen = 0;
  Poke check([&] {
    held_while_idle = budget.used();
    relay_->Abort("test_done");
  });
  ASSERT_TRUE(loop_->Add(check.fd(), EPOLLIN, &check).ok());
  std::string echoed;
  std::jthread agent_thread([&] {
    if (!net::WriteAll(agent.client.get(), "x").ok()) return;
    char c;
    if (::read(agent.client.get(), &c, 1) == 1) echoed.assign(1, c);
    // Both directions have been drained by now: the relay's next loop turn sees none held.
    check.Signal();
  });
  RelayOptions options;
  options.buffer_bytes = 16384;
  options.memory = &budget;
  StartRelay(std::move(agent.relay_end), upstream.addr, options);
  loop_->SetIterationHook([&] { held_limit_seen = std::max(held_limit_seen, budget.used()); });
  ASSERT_TRUE(loop_->Run().ok());
  agent_thread.join();
  upstream_thread.join();
  EXPECT_EQ(echoed, "x");
  EXPECT_EQ(outcome_, "test_done");
  EXPECT_EQ(held_while_idle, 0u);
  EXPECT_LE(held_limit_seen, 2 * options.buffer_bytes);
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(TcpRelayTest, BufferBeyondTheMemoryBudgetEndsTheSession) {
  MemoryBudget budget(1000);  // less than one 16 KiB buffer
  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  ASSERT_TRUE(net::WriteAll(agent.client.get(), "hello").ok());
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    int err;
    if (fd) (void)ReadToEnd(fd.get(), &err);
  });
  RelayOptions options;
  options.buffer_bytes = 16384;
  options.memory = &budget;
  StartRelay(std::move(agent.relay_end), upstream.addr, options);
  RunUntilDone();
  upstream_thread.join();
  EXPECT_EQ(outcome_, "memory_budget");
  EXPECT_THAT(detail_, HasSubstr("session buffers 16384 bytes"));
  EXPECT_EQ(budget.used(), 0u);
  int err = -1;
  EXPECT_EQ(ReadToEnd(agent.client.get(), &err), "");
  EXPECT_EQ(err, ECONNRESET);
}

// Recordings in a shared descriptor cache: a session whose file was evicted and cannot be
// opened again ends as recording_failed (fail closed), like one whose write failed.
TEST_F(TcpRelayTest, RecordingThatCannotBeReopenedEndsTheSession) {
  TempDir dir;
  record::RecordingKey key = record::RecordingKey::Generate();
  record::FileCache files(1);
  v1::SessionOpen open;
  open.set_session_id("relay-evicted");
  auto recorder = record::Recorder::Create(dir.File("a.rec"), open, key, RealClock::Get(),
                                           {.files = &files});
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  open.set_session_id("relay-other");
  auto other = record::Recorder::Create(dir.File("b.rec"), open, key, RealClock::Get(),
                                        {.files = &files});  // takes the only descriptor
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_EQ(::rename(dir.File("a.rec").c_str(), dir.File("moved.rec").c_str()), 0);

  Upstream upstream;
  AgentPair agent = MakeAgentPair();
  std::jthread upstream_thread([&] {
    UniqueFd fd = upstream.AcceptBlocking();
    int err;
    if (fd) (void)ReadToEnd(fd.get(), &err);
  });
  // More than the recorder buffers: its write (and so the reopen) happens in the relay.
  const std::string request = Pattern(2 * record::Recorder::kFlushThresholdBytes, 5);
  std::jthread agent_thread([&] { (void)net::WriteAll(agent.client.get(), request); });
  StartRelay(std::move(agent.relay_end), upstream.addr, {}, *std::move(recorder));
  RunUntilDone();
  agent_thread.join();
  upstream_thread.join();
  EXPECT_EQ(outcome_, "recording_failed");
  EXPECT_THAT(detail_, HasSubstr("reopen " + dir.File("a.rec")));
  auto report = record::VerifyFile(dir.File("moved.rec"), key.public_key());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->verdict, record::VerifyReport::kIncomplete) << report->detail;
}

}  // namespace
}  // namespace interlock::proxy
