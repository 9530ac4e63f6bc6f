// Real-kernel tests of the Interlock datapath (bpf/interlock.bpf.c via
// userspace/bpf/datapath.h). Privileged: run as root (ctest label "privileged").
//
// Each test gets a throwaway cgroup subtree and bpffs pin directory:
//   <cgroup2>/interlock-bpftest-<pid>-<n>/       programs attached here
//       daemon/                                  the test "engine" sockets live here
//       workloads/{w1,w1/sub,other}/             agents (forked children) join these
//   /sys/fs/bpf/interlock-bpftest-<pid>-<n>/     pins
//
// The test process itself never changes cgroup. A socket belongs for life to the cgroup
// of the process that created it (and accepted sockets to their listener's), so the
// engine listeners are created by a short-lived child that joins daemon/ and hands the
// fds back over SCM_RIGHTS. That keeps PASSIVE_ESTABLISHED firing for the engine side
// while the test process stays unenrolled and outside the subtree, with nothing to
// restore if a test dies half-way (moving the test process itself would leave it
// stranded in a cgroup that TearDown must then delete from under it).
//
// Agents are forked children: they join their cgroup, connect, report a POD struct over
// a pipe, then wait until the parent releases them, so that the agent socket stays open
// while the parent looks its connection up.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/bpf/datapath.h"
#include "userspace/common/unique_fd.h"

namespace interlock::bpf {
namespace {

using ::testing::Contains;
using ::testing::Pair;

constexpr int kIoTimeoutMs = 20000;
constexpr char kAgentComm[] = "il-test-agent";

// ---------------------------------------------------------------------------------
// Small helpers

std::string FindCgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> ..."
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || dash + 1 == f.end()) continue;
    if (*(dash + 1) == "cgroup2") return f[4];
  }
  return "";
}

// The cgroup2 path of this process ("0::/path" in /proc/self/cgroup).
std::string OwnCgroup2Path() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "/";
}

uint64_t CgroupId(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return 0;
  return st.st_ino;  // cgroup2: the directory's inode number is the cgroup id
}

bool WriteString(const std::string& path, const std::string& s) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  close(fd);
  return ok;
}

sockaddr_storage Addr(const char* ip, uint16_t port) {
  sockaddr_storage ss{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
  }
  return ss;
}

socklen_t AddrLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// "127.0.0.42:5432", "[::ffff:127.0.0.42]:5432".
std::string Format(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return absl::StrCat(buf, ":", ntohs(sin->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return absl::StrCat("[", buf, "]:", ntohs(sin6->sin6_port));
  }
  return absl::StrCat("family ", ss.ss_family);
}

// 128-bit network-order form of an address literal, IPv4 mapped.
std::array<uint8_t, 16> Mapped(const char* ip) {
  std::array<uint8_t, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, ip, &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(&out[12], &v4, 4);
  } else {
    inet_pton(AF_INET6, ip, out.data());
  }
  return out;
}

std::string FormatWords(const uint32_t addr[4]) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, addr, buf, sizeof buf);
  return buf;
}

UniqueFd Listen(const sockaddr_storage& addr) {
  UniqueFd fd(socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.ss_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), AddrLen(addr)) != 0 ||
      listen(fd.get(), 64) != 0) {
    return UniqueFd();
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                 : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

void SetIoTimeouts(int fd) {
  timeval tv{kIoTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Accepts one connection within `timeout_ms`; invalid on timeout.
UniqueFd AcceptWithin(int listener, int timeout_ms) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return UniqueFd();
  UniqueFd fd(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (fd) SetIoTimeouts(fd.get());
  return fd;
}

bool ReadExact(int fd, void* buf, size_t n, int timeout_ms) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) != 1) return false;
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteAll(int fd, const void* buf, size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// read() that rides out spurious EAGAIN on a blocking socket. A socket in a sockmap
// reads through tcp_bpf_recvmsg(), which returns -EAGAIN when its wait is woken with
// nothing queued (e.g. by a write-space wakeup from another thread writing to the same
// socket) instead of waiting again. Counts those in `*spurious`; gives up (ETIMEDOUT)
// when poll() sees nothing readable for kIoTimeoutMs.
ssize_t ReadPatiently(int fd, void* buf, size_t n, uint64_t* spurious) {
  for (;;) {
    ssize_t r = read(fd, buf, n);
    if (r >= 0 || (errno != EAGAIN && errno != EINTR)) return r;
    if (errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, kIoTimeoutMs) != 1) {
        errno = ETIMEDOUT;
        return -1;
      }
      ++*spurious;
    }
  }
}

