// ControlServer end to end: a real unix socket in a temp dir, the server on an EventLoop
// running on its own thread, and the blocking client (CallControl) or a raw socket on the
// test thread.
#include "userspace/control/server.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/clock.h"
#include "userspace/control/client.h"
#include "userspace/control/framing.h"
#include "userspace/net/socket.h"

namespace interlock::control {
namespace {

using ::testing::HasSubstr;

std::string Header(uint32_t n) {
  return std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
}

// Stops the loop from another thread: the only cross-thread call is write(2) on an eventfd
// whose handler runs on the loop thread.
class Stopper final : public net::IoHandler {
 public:
  explicit Stopper(net::EventLoop* loop)
      : loop_(loop), fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  int fd() const { return fd_.get(); }
  void Signal() {
    uint64_t one = 1;
    if (::write(fd_.get(), &one, sizeof one) != sizeof one) abort();
  }
  void OnIo(uint32_t) override { loop_->Stop(); }

 private:
  net::EventLoop* loop_;
  UniqueFd fd_;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // With admin_gid unset only root may call; the server checks our real credentials.
    if (::geteuid() != 0) GTEST_SKIP() << "the control server admits only root here";
    std::string tmpl = "/tmp/control_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/control.sock";
    auto loop = net::EventLoop::Create(RealClock::Get());
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    stopper_ = std::make_unique<Stopper>(loop_.get());
    ASSERT_TRUE(loop_->Add(stopper_->fd(), EPOLLIN, stopper_.get()).ok());
  }