bool JoinCgroup(const std::string& dir) { return WriteString(dir + "/cgroup.procs", "0"); }

// Byte `i` of the test stream: position-dependent, so loss, duplication and reordering
// all show up as a mismatch.
uint8_t PatternByte(uint64_t i) { return static_cast<uint8_t>((i * 0x9E3779B97F4A7C15ull) >> 56); }

// ---------------------------------------------------------------------------------
// Sockets created inside a cgroup (by a child that joins it and sends the fds back).

std::vector<UniqueFd> CreateSocketsIn(const std::string& cgroup_dir,
                                      const std::function<std::vector<int>()>& make) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    std::vector<int> fds;
    if (JoinCgroup(cgroup_dir)) fds = make();
    char byte = 0;
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
    if (!fds.empty() && fds.size() <= 8) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    _exit(sendmsg(sv[1], &msg, 0) == 1 ? 0 : 1);
  }
  close(sv[1]);
  UniqueFd chan(sv[0]);
  std::vector<UniqueFd> out;
  if (pid < 0) return out;
  char byte;
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  pollfd p{chan.get(), POLLIN, 0};
  if (poll(&p, 1, kIoTimeoutMs) == 1 && recvmsg(chan.get(), &msg, MSG_CMSG_CLOEXEC) == 1) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        out.emplace_back(fd);
      }
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return out;
}

// ---------------------------------------------------------------------------------
// Agent: a forked child in a cgroup. The body reports through `report_fd` and may block
// on `hold_fd` (readable/EOF when the parent calls Release()).

class Agent {
 public:
  using Body = std::function<void(int report_fd, int hold_fd)>;

  Agent(const std::string& cgroup_dir, const Body& body) {
    int report[2], hold[2];
    if (pipe2(report, O_CLOEXEC) != 0) return;
    if (pipe2(hold, O_CLOEXEC) != 0) {
      close(report[0]);
      close(report[1]);
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      close(report[0]);
      close(hold[1]);
      prctl(PR_SET_NAME, kAgentComm);
      if (!JoinCgroup(cgroup_dir)) _exit(3);
      body(report[1], hold[0]);
      _exit(0);
    }
    close(report[1]);
    close(hold[0]);
    report_.Reset(report[0]);
    hold_.Reset(hold[1]);
  }
  ~Agent() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  pid_t pid() const { return pid_; }

  template <typename T>
  bool Read(T* out, int timeout_ms = kIoTimeoutMs) {
    return ReadExact(report_.get(), out, sizeof *out, timeout_ms);
  }
  // Sends one byte to the child (it may wait for it before proceeding).
  void Signal() {
    char b = 1;
    (void)!write(hold_.get(), &b, 1);
  }
  // Lets a held child finish; returns its exit status (-1 on error).
  int Finish() {
    hold_.Reset();
    int status = 0;
    pid_t p = waitpid(pid_, &status, 0);
    pid_ = -1;
    return p > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd report_;
  UniqueFd hold_;
};

// What a connecting agent saw.
struct ConnectReport {
  int err = -1;  // 0 when connect() succeeded, else its errno
  int pid = 0;
  sockaddr_storage local{};
  sockaddr_storage peer{};  // getpeername()
};

// Agent body: connect a `family` socket to `dst`, report, wait for release.
Agent::Body ConnectAndHold(int family, const sockaddr_storage& dst) {
  return [family, dst](int report_fd, int hold_fd) {
    ConnectReport r;
    r.pid = getpid();
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      r.err = errno;
    } else if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), AddrLen(dst)) != 0) {
      r.err = errno;
    } else {
      r.err = 0;
      socklen_t len = sizeof r.local;
      getsockname(fd, reinterpret_cast<sockaddr*>(&r.local), &len);
      len = sizeof r.peer;
      getpeername(fd, reinterpret_cast<sockaddr*>(&r.peer), &len);
    }
    (void)!write(report_fd, &r, sizeof r);
    char b;
    (void)!read(hold_fd, &b, 1);
  };
}

// ---------------------------------------------------------------------------------
// Fixture

class DatapathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u)
        << "bpf_datapath_test is a privileged test: it loads BPF programs, attaches them "
           "to cgroups and mounts bpffs. Run it as root (ctest -L privileged as root).";
    cg2_ = FindCgroup2Mount();
    ASSERT_FALSE(cg2_.empty()) << "no cgroup2 mount in /proc/self/mountinfo";

    static std::atomic<int> counter{0};
    const std::string name =
        absl::StrCat("interlock-bpftest-", getpid(), "-", counter.fetch_add(1));
    root_ = absl::StrCat(cg2_, "/", name);
    pin_path_ = absl::StrCat("/sys/fs/bpf/", name);
    for (const std::string& d : {root_, daemon_cg(), root_ + "/workloads", w1_cg(),
                                 w1_cg() + "/sub", other_cg()}) {
      ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << "mkdir " << d << ": " << strerror(errno);
    }

    // Engine listeners on 127.0.0.1:P and [::1]:P, owned by the daemon cgroup.
    std::vector<UniqueFd> fds = CreateSocketsIn(daemon_cg(), [] {
      for (int attempt = 0; attempt < 20; ++attempt) {
        UniqueFd v4 = Listen(Addr("127.0.0.1", 0));
        if (!v4) continue;
        UniqueFd v6 = Listen(Addr("::1", LocalPort(v4.get())));
        if (!v6) continue;
        return std::vector<int>{v4.Release(), v6.Release()};
      }
      return std::vector<int>{};
    });
    ASSERT_EQ(fds.size(), 2u) << "could not create engine listeners in " << daemon_cg();
    engine4_ = std::move(fds[0]);
    engine6_ = std::move(fds[1]);
    engine_port_ = LocalPort(engine4_.get());

    // A port for the protected resource, free on 127.0.0.42 (for the direct listener).
    UniqueFd probe = Listen(Addr("127.0.0.42", 0));
    ASSERT_TRUE(probe.valid());
    resource_port_ = LocalPort(probe.get());

    settings_ = {};
    memcpy(settings_.engine_ip4, Mapped("127.0.0.1").data(), 16);
    memcpy(settings_.engine_ip6, Mapped("::1").data(), 16);
    settings_.engine_port = engine_port_;
    settings_.flags = IL_SETTINGS_ENGINE_ACCEPTING;
    ASSERT_NO_FATAL_FAILURE(OpenDatapath());
    EXPECT_FALSE(dp_->readopted());
  }

  void TearDown() override {
    engine4_.Reset();
    engine6_.Reset();
    dp_.reset();
    if (!pin_path_.empty()) {
      absl::Status st = Datapath::Teardown(pin_path_);
      EXPECT_TRUE(st.ok()) << st;
    }
    if (!root_.empty()) RemoveCgroupTree();
  }

  void OpenDatapath() {
    DatapathOptions options;
    options.pin_path = pin_path_;
    options.cgroup_dir = root_;
    options.settings = settings_;
    auto dp = Datapath::Open(options);
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = std::move(dp).value();
  }

  // Moves any leftover process to our own cgroup, then removes the subtree deepest
  // first (a cgroup can only be removed once it has no children and no processes).
  void RemoveCgroupTree() {
    std::vector<std::string> dirs = {w1_cg() + "/sub", w1_cg(), other_cg(),
                                     root_ + "/workloads", daemon_cg(), root_};
    const std::string home = cg2_ + OwnCgroup2Path();
    for (const std::string& d : dirs) {
      std::ifstream procs(d + "/cgroup.procs");
      std::string pid;
      while (procs >> pid) WriteString(home + "/cgroup.procs", pid);
    }
    for (const std::string& d : dirs) {
      for (int attempt = 0; attempt < 50; ++attempt) {
        if (rmdir(d.c_str()) == 0 || errno == ENOENT) break;
        usleep(20 * 1000);  // a killed child may take a moment to leave its cgroup
      }
      struct stat st {};
      EXPECT_NE(stat(d.c_str(), &st), 0) << "cgroup left behind: " << d;
    }
  }

  void ProtectResources(std::vector<ResourceEntry> entries) {
    absl::Status st = dp_->SetResources(entries);
    ASSERT_TRUE(st.ok()) << st;
  }

  static ResourceEntry Resource(const char* ip, uint32_t prefix_bits, uint16_t port,
                                uint32_t id) {
    ResourceEntry e;
    e.addr = Mapped(ip);
    e.prefix_bits = prefix_bits;
    e.port = port;
    e.value.resource_id = id;
    return e;
  }

  void EnrollCgroup(const std::string& dir, uint32_t workload_id, uint32_t flags) {
    il_enrollment enr{};
    enr.workload_id = workload_id;
    enr.flags = flags;
    absl::Status st = dp_->Enroll(CgroupId(dir), enr);
    ASSERT_TRUE(st.ok()) << st;
  }

  std::vector<il_event> Drain() {
    std::vector<il_event> out;
    absl::Status st = dp_->DrainEvents([&](const il_event& e) { out.push_back(e); });
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  DatapathStats Stats() {
    auto s = dp_->ReadStats();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : DatapathStats{};
  }

  // The agent-side tuple of an accepted engine socket, as interlockd computes it.
  static il_tuple AgentTuple(int accepted) {
    sockaddr_storage local{}, peer{};
    socklen_t len = sizeof local;
    getsockname(accepted, reinterpret_cast<sockaddr*>(&local), &len);
    len = sizeof peer;
    getpeername(accepted, reinterpret_cast<sockaddr*>(&peer), &len);
    return AgentTupleFromAccepted(local, peer);
  }

  // Accepts on `listener` and looks the connection up the way interlockd would.
  absl::StatusOr<il_conn_info> AcceptAndLookup(int listener, UniqueFd* accepted) {
    *accepted = AcceptWithin(listener, kIoTimeoutMs);
    if (!accepted->valid()) return absl::DeadlineExceededError("no connection on the engine");
    return dp_->LookupConn(AgentTuple(accepted->get()));
  }

  // Runs a connecting agent in `cgroup` and checks it was redirected to `engine`, with
  // getpeername showing `want_peer`, and the conn info matching.
  void ExpectRedirected(const std::string& cgroup, int family, const char* dst_ip,
                        int engine, const std::string& want_peer, uint16_t want_family,
                        uint32_t want_workload, uint32_t want_resource) {
    Agent agent(cgroup, ConnectAndHold(family, Addr(dst_ip, resource_port_)));
    ConnectReport r;
    ASSERT_TRUE(agent.Read(&r)) << "agent did not report";
    ASSERT_EQ(r.err, 0) << "connect: " << strerror(r.err);
    EXPECT_EQ(Format(r.peer), want_peer) << "getpeername must show the original destination";

    UniqueFd accepted;
    auto info = AcceptAndLookup(engine, &accepted);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(FormatWords(info->orig_addr), FormatWords(reinterpret_cast<const uint32_t*>(
                                                Mapped(dst_ip).data())));
    EXPECT_EQ(info->orig_port, resource_port_);
    EXPECT_EQ(info->orig_family, want_family);
    EXPECT_EQ(info->resource_id, want_resource);
    EXPECT_EQ(info->workload_id, want_workload);
    EXPECT_EQ(info->cgroup_id, CgroupId(cgroup));
    EXPECT_EQ(info->pid_tgid >> 32, static_cast<uint64_t>(agent.pid()));
    EXPECT_EQ(static_cast<uint32_t>(info->uid_gid), getuid());
    EXPECT_STREQ(std::string(info->comm, strnlen(info->comm, IL_COMM_LEN)).c_str(),
                 std::string(kAgentComm).substr(0, IL_COMM_LEN - 1).c_str());
    EXPECT_NE(info->connect_ns, 0u);
    EXPECT_NE(info->cookie, 0u);
    EXPECT_EQ(agent.Finish(), 0);
  }

  std::string daemon_cg() const { return root_ + "/daemon"; }
  std::string w1_cg() const { return root_ + "/workloads/w1"; }
  std::string other_cg() const { return root_ + "/workloads/other"; }

  std::string cg2_;
  std::string root_;
  std::string pin_path_;
  UniqueFd engine4_;
  UniqueFd engine6_;
  uint16_t engine_port_ = 0;
  uint16_t resource_port_ = 0;
  il_settings settings_{};
  std::unique_ptr<Datapath> dp_;
};