  void TearDown() override {
    StopLoop();
    server_.reset();
    if (!path_.empty()) {
      struct stat st;
      EXPECT_NE(::stat(path_.c_str(), &st), 0) << "socket file left behind";
    }
    if (!dir_.empty()) {
      ::nftw(
          dir_.c_str(),
          [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
          FTW_DEPTH | FTW_PHYS);
    }
  }

  // Creates the server on this thread, then runs the loop on another.
  void Start(std::function<bool(const std::string&)> enrolled = [](const std::string&) {
    return false;
  }) {
    auto server = ControlServer::Create(
        *loop_, path_, std::nullopt,
        [this, enrolled](const Caller& caller) {
          std::lock_guard<std::mutex> lock(mu_);
          checked_cgroups_.push_back(caller.cgroup_path);
          return enrolled(caller.cgroup_path);
        },
        [this](const v1::ControlRequest& req, const Caller& caller) {
          ++handled_;
          return Handle(req, caller);
        },
        [this](const Caller& caller, const absl::Status& st) {
          std::lock_guard<std::mutex> lock(mu_);
          refused_.push_back(absl::StrCat(caller.cred.pid, " ", st.message()));
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    thread_ = std::thread([this] { run_status_ = loop_->Run(); });
  }

  void StopLoop() {
    if (!thread_.joinable()) return;
    stopper_->Signal();
    thread_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_;
  }

  // The test handler: status -> echoes the caller; enroll "missing" -> NOT_FOUND.
  static v1::ControlResponse Handle(const v1::ControlRequest& req, const Caller& caller) {
    v1::ControlResponse resp;
    if (req.has_status()) {
      resp.mutable_status()->set_version("test-1");
      resp.mutable_status()->set_pid(static_cast<uint32_t>(caller.cred.pid));
      resp.mutable_status()->set_cgroup_root(caller.cgroup_path);
    } else if (req.has_enroll() && req.enroll().name() == "missing") {
      resp.set_error_code(static_cast<int>(absl::StatusCode::kNotFound));
      resp.set_error("control: no workload named missing");
    } else {
      resp.mutable_enroll()->set_cgroup_dir("/fake/" + req.enroll().name());
    }
    return resp;
  }

  // Connects with a raw socket, sends `bytes`, and reads one response frame.
  absl::StatusOr<v1::ControlResponse> RawExchange(absl::string_view bytes) {
    auto fd = net::ConnectUnix(path_);
    if (!fd.ok()) return fd.status();
    timeval tv{5, 0};
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!bytes.empty()) {
      absl::Status st = net::WriteAll(fd->get(), bytes);
      if (!st.ok()) return st;
    }
    char hdr[4];
    absl::Status st = net::ReadExact(fd->get(), hdr, 4);
    if (!st.ok()) return st;
    FrameDecoder dec;
    dec.Append(absl::string_view(hdr, 4));
    const auto* p = reinterpret_cast<const unsigned char*>(hdr);
    uint32_t n = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    std::string body(n, '\0');
    st = net::ReadExact(fd->get(), body.data(), n);
    if (!st.ok()) return st;
    dec.Append(body);
    auto frame = dec.Next();
    if (!frame.ok()) return frame.status();
    if (!frame->has_value()) return absl::DataLossError("incomplete response");
    v1::ControlResponse resp;
    if (!resp.ParseFromString(**frame)) return absl::DataLossError("bad response");
    // The server closes after one response.
    char extra;
    if (::read(fd->get(), &extra, 1) != 0) return absl::DataLossError("bytes after response");
    return resp;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<Stopper> stopper_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
  absl::Status run_status_;
  std::atomic<int> handled_{0};
  std::mutex mu_;
  std::vector<std::string> refused_;
  std::vector<std::string> checked_cgroups_;
};

TEST_F(ControlServerTest, HandlerResponseReachesClient) {
  Start();
  v1::ControlRequest req;
  req.mutable_status();
  auto resp = CallControl(path_, req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status().version(), "test-1");
  EXPECT_EQ(resp->status().pid(), static_cast<uint32_t>(::getpid()));
  auto own_cgroup = CgroupPathOfPid(::getpid());
  ASSERT_TRUE(own_cgroup.ok()) << own_cgroup.status();
  EXPECT_EQ(resp->status().cgroup_root(), *own_cgroup);

  StopLoop();
  EXPECT_EQ(handled_, 1);
  EXPECT_THAT(checked_cgroups_, ::testing::ElementsAre(*own_cgroup));
  EXPECT_TRUE(refused_.empty());
}

TEST_F(ControlServerTest, ServesAnInheritedSocketAndCanLeaveItsFile) {
  // A live upgrade: the old process's server goes without removing the socket file, and
  // the new process's, on the same listening socket, answers at the same path.
  auto fd = net::ListenUnix(path_, 0660);
  ASSERT_TRUE(fd.ok()) << fd.status();
  UniqueFd second(::dup(fd->get()));
  ASSERT_TRUE(second.valid());
  auto make = [this](UniqueFd listen_fd) {
    return ControlServer::Create(
        *loop_, path_, std::move(listen_fd), std::nullopt, [](const Caller&) { return false; },
        [](const v1::ControlRequest& req, const Caller& caller) { return Handle(req, caller); },
        [](const Caller&, const absl::Status&) {});
  };
  auto old_server = make(*std::move(fd));
  ASSERT_TRUE(old_server.ok()) << old_server.status();
  (*old_server)->KeepSocketFile();
  old_server->reset();
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0) << "the socket file went with the old server";
  auto server = make(std::move(second));
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  thread_ = std::thread([this] { run_status_ = loop_->Run(); });
  v1::ControlRequest req;
  req.mutable_status();
  auto resp = CallControl(path_, req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status().version(), "test-1");
  // TearDown checks that this server, not told to keep it, removes the file.
}

TEST_F(ControlServerTest, ServesSequentialClients) {
  Start();
  for (int i = 0; i < 5; ++i) {
    v1::ControlRequest req;
    req.mutable_enroll()->set_name(absl::StrCat("w", i));
    auto resp = CallControl(path_, req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->enroll().cgroup_dir(), absl::StrCat("/fake/w", i));
  }
  StopLoop();
  EXPECT_EQ(handled_, 5);
}

TEST_F(ControlServerTest, HandlerErrorBecomesClientStatus) {
  Start();
  v1::ControlRequest req;
  req.mutable_enroll()->set_name("missing");
  auto resp = CallControl(path_, req);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(resp.status().message(), "control: no workload named missing");
}

TEST_F(ControlServerTest, MalformedRequestGetsErrorResponse) {
  Start();
  auto resp = RawExchange(Header(4) + "\xff\xff\xff\xff");
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp->error(), "control: malformed request");
  StopLoop();
  EXPECT_EQ(handled_, 0);
}

TEST_F(ControlServerTest, OversizedFrameGetsErrorResponse) {
  Start();
  auto resp = RawExchange(Header(kMaxControlFrameBytes + 1));
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(resp->error(), HasSubstr("frame length"));
  StopLoop();
  EXPECT_EQ(handled_, 0);
}

TEST_F(ControlServerTest, RequestSplitAcrossWritesIsReassembled) {
  Start();
  v1::ControlRequest req;
  req.mutable_status();
  const std::string frame = EncodeFrame(req);
  auto fd = net::ConnectUnix(path_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  timeval tv{5, 0};
  ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (char c : frame) {
    ASSERT_TRUE(net::WriteAll(fd->get(), absl::string_view(&c, 1)).ok());
    ::usleep(2000);  // let the server wake up on each byte
  }
  char hdr[4];
  ASSERT_TRUE(net::ReadExact(fd->get(), hdr, 4).ok());
  const auto* p = reinterpret_cast<const unsigned char*>(hdr);
  std::string body(p[3], '\0');
  ASSERT_TRUE(net::ReadExact(fd->get(), body.data(), body.size()).ok());
  v1::ControlResponse resp;
  ASSERT_TRUE(resp.ParseFromString(body));
  EXPECT_EQ(resp.status().version(), "test-1");
}

TEST_F(ControlServerTest, CallerInEnrolledCgroupIsRefused) {
  Start([](const std::string&) { return true; });
  // The refusal is written at accept, before any request is read: send nothing.
  auto resp = RawExchange("");
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->error_code(), static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(resp->error(), HasSubstr("is an enrolled workload"));
  StopLoop();
  EXPECT_EQ(handled_, 0);
  ASSERT_EQ(refused_.size(), 1u);
  EXPECT_THAT(refused_[0], HasSubstr(absl::StrCat(::getpid(), " ")));
  EXPECT_THAT(refused_[0], HasSubstr("is an enrolled workload"));
}

TEST_F(ControlServerTest, SocketIsGroupReadWriteOnly) {
  Start();
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST(ControlClient, NoServerIsUnavailable) {
  v1::ControlRequest req;
  req.mutable_status();
  auto resp = CallControl("/tmp/control_test.does-not-exist.sock", req);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(resp.status().message(), HasSubstr("interlockd is not reachable"));
}

}  // namespace
}  // namespace interlock::control