// ---------------------------------------------------------------------------------

TEST_F(DatapathTest, RedirectsProtectedIpv4ToEngine) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  ExpectRedirected(w1_cg(), AF_INET, "127.0.0.42", engine4_.get(),
                   absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 7, 11);

  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, IL_EVENT_REDIRECTED);
  EXPECT_EQ(events[0].reason, IL_REASON_NONE);
  EXPECT_EQ(events[0].resource_id, 11u);
  EXPECT_EQ(events[0].dst_port, resource_port_);
  EXPECT_EQ(events[0].cgroup_id, CgroupId(w1_cg()));
  EXPECT_EQ(Stats().redirected, 1u);
}

TEST_F(DatapathTest, AnyPortResourceMatchesEveryPort) {
  ProtectResources({Resource("127.0.0.0", 104, 0, 12)});  // 127.0.0.0/8, any port
  EnrollCgroup(w1_cg(), 7, 0);
  ExpectRedirected(w1_cg(), AF_INET, "127.0.0.42", engine4_.get(),
                   absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 7, 12);
}

TEST_F(DatapathTest, RedirectsV4MappedDestinationOnInet6Socket) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  // Rewritten to ::ffff:127.0.0.1, which is IPv4 on the wire: the v4 engine accepts it.
  ExpectRedirected(w1_cg(), AF_INET6, "::ffff:127.0.0.42", engine4_.get(),
                   absl::StrCat("[::ffff:127.0.0.42]:", resource_port_), AF_INET6, 7, 11);
}

TEST_F(DatapathTest, RedirectsNativeIpv6ToV6Engine) {
  ProtectResources({Resource("::1", 128, resource_port_, 13)});
  EnrollCgroup(w1_cg(), 7, 0);
  ExpectRedirected(w1_cg(), AF_INET6, "::1", engine6_.get(),
                   absl::StrCat("[::1]:", resource_port_), AF_INET6, 7, 13);
}

TEST_F(DatapathTest, SubCgroupOfEnrolledCgroupIsRedirected) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  ExpectRedirected(w1_cg() + "/sub", AF_INET, "127.0.0.42", engine4_.get(),
                   absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 7, 11);
}

TEST_F(DatapathTest, NotEnrolledProcessReachesResourceDirectly) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, IL_ENROLL_DEFAULT_DENY);
  UniqueFd real = Listen(Addr("127.0.0.42", resource_port_));
  ASSERT_TRUE(real.valid()) << strerror(errno);

  // `other` is inside the attached subtree (the programs run) but not enrolled.
  Agent agent(other_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
  ConnectReport r;
  ASSERT_TRUE(agent.Read(&r));
  ASSERT_EQ(r.err, 0) << strerror(r.err);
  EXPECT_EQ(Format(r.peer), absl::StrCat("127.0.0.42:", resource_port_));
  UniqueFd direct = AcceptWithin(real.get(), kIoTimeoutMs);
  EXPECT_TRUE(direct.valid()) << "the real listener got no connection";
  EXPECT_FALSE(AcceptWithin(engine4_.get(), 0).valid()) << "engine got a connection";
  EXPECT_EQ(agent.Finish(), 0);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(Stats().redirected, 0u);
}

TEST_F(DatapathTest, DefaultDenyRefusesUnlistedDestination) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, IL_ENROLL_DEFAULT_DENY);
  Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.43", resource_port_)));
  ConnectReport r;
  ASSERT_TRUE(agent.Read(&r));
  EXPECT_EQ(r.err, EPERM) << strerror(r.err);
  EXPECT_EQ(agent.Finish(), 0);

  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, IL_EVENT_DENIED);
  EXPECT_EQ(events[0].reason, IL_REASON_DEFAULT_DENY);
  EXPECT_EQ(FormatWords(events[0].dst_addr), "::ffff:127.0.0.43");
  EXPECT_EQ(events[0].dst_port, resource_port_);
  EXPECT_EQ(events[0].family, AF_INET);
  EXPECT_EQ(events[0].workload_id, 7u);
  EXPECT_EQ(events[0].cgroup_id, CgroupId(w1_cg()));
  EXPECT_EQ(events[0].pid_tgid >> 32, static_cast<uint64_t>(r.pid));
  EXPECT_EQ(Stats().denied, 1u);
}

TEST_F(DatapathTest, EngineNotAcceptingRefusesProtectedConnect) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  il_settings draining = settings_;
  draining.flags &= ~IL_SETTINGS_ENGINE_ACCEPTING;
  ASSERT_TRUE(dp_->WriteSettings(draining).ok());

  Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
  ConnectReport r;
  ASSERT_TRUE(agent.Read(&r));
  EXPECT_EQ(r.err, EPERM) << strerror(r.err);
  EXPECT_EQ(agent.Finish(), 0);
  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, IL_EVENT_DENIED);
  EXPECT_EQ(events[0].reason, IL_REASON_ENGINE_DOWN);
  EXPECT_EQ(events[0].resource_id, 11u);
}

TEST_F(DatapathTest, ProtectedUdpIsRefused) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  Agent agent(w1_cg(), [this](int report_fd, int) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage dst = Addr("127.0.0.42", resource_port_);
    int err = connect(fd, reinterpret_cast<sockaddr*>(&dst), AddrLen(dst)) == 0 ? 0 : errno;
    (void)!write(report_fd, &err, sizeof err);
  });
  int err = -1;
  ASSERT_TRUE(agent.Read(&err));
  EXPECT_EQ(err, EPERM);
  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, IL_REASON_NOT_STREAM);
}

// An enrolled workload must not take the engine's port (it would receive other
// workloads' redirected connections while interlockd is down); others bind as usual.
TEST_F(DatapathTest, EnrolledTaskCannotBindTheEnginePort) {
  EnrollCgroup(w1_cg(), 7, 0);
  // Each address is free (the engine listens on 127.0.0.1 and ::1 only), so only the hook
  // can refuse: 0 = bound, else errno.
  auto try_bind = [this](const std::string& cgroup, const char* ip, uint16_t port) {
    Agent agent(cgroup, [ip, port](int report_fd, int) {
      sockaddr_storage a = Addr(ip, port);
      int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int err = bind(fd, reinterpret_cast<const sockaddr*>(&a), AddrLen(a)) == 0 ? 0 : errno;
      (void)!write(report_fd, &err, sizeof err);
    });
    int err = -1;
    EXPECT_TRUE(agent.Read(&err));
    EXPECT_EQ(agent.Finish(), 0);
    return err;
  };
  EXPECT_EQ(try_bind(w1_cg(), "127.0.0.77", engine_port_), EPERM);
  EXPECT_EQ(try_bind(w1_cg(), "0.0.0.0", engine_port_), EPERM);
  EXPECT_EQ(try_bind(w1_cg() + "/sub", "127.0.0.78", engine_port_), EPERM);
  EXPECT_EQ(try_bind(w1_cg(), "::", engine_port_), EPERM);
  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, IL_EVENT_DENIED);
  EXPECT_EQ(events[0].reason, IL_REASON_ENGINE_PORT);
  EXPECT_EQ(FormatWords(events[0].dst_addr), "::ffff:127.0.0.77");
  EXPECT_EQ(events[0].dst_port, engine_port_);
  EXPECT_EQ(events[0].workload_id, 7u);
  EXPECT_EQ(events[3].family, AF_INET6);
  EXPECT_EQ(Stats().denied, 4u);
  // Other ports, and tasks that are not enrolled, are untouched.
  EXPECT_EQ(try_bind(w1_cg(), "127.0.0.77", 0), 0);
  EXPECT_EQ(try_bind(other_cg(), "127.0.0.77", engine_port_), 0);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(DatapathTest, SetResourcesReplacesTheTable) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11),
                    Resource("127.0.0.44", 128, 0, 14)});
  ProtectResources({Resource("127.0.0.44", 128, 0, 14)});
  EnrollCgroup(w1_cg(), 7, 0);
  UniqueFd real = Listen(Addr("127.0.0.42", resource_port_));
  ASSERT_TRUE(real.valid());
  Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
  ConnectReport r;
  ASSERT_TRUE(agent.Read(&r));
  ASSERT_EQ(r.err, 0) << strerror(r.err);
  EXPECT_TRUE(AcceptWithin(real.get(), kIoTimeoutMs).valid()) << "stale resource still redirected";
  EXPECT_EQ(agent.Finish(), 0);
}

TEST_F(DatapathTest, ReopenReadoptsPinsAndKeepsEnforcing) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  const uint64_t w1 = CgroupId(w1_cg());
  dp_.reset();

  // No Datapath object alive: the pinned links and maps still redirect (fail closed).
  {
    Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
    ConnectReport r;
    ASSERT_TRUE(agent.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_TRUE(AcceptWithin(engine4_.get(), kIoTimeoutMs).valid());
    EXPECT_EQ(agent.Finish(), 0);
  }

  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  EXPECT_TRUE(dp_->readopted());
  auto enrollments = dp_->ListEnrollments();
  ASSERT_TRUE(enrollments.ok()) << enrollments.status();
  ASSERT_EQ(enrollments->size(), 1u);
  EXPECT_EQ((*enrollments)[0].first, w1);
  EXPECT_EQ((*enrollments)[0].second.workload_id, 7u);
  EXPECT_EQ(Stats().redirected, 1u) << "counters live in the re-adopted map";
  ExpectRedirected(w1_cg(), AF_INET, "127.0.0.42", engine4_.get(),
                   absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 7, 11);
  EXPECT_EQ(Stats().redirected, 2u);

  ASSERT_TRUE(dp_->Unenroll(w1).ok());
  EXPECT_EQ(dp_->Unenroll(w1).code(), absl::StatusCode::kNotFound);
}

TEST_F(DatapathTest, ReopenAtAnotherCgroupMovesTheAttachment) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  EnrollCgroup(other_cg(), 8, 0);
  dp_.reset();
  DatapathOptions options;
  options.pin_path = pin_path_;
  options.cgroup_dir = w1_cg();  // was root_
  options.settings = settings_;
  auto dp = Datapath::Open(options);
  ASSERT_TRUE(dp.ok()) << dp.status();
  dp_ = std::move(dp).value();
  EXPECT_TRUE(dp_->readopted());

  UniqueFd real = Listen(Addr("127.0.0.42", resource_port_));
  ASSERT_TRUE(real.valid());
  {  // `other` is enrolled but no longer below the attach point: untouched.
    Agent agent(other_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
    ConnectReport r;
    ASSERT_TRUE(agent.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_TRUE(AcceptWithin(real.get(), kIoTimeoutMs).valid()) << "old link still attached";
    EXPECT_EQ(agent.Finish(), 0);
  }
  {  // w1 is below the new attach point: redirected.
    Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
    ConnectReport r;
    ASSERT_TRUE(agent.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_TRUE(AcceptWithin(engine4_.get(), kIoTimeoutMs).valid()) << "new link not attached";
    EXPECT_EQ(agent.Finish(), 0);
  }
}

TEST_F(DatapathTest, TeardownDetachesEverything) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, IL_ENROLL_DEFAULT_DENY);
  dp_.reset();
  ASSERT_TRUE(Datapath::Teardown(pin_path_).ok());
  struct stat st {};
  EXPECT_NE(stat(pin_path_.c_str(), &st), 0) << "pin dir left behind";

  UniqueFd real = Listen(Addr("127.0.0.42", resource_port_));
  ASSERT_TRUE(real.valid());
  Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
  ConnectReport r;
  ASSERT_TRUE(agent.Read(&r));
  ASSERT_EQ(r.err, 0) << strerror(r.err);
  EXPECT_TRUE(AcceptWithin(real.get(), kIoTimeoutMs).valid());
  EXPECT_EQ(agent.Finish(), 0);
  EXPECT_TRUE(Datapath::Teardown(pin_path_).ok()) << "teardown of nothing is OK";
}

// ---------------------------------------------------------------------------------
// Relay: 16 MiB each way through the agent <-> engine pair, engine echoing.

struct EchoReport {
  int err = -1;          // 0 on success, else errno of the failing call
  int stage = 0;         // 1 socket, 2 connect, 3 write, 4 read
  uint64_t received = 0;
  int64_t mismatch_at = -1;
  uint64_t spurious_eagain = 0;  // see ReadPatiently()
};

constexpr uint64_t kEchoBytes = 16ull << 20;

// Agent body: connect, wait for the go signal (engine accepted), then write the pattern
// from one thread while reading the echo on another.
Agent::Body EchoAgent(const sockaddr_storage& dst) {
  return [dst](int report_fd, int hold_fd) {
    EchoReport r;
    int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      r.err = errno;
      r.stage = 1;
    } else if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), AddrLen(dst)) != 0) {
      r.err = errno;
      r.stage = 2;
    }
    if (r.stage != 0) {
      (void)!write(report_fd, &r, sizeof r);
      return;
    }
    SetIoTimeouts(fd);
    char go;
    if (read(hold_fd, &go, 1) != 1) _exit(4);

    std::atomic<int> write_err{0};
    std::thread writer([&] {
      std::vector<uint8_t> buf(256 * 1024);
      uint64_t off = 0;
      size_t step = 1;
      while (off < kEchoBytes) {
        // Vary the write size (1 B .. 256 KiB) to exercise message boundaries.
        size_t n = std::min<uint64_t>({step, buf.size(), kEchoBytes - off});
        step = step * 3 + 7;
        if (step > buf.size()) step = 1 + step % 4093;
        for (size_t i = 0; i < n; ++i) buf[i] = PatternByte(off + i);
        if (!WriteAll(fd, buf.data(), n)) {
          write_err = errno ? errno : EIO;
          break;
        }
        off += n;
      }
      shutdown(fd, SHUT_WR);
    });
    std::vector<uint8_t> buf(64 * 1024);
    for (;;) {
      ssize_t n = ReadPatiently(fd, buf.data(), buf.size(), &r.spurious_eagain);
      if (n == 0) break;
      if (n < 0) {
        r.err = errno;
        r.stage = 4;
        break;
      }
      for (ssize_t i = 0; i < n && r.mismatch_at < 0; ++i) {
        if (buf[i] != PatternByte(r.received + i)) r.mismatch_at = r.received + i;
      }
      r.received += n;
    }
    writer.join();
    if (r.stage == 0 && write_err != 0) {
      r.err = write_err;
      r.stage = 3;
    }
    if (r.stage == 0) r.err = 0;
    (void)!write(report_fd, &r, sizeof r);
    (void)!read(hold_fd, &go, 1);
  };
}

class DatapathRelayTest : public DatapathTest, public ::testing::WithParamInterface<bool> {};

TEST_P(DatapathRelayTest, Echoes16MiBEachWayByteExact) {
  const bool sockmap = GetParam();
  if (sockmap) {
    settings_.flags |= IL_SETTINGS_SOCKMAP;
    ASSERT_TRUE(dp_->WriteSettings(settings_).ok());
  }
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  const DatapathStats before = Stats();

  Agent agent(w1_cg(), EchoAgent(Addr("127.0.0.42", resource_port_)));
  UniqueFd conn;
  auto info = AcceptAndLookup(engine4_.get(), &conn);
  ASSERT_TRUE(info.ok()) << info.status();
  agent.Signal();  // the engine socket is established (and paired): start sending

  // Echo until the agent's FIN; check the relay path once bytes are flowing.
  std::vector<uint8_t> buf(128 * 1024);
  uint64_t echoed = 0;
  uint32_t relay_path = 0;
  uint64_t engine_spurious = 0;
  for (;;) {
    ssize_t n = ReadPatiently(conn.get(), buf.data(), buf.size(), &engine_spurious);
    if (n == 0) break;
    ASSERT_GT(n, 0) << "engine read: " << strerror(errno);
    ASSERT_TRUE(WriteAll(conn.get(), buf.data(), static_cast<size_t>(n)))
        << "engine write: " << strerror(errno);
    if (echoed == 0) {
      // Both sockets are open now; once the whole exchange is over the agent socket
      // reaches TCP_CLOSE and its entry is gone.
      auto mid = dp_->LookupConn(AgentTuple(conn.get()));
      ASSERT_TRUE(mid.ok()) << mid.status();
      relay_path = mid->relay_path;
    }
    echoed += static_cast<uint64_t>(n);
  }
  shutdown(conn.get(), SHUT_WR);
  EXPECT_EQ(echoed, kEchoBytes);
  EXPECT_EQ(relay_path, sockmap ? IL_PATH_SPLICE : IL_PATH_TCP);

  EchoReport r;
  ASSERT_TRUE(agent.Read(&r)) << "agent did not report";
  EXPECT_EQ(r.err, 0) << "agent stage " << r.stage << ": " << strerror(r.err);
  EXPECT_EQ(r.received, kEchoBytes);
  EXPECT_EQ(r.mismatch_at, -1) << "byte mismatch at offset " << r.mismatch_at;
  EXPECT_EQ(agent.Finish(), 0);
  if (r.spurious_eagain + engine_spurious > 0) {
    std::cerr << "note: spurious EAGAIN on blocking read(): agent " << r.spurious_eagain
              << ", engine " << engine_spurious << "\n";
  }

  const DatapathStats after = Stats();
  if (sockmap) {
    EXPECT_GT(after.spliced_msgs, before.spliced_msgs);
  } else {
    EXPECT_EQ(after.spliced_msgs, before.spliced_msgs);
  }
}

INSTANTIATE_TEST_SUITE_P(SockmapOnOff, DatapathRelayTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Sockmap" : "PlainTcp";
                         });

}  // namespace
}  // namespace interlock::bpf
