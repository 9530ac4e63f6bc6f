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
#include <bpf/bpf.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
#include <optional>
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

// `body`, run as uid/gid (real, effective and saved) in the child.
Agent::Body As(uid_t uid, gid_t gid, Agent::Body body) {
  return [uid, gid, body](int report_fd, int hold_fd) {
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(4);
    }
    body(report_fd, hold_fd);
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
    MarkEngine();
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
  // What interlockd does with its listeners: mark them as the engine's.
  void MarkEngine() {
    for (int fd : {engine4_.get(), engine6_.get()}) {
      absl::Status st = dp_->MarkEngineListener(fd);
      ASSERT_TRUE(st.ok()) << st;
    }
  }

  void RemoveCgroupTree() {
    std::vector<std::string> dirs = {byp_cg() + "/sub", byp_cg() + "/x.slice/agent-x.service",
                                     byp_cg() + "/x.slice/agent-y.service",
                                     byp_cg() + "/x.slice/docker-3f2a9c.scope",
                                     byp_cg() + "/x.slice/docker-3f2a9c.service",
                                     byp_cg() + "/x.slice/podman-3f2a9c.scope",
                                     byp_cg() + "/x.slice/docker.scope", byp_cg() + "/x.slice",
                                     byp_cg(), w1_cg() + "/sub", w1_cg(), other_cg(),
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
    il_tuple t{};
    auto mapped = [](const sockaddr_storage& ss, uint32_t out[4], uint32_t* port) {
      if (ss.ss_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
        out[2] = htonl(0x0000ffff);
        out[3] = sin->sin_addr.s_addr;
        *port = ntohs(sin->sin_port);
      } else {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        memcpy(out, &sin6->sin6_addr, 16);
        *port = ntohs(sin6->sin6_port);
      }
    };
    mapped(peer, t.local_ip, &t.local_port);
    mapped(local, t.remote_ip, &t.remote_port);
    // Both ends are in one network namespace: the engine socket's is the agent's.
    socklen_t cookie_len = sizeof t.netns_cookie;
    getsockopt(accepted, SOL_SOCKET, SO_NETNS_COOKIE, &t.netns_cookie, &cookie_len);
    return t;
  }

  // The kernel's rendezvous record for an agent tuple, read from the pinned map (what
  // sk_msg decides the relay path on; interlockd itself never reads it).
  absl::StatusOr<il_conn_info> LookupRendezvous(const il_tuple& agent) {
    UniqueFd map(bpf_obj_get(absl::StrCat(pin_path_, "/maps/conn_by_tuple").c_str()));
    if (!map) return absl::NotFoundError("no pinned conn_by_tuple");
    il_conn_info info{};
    if (bpf_map_lookup_elem(map.get(), &agent, &info) != 0) {
      return absl::NotFoundError(absl::StrCat("no rendezvous record: ", strerror(errno)));
    }
    return info;
  }

  // Accepts on `listener` and looks the connection up the way interlockd would.
  absl::StatusOr<il_conn_info> AcceptAndLookup(int listener, UniqueFd* accepted) {
    *accepted = AcceptWithin(listener, kIoTimeoutMs);
    if (!accepted->valid()) return absl::DeadlineExceededError("no connection on the engine");
    return dp_->LookupConn(accepted->get());
  }

  // Runs a connecting agent in `cgroup` and checks it was redirected to `engine`, with
  // getpeername showing `want_peer`, and the conn info matching.
  // With `as`, the agent runs as that uid and gid.
  void ExpectRedirected(const std::string& cgroup, int family, const char* dst_ip,
                        int engine, const std::string& want_peer, uint16_t want_family,
                        uint32_t want_workload, uint32_t want_resource,
                        std::optional<std::pair<uid_t, gid_t>> as = std::nullopt) {
    Agent::Body body = ConnectAndHold(family, Addr(dst_ip, resource_port_));
    if (as) body = As(as->first, as->second, body);
    Agent agent(cgroup, body);
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
    EXPECT_EQ(static_cast<uint32_t>(info->uid_gid), as ? as->first : getuid());
    EXPECT_STREQ(std::string(info->comm, strnlen(info->comm, IL_COMM_LEN)).c_str(),
                 std::string(kAgentComm).substr(0, IL_COMM_LEN - 1).c_str());
    EXPECT_NE(info->connect_ns, 0u);
    EXPECT_NE(info->cookie, 0u);
    EXPECT_EQ(agent.Finish(), 0);
  }

  std::string daemon_cg() const { return root_ + "/daemon"; }
  std::string w1_cg() const { return root_ + "/workloads/w1"; }
  std::string other_cg() const { return root_ + "/workloads/other"; }
  // Created by tests that enroll by path (not in SetUp).
  std::string byp_cg() const { return root_ + "/workloads/bypath"; }

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

// ---------------------------------------------------------------------------------
// Routes around the hook (issue: no way past the kernel hook). Each test is the attack.

// connect() to 0.0.0.0 / :: reaches the socket's bound address, or loopback: it must be
// judged as that address. Without the resolution, the protected 127.0.0.50 would be
// reached directly (the kernel substitutes the address after the hook ran).
TEST_F(DatapathTest, UnspecifiedDestinationIsJudgedAsTheAddressItReaches) {
  ProtectResources({Resource("127.0.0.50", 128, resource_port_, 11),
                    Resource("127.0.0.1", 128, resource_port_, 12),
                    Resource("::1", 128, resource_port_, 13)});
  EnrollCgroup(w1_cg(), 7, 0);
  UniqueFd direct50 = Listen(Addr("127.0.0.50", resource_port_));
  UniqueFd direct1 = Listen(Addr("127.0.0.1", resource_port_));
  UniqueFd direct6 = Listen(Addr("::1", resource_port_));
  ASSERT_TRUE(direct50.valid() && direct1.valid() && direct6.valid());

  struct Case {
    int family;
    const char* bind_ip;  // nullptr: unbound
    const char* dst_ip;
    int engine;
    std::string want_peer;
    const char* want_orig;
    uint32_t want_resource;
  };
  const std::string port = absl::StrCat(resource_port_);
  const std::vector<Case> cases = {
      {AF_INET, "127.0.0.50", "0.0.0.0", engine4_.get(), "127.0.0.50:" + port, "127.0.0.50", 11},
      {AF_INET, nullptr, "0.0.0.0", engine4_.get(), "127.0.0.1:" + port, "127.0.0.1", 12},
      {AF_INET6, "::ffff:127.0.0.50", "::ffff:0.0.0.0", engine4_.get(),
       "[::ffff:127.0.0.50]:" + port, "::ffff:127.0.0.50", 11},
      {AF_INET6, nullptr, "::ffff:0.0.0.0", engine4_.get(), "[::ffff:127.0.0.1]:" + port,
       "::ffff:127.0.0.1", 12},
      {AF_INET6, nullptr, "::", engine6_.get(), "[::1]:" + port, "::1", 13},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.bind_ip ? c.bind_ip : "unbound", " -> ", c.dst_ip));
    Agent agent(w1_cg(), [c, this](int report_fd, int hold_fd) {
      ConnectReport r;
      r.pid = getpid();
      int fd = socket(c.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int err = 0;
      if (c.bind_ip != nullptr) {
        sockaddr_storage b = Addr(c.bind_ip, 0);
        if (bind(fd, reinterpret_cast<sockaddr*>(&b), AddrLen(b)) != 0) err = errno;
      }
      sockaddr_storage dst = Addr(c.dst_ip, resource_port_);
      if (err == 0) {
        err = connect(fd, reinterpret_cast<sockaddr*>(&dst), AddrLen(dst)) == 0 ? 0 : errno;
      }
      r.err = err;
      socklen_t len = sizeof r.peer;
      getpeername(fd, reinterpret_cast<sockaddr*>(&r.peer), &len);
      (void)!write(report_fd, &r, sizeof r);
      char b;
      (void)!read(hold_fd, &b, 1);
    });
    ConnectReport r;
    ASSERT_TRUE(agent.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_EQ(Format(r.peer), c.want_peer);
    UniqueFd accepted;
    auto info = AcceptAndLookup(c.engine, &accepted);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(FormatWords(info->orig_addr),
              FormatWords(reinterpret_cast<const uint32_t*>(Mapped(c.want_orig).data())));
    EXPECT_EQ(info->resource_id, c.want_resource);
    EXPECT_EQ(agent.Finish(), 0);
  }
  for (int fd : {direct50.get(), direct1.get(), direct6.get()}) {
    EXPECT_FALSE(AcceptWithin(fd, 50).valid()) << "a protected resource was reached directly";
  }
}

// The record of a redirected connection belongs to that connection's sockets only. An
// agent that resets before interlockd accepts leaves nothing that another socket (a
// process outside the enrollment, reusing the agent's source port) could claim.
TEST_F(DatapathTest, RecordCannotBeClaimedBySocketReusingTheTuple) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  // The agent's port is an ephemeral one: another process on the host may take it between
  // the agent's reset and the squatter's bind (EADDRINUSE; seen under a parallel build).
  // Then the scenario is played again with a new agent connection; what is checked is the
  // same.
  ConnectReport r;
  UniqueFd squat;
  for (int attempt = 0;; ++attempt) {
    Agent agent(w1_cg(), [this](int report_fd, int) {
      ConnectReport r;
      r.pid = getpid();
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_storage dst = Addr("127.0.0.42", resource_port_);
      r.err = connect(fd, reinterpret_cast<sockaddr*>(&dst), AddrLen(dst)) == 0 ? 0 : errno;
      socklen_t len = sizeof r.local;
      getsockname(fd, reinterpret_cast<sockaddr*>(&r.local), &len);
      linger lg{1, 0};  // close() sends RST: no TIME_WAIT holds the tuple
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close(fd);
      (void)!write(report_fd, &r, sizeof r);
    });
    ASSERT_TRUE(agent.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_EQ(agent.Finish(), 0);

    // interlockd accepts late: the reset connection still carries its identity.
    UniqueFd late;
    auto info = AcceptAndLookup(engine4_.get(), &late);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->workload_id, 7u);
    late.Reset();

    // A socket outside the enrollment takes the agent's source address and port and dials
    // the engine directly: the same tuple, but not the same connection.
    squat = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(squat.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(squat.get(), reinterpret_cast<sockaddr*>(&r.local), AddrLen(r.local)) == 0) break;
    ASSERT_EQ(errno, EADDRINUSE) << strerror(errno);
    ASSERT_LT(attempt, 4) << "the agent's port was taken by another socket five times in a row";
  }
  sockaddr_storage engine = Addr("127.0.0.1", engine_port_);
  ASSERT_EQ(connect(squat.get(), reinterpret_cast<sockaddr*>(&engine), AddrLen(engine)), 0)
      << strerror(errno);
  UniqueFd accepted;
  auto stolen = AcceptAndLookup(engine4_.get(), &accepted);
  EXPECT_EQ(AgentTuple(accepted.get()).local_port, ntohs(reinterpret_cast<sockaddr_in*>(&r.local)->sin_port));
  EXPECT_TRUE(absl::IsNotFound(stolen.status())) << "a reused tuple inherited the identity";
  // Nor is anything left in the rendezvous map for it.
  EXPECT_TRUE(absl::IsNotFound(LookupRendezvous(AgentTuple(accepted.get())).status()));
}

// interlockd was killed; another process listens on the engine's address and port. An
// enrolled agent's connect to a protected resource must be refused, and the squatter must
// receive nothing. With nothing listening the connect is refused the same way.
TEST_F(DatapathTest, OnlyInterlockdsListenerReceivesRedirects) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  engine4_.Reset();  // the crash: interlockd's sockets are gone, the flags stay set
  engine6_.Reset();

  auto connect_once = [this] {
    Agent agent(w1_cg(), ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_)));
    ConnectReport r;
    EXPECT_TRUE(agent.Read(&r));
    EXPECT_EQ(agent.Finish(), 0);
    return r.err;
  };
  EXPECT_EQ(connect_once(), EPERM);
  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, IL_REASON_ENGINE_DOWN);

  UniqueFd squatter = Listen(Addr("127.0.0.1", engine_port_));
  ASSERT_TRUE(squatter.valid()) << strerror(errno);
  EXPECT_EQ(connect_once(), EPERM);
  events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, IL_REASON_ENGINE_UNVERIFIED);
  EXPECT_EQ(events[0].resource_id, 11u);
  EXPECT_FALSE(AcceptWithin(squatter.get(), 100).valid()) << "the squatter received a connection";

  // Marked (what interlockd does on start), the same listener is the engine again.
  ASSERT_TRUE(dp_->MarkEngineListener(squatter.get()).ok());
  EXPECT_EQ(connect_once(), 0);
}

// Enrollment by path: a cgroup removed and created again at an enrolled path is enrolled
// by the kernel before it is visible, so the process placed in it is enforced from its
// first connect, whatever interlockd is doing.
TEST_F(DatapathTest, CgroupCreatedAtEnrolledPathIsEnrolledBeforeUse) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  const std::string rel = byp_cg().substr(cg2_.size());
  ASSERT_TRUE(dp_->SetEnrolledPaths({{rel, il_enrollment{9, 0}}}).ok());
  auto enrolled = [this](uint64_t id) {
    auto all = dp_->ListEnrollments();
    EXPECT_TRUE(all.ok()) << all.status();
    for (const auto& [cg, e] : *all) {
      if (cg == id) return static_cast<int64_t>(e.workload_id);
    }
    return int64_t{-1};
  };
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_EQ(mkdir(byp_cg().c_str(), 0755), 0) << strerror(errno);
    const uint64_t id = CgroupId(byp_cg());
    EXPECT_EQ(enrolled(id), 9);
    ExpectRedirected(byp_cg(), AF_INET, "127.0.0.42", engine4_.get(),
                     absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 9, 11);
    // A child cgroup made later is governed through its enrolled parent.
    ASSERT_EQ(mkdir((byp_cg() + "/sub").c_str(), 0755), 0);
    EXPECT_EQ(enrolled(CgroupId(byp_cg() + "/sub")), -1);
    ExpectRedirected(byp_cg() + "/sub", AF_INET, "127.0.0.42", engine4_.get(),
                     absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 9, 11);
    ASSERT_EQ(rmdir((byp_cg() + "/sub").c_str()), 0);
    ASSERT_EQ(rmdir(byp_cg().c_str()), 0) << strerror(errno);
    EXPECT_EQ(enrolled(id), -1) << "a removed cgroup's id stays enrolled";
  }
  EXPECT_EQ(Stats().enrolled_by_path, 2u);
  // Paths not in the table are not enrolled.
  ASSERT_EQ(mkdir((root_ + "/workloads/bypath2").c_str(), 0755), 0);
  EXPECT_EQ(enrolled(CgroupId(root_ + "/workloads/bypath2")), -1);
  ASSERT_EQ(rmdir((root_ + "/workloads/bypath2").c_str()), 0);
}

// Users and groups are enrolled wherever their tasks run, unless a cgroup enrollment
// governs the task (it wins: its workload is the more specific one). The ids are the
// task's real uid and primary gid.
TEST_F(DatapathTest, UserAndGroupEnrollmentsGovernTasksInAnyCgroup) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  ASSERT_TRUE(dp_->SetEnrolledIds({{bpf::IdEnrollment::kUid, 61001, il_enrollment{21, 0}},
                                   {bpf::IdEnrollment::kGid, 61002, il_enrollment{22, 0}}})
                  .ok());
  const std::string peer = absl::StrCat("127.0.0.42:", resource_port_);
  ExpectRedirected(other_cg(), AF_INET, "127.0.0.42", engine4_.get(), peer, AF_INET, 21, 11,
                   std::pair{61001u, 61009u});
  ExpectRedirected(other_cg(), AF_INET, "127.0.0.42", engine4_.get(), peer, AF_INET, 22, 11,
                   std::pair{61003u, 61002u});
  ExpectRedirected(w1_cg(), AF_INET, "127.0.0.42", engine4_.get(), peer, AF_INET, 7, 11,
                   std::pair{61001u, 61002u});

  UniqueFd real = Listen(Addr("127.0.0.42", resource_port_));
  ASSERT_TRUE(real.valid()) << strerror(errno);
  Agent other(other_cg(), As(61003, 61003, ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_))));
  ConnectReport r;
  ASSERT_TRUE(other.Read(&r));
  ASSERT_EQ(r.err, 0) << strerror(r.err);
  EXPECT_TRUE(AcceptWithin(real.get(), kIoTimeoutMs).valid()) << "an unenrolled uid was not direct";
  EXPECT_FALSE(AcceptWithin(engine4_.get(), 0).valid());
  EXPECT_EQ(other.Finish(), 0);

  // Replacing the table drops what is not in it.
  ASSERT_TRUE(dp_->SetEnrolledIds({}).ok());
  Agent gone(other_cg(), As(61001, 61009, ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_))));
  ASSERT_TRUE(gone.Read(&r));
  ASSERT_EQ(r.err, 0) << strerror(r.err);
  EXPECT_TRUE(AcceptWithin(real.get(), kIoTimeoutMs).valid());
  EXPECT_EQ(gone.Finish(), 0);
}

// interlockd's own cgroup is never governed: not by an enrolled uid, not even when the
// cgroup itself is in the enrolled table.
TEST_F(DatapathTest, ExemptCgroupIsNeverGoverned) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  ASSERT_TRUE(dp_->SetEnrolledIds({{bpf::IdEnrollment::kUid, 61001, il_enrollment{21, 0}}}).ok());
  EnrollCgroup(other_cg(), 8, IL_ENROLL_DEFAULT_DENY);
  ASSERT_TRUE(dp_->SetExemptCgroups({CgroupId(other_cg())}).ok());
  UniqueFd real = Listen(Addr("127.0.0.42", resource_port_));
  ASSERT_TRUE(real.valid()) << strerror(errno);
  Agent agent(other_cg(), As(61001, 61001, ConnectAndHold(AF_INET, Addr("127.0.0.42", resource_port_))));
  ConnectReport r;
  ASSERT_TRUE(agent.Read(&r));
  ASSERT_EQ(r.err, 0) << strerror(r.err);
  EXPECT_TRUE(AcceptWithin(real.get(), kIoTimeoutMs).valid());
  EXPECT_FALSE(AcceptWithin(engine4_.get(), 0).valid());
  EXPECT_EQ(agent.Finish(), 0);
  EXPECT_FALSE(dp_->SetExemptCgroups(std::vector<uint64_t>(IL_MAX_EXEMPT + 1, 1)).ok());
  ASSERT_TRUE(dp_->SetExemptCgroups({}).ok());
}

// A cgroup named like an enrolled unit or slice is enrolled by the kernel when it is made,
// wherever it is and however deep; another name is not.
TEST_F(DatapathTest, CgroupNamedLikeAnEnrolledUnitIsEnrolledWhereverItIsMade) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  ASSERT_TRUE(dp_->SetEnrolledNames({{"agent-x.service", il_enrollment{31, 0}}}).ok());
  EXPECT_FALSE(dp_->SetEnrolledNames({{"a/b.service", il_enrollment{}}}).ok());
  EXPECT_FALSE(dp_->SetEnrolledNames({{std::string(IL_CGROUP_PATH_MAX, 'a'), il_enrollment{}}}).ok());
  const std::string deep = byp_cg() + "/x.slice";
  const std::string unit = deep + "/agent-x.service";
  const std::string other = deep + "/agent-y.service";
  ASSERT_EQ(mkdir(byp_cg().c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(mkdir(deep.c_str(), 0755), 0) << strerror(errno);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_EQ(mkdir(unit.c_str(), 0755), 0) << strerror(errno);
    ExpectRedirected(unit, AF_INET, "127.0.0.42", engine4_.get(),
                     absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 31, 11);
    ASSERT_EQ(rmdir(unit.c_str()), 0) << strerror(errno);
  }
  EXPECT_EQ(Stats().enrolled_by_name, 2u);
  ASSERT_EQ(mkdir(other.c_str(), 0755), 0) << strerror(errno);
  auto all = dp_->ListEnrollments();
  ASSERT_TRUE(all.ok());
  for (const auto& [cg, e] : *all) EXPECT_NE(cg, CgroupId(other)) << "another name was enrolled";
  ASSERT_EQ(rmdir(other.c_str()), 0);
  ASSERT_EQ(rmdir(deep.c_str()), 0);
  ASSERT_EQ(rmdir(byp_cg().c_str()), 0);
}

// A container runtime's scopes are enrolled by pattern ("docker-*.scope") when made,
// wherever they are; names that differ in the prefix or the suffix are not.
TEST_F(DatapathTest, CgroupMatchingAnEnrolledNamePatternIsEnrolledWhenMade) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  ASSERT_TRUE(dp_->SetEnrolledNamePatterns({{"docker-", ".scope", il_enrollment{41, 0}}}).ok());
  EXPECT_FALSE(dp_->SetEnrolledNamePatterns({{std::string(IL_NAME_PATTERN_PART, 'a'), "", {}}}).ok());
  EXPECT_FALSE(dp_->SetEnrolledNamePatterns(std::vector<NamePatternEnrollment>(IL_MAX_NAME_PATTERNS + 1)).ok());
  const std::string deep = byp_cg() + "/x.slice";
  ASSERT_EQ(mkdir(byp_cg().c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(mkdir(deep.c_str(), 0755), 0) << strerror(errno);
  const std::string container = deep + "/docker-3f2a9c.scope";
  ASSERT_EQ(mkdir(container.c_str(), 0755), 0) << strerror(errno);
  ExpectRedirected(container, AF_INET, "127.0.0.42", engine4_.get(),
                   absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 41, 11);
  ASSERT_EQ(rmdir(container.c_str()), 0);
  EXPECT_EQ(Stats().enrolled_by_name, 1u);
  for (const char* other : {"/docker-3f2a9c.service", "/podman-3f2a9c.scope", "/docker.scope"}) {
    const std::string dir = deep + other;
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);
    auto all = dp_->ListEnrollments();
    ASSERT_TRUE(all.ok());
    for (const auto& [cg, e] : *all) EXPECT_NE(cg, CgroupId(dir)) << other << " was enrolled";
    ASSERT_EQ(rmdir(dir.c_str()), 0);
  }
  ASSERT_TRUE(dp_->SetEnrolledNamePatterns({}).ok());
  ASSERT_EQ(mkdir(container.c_str(), 0755), 0);
  auto all = dp_->ListEnrollments();
  ASSERT_TRUE(all.ok());
  for (const auto& [cg, e] : *all) EXPECT_NE(cg, CgroupId(container)) << "a cleared pattern still enrolls";
  ASSERT_EQ(rmdir(container.c_str()), 0);
  ASSERT_EQ(rmdir(deep.c_str()), 0);
  ASSERT_EQ(rmdir(byp_cg().c_str()), 0);
}

// Datagrams with an explicit destination (sendto, unconnected UDP) follow the connect
// rules: a protected resource is refused, a default-deny enrollment reaches only its
// allowed destinations (the DNS resolvers by default).
TEST_F(DatapathTest, UnconnectedDatagramsFollowTheConnectRules) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  ASSERT_TRUE(dp_->SetAllowedDestinations({Resource("127.0.0.53", 128, 53, 0)}).ok());
  EnrollCgroup(w1_cg(), 7, IL_ENROLL_DEFAULT_DENY);
  EnrollCgroup(other_cg(), 8, 0);
  auto send_to = [this](const std::string& cgroup, int family, const char* ip, uint16_t port,
                        bool connect_first) {
    Agent agent(cgroup, [family, ip, port, connect_first](int report_fd, int) {
      int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_storage dst = Addr(ip, port);
      int err = 0;
      if (connect_first) {
        err = connect(fd, reinterpret_cast<sockaddr*>(&dst), AddrLen(dst)) == 0 ? 0 : errno;
        if (err == 0) err = send(fd, "x", 1, 0) == 1 ? 0 : errno;
      } else {
        err = sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&dst), AddrLen(dst)) == 1 ? 0 : errno;
      }
      (void)!write(report_fd, &err, sizeof err);
    });
    int err = -1;
    EXPECT_TRUE(agent.Read(&err));
    EXPECT_EQ(agent.Finish(), 0);
    return err;
  };
  EXPECT_EQ(send_to(w1_cg(), AF_INET, "127.0.0.60", 9999, false), EPERM);
  EXPECT_EQ(send_to(w1_cg(), AF_INET6, "::ffff:127.0.0.60", 9999, false), EPERM);
  EXPECT_EQ(send_to(w1_cg(), AF_INET6, "::1", 9999, false), EPERM);
  EXPECT_EQ(send_to(w1_cg(), AF_INET, "127.0.0.42", resource_port_, false), EPERM);
  EXPECT_EQ(send_to(other_cg(), AF_INET, "127.0.0.42", resource_port_, false), EPERM);
  std::vector<il_event> events = Drain();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].reason, IL_REASON_DEFAULT_DENY);
  EXPECT_EQ(events[0].sock_type, static_cast<uint32_t>(SOCK_DGRAM));
  EXPECT_EQ(events[3].reason, IL_REASON_NOT_STREAM);
  EXPECT_EQ(events[4].reason, IL_REASON_NOT_STREAM);
  // Allowed: the resolver, by datagram or connected; anything for a non-default-deny
  // enrollment that is not a protected resource.
  EXPECT_EQ(send_to(w1_cg(), AF_INET, "127.0.0.53", 53, false), 0);
  EXPECT_EQ(send_to(w1_cg(), AF_INET6, "::ffff:127.0.0.53", 53, false), 0);
  EXPECT_EQ(send_to(w1_cg(), AF_INET, "127.0.0.53", 53, true), 0);
  EXPECT_EQ(send_to(w1_cg(), AF_INET, "127.0.0.53", 54, false), EPERM);
  EXPECT_EQ(send_to(other_cg(), AF_INET, "127.0.0.60", 9999, false), 0);
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

// What an agent saw connecting (or sending) to a unix path.
struct UnixReport {
  int err = -1;                      // 0 on success, else errno
  char peer[IL_UNIX_PATH_MAX + 1]{};  // getpeername() path after a connect
};

sockaddr_un UnixAddr(const std::string& path, socklen_t* len) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  memcpy(un.sun_path, path.data(), std::min(path.size(), sizeof un.sun_path - 1));
  // An abstract name ("\0name") has no terminating NUL; a path has one.
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                (path[0] == '\0' ? 0 : 1));
  return un;
}

// Agent body: a `type` unix socket connects to (or, with `send`, sends one datagram to)
// `path`, reports, and waits for release.
Agent::Body UnixAndHold(int type, const std::string& path, bool send) {
  return [type, path, send](int report_fd, int hold_fd) {
    UnixReport r;
    socklen_t len = 0;
    sockaddr_un un = UnixAddr(path, &len);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    int rc = send ? static_cast<int>(sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&un), len))
                  : connect(fd, reinterpret_cast<sockaddr*>(&un), len);
    r.err = rc < 0 ? errno : 0;
    if (rc >= 0 && !send) {
      sockaddr_un peer{};
      socklen_t plen = sizeof peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
        memcpy(r.peer, peer.sun_path, sizeof peer.sun_path);
      }
    }
    (void)!write(report_fd, &r, sizeof r);
    char b;
    (void)!read(hold_fd, &b, 1);
  };
}

// A protected unix path: an enrolled connect is rewritten to interlockd's listener for it
// and getpeername() shows the path asked for; a process outside every enrollment reaches
// the real socket; datagrams to the path are refused; a default-deny enrollment is
// refused unlisted paths and abstract names.
TEST_F(DatapathTest, UnixPathIsRedirectedToItsListener) {
  ASSERT_TRUE(dp_->unix_hooks()) << "this kernel lacks cgroup/connect_unix (Linux >= 6.7)";
  char tmpl[] = "/tmp/il-bpf-unix-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string real = dir + "/real.sock", engine = dir + "/engine.sock";
  auto listen_at = [](const std::string& path) {
    socklen_t len = 0;
    sockaddr_un un = UnixAddr(path, &len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&un), len) != 0 || listen(fd, 16) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  };
  UniqueFd real_listener(listen_at(real));
  ASSERT_TRUE(real_listener.valid()) << strerror(errno);
  // interlockd's listener lives in interlockd's cgroup, as in production.
  std::vector<UniqueFd> made =
      CreateSocketsIn(daemon_cg(), [&] { return std::vector<int>{listen_at(engine)}; });
  ASSERT_EQ(made.size(), 1u);
  ASSERT_TRUE(made[0].valid());
  absl::Status st = dp_->SetUnixResources({{real, engine, 21}});
  ASSERT_TRUE(st.ok()) << st;
  EnrollCgroup(w1_cg(), 7, 0);

  {
    Agent agent(w1_cg(), UnixAndHold(SOCK_STREAM, real, false));
    UnixReport r;
    ASSERT_TRUE(agent.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_STREQ(r.peer, real.c_str()) << "getpeername must show the path asked for";
    EXPECT_TRUE(AcceptWithin(made[0].get(), kIoTimeoutMs).valid()) << "the listener got nothing";
    EXPECT_FALSE(AcceptWithin(real_listener.get(), 0).valid()) << "the real socket was reached";
    EXPECT_EQ(agent.Finish(), 0);
  }
  {
    Agent outsider(other_cg(), UnixAndHold(SOCK_STREAM, real, false));
    UnixReport r;
    ASSERT_TRUE(outsider.Read(&r));
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_STREQ(r.peer, real.c_str());
    EXPECT_TRUE(AcceptWithin(real_listener.get(), kIoTimeoutMs).valid());
    EXPECT_EQ(outsider.Finish(), 0);
  }
  for (bool send : {false, true}) {
    Agent agent(w1_cg(), UnixAndHold(SOCK_DGRAM, real, send));
    UnixReport r;
    ASSERT_TRUE(agent.Read(&r));
    EXPECT_EQ(r.err, EPERM) << (send ? "sendto: " : "connect: ") << strerror(r.err);
    EXPECT_EQ(agent.Finish(), 0);
  }
  EnrollCgroup(other_cg(), 8, IL_ENROLL_DEFAULT_DENY);
  for (const std::string& path : {dir + "/unlisted.sock", std::string("\0il-bpf-abstract", 16)}) {
    Agent agent(other_cg(), UnixAndHold(SOCK_STREAM, path, false));
    UnixReport r;
    ASSERT_TRUE(agent.Read(&r));
    EXPECT_EQ(r.err, EPERM) << strerror(r.err);
    EXPECT_EQ(agent.Finish(), 0);
  }
  std::vector<il_event> events = Drain();
  int redirected = 0, not_stream = 0, default_deny = 0;
  for (const il_event& e : events) {
    EXPECT_EQ(e.family, AF_UNIX);
    if (e.kind == IL_EVENT_REDIRECTED && e.resource_id == 21) ++redirected;
    if (e.reason == IL_REASON_NOT_STREAM && e.resource_id == 21) ++not_stream;
    if (e.reason == IL_REASON_DEFAULT_DENY) ++default_deny;
  }
  EXPECT_EQ(redirected, 1);
  EXPECT_EQ(not_stream, 2);
  EXPECT_EQ(default_deny, 2);
  unlink(real.c_str());
  unlink(engine.c_str());
  rmdir(dir.c_str());
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

// An upgrade whose programs define a map differently (or no longer have it) must still
// load: rebuildable maps are created afresh, pins of maps that are gone are removed, and
// the enrollments are kept. An incompatible enrolled_cgroups is refused, not dropped.
TEST_F(DatapathTest, ReopenAfterAnUpgradeReplacesIncompatiblePins) {
  ProtectResources({Resource("127.0.0.42", 128, resource_port_, 11)});
  EnrollCgroup(w1_cg(), 7, 0);
  dp_.reset();
  const std::string maps = pin_path_ + "/maps";
  auto pin_new_map = [&](const std::string& name, bpf_map_type type, uint32_t key_size,
                         uint32_t value_size, uint32_t max_entries) {
    UniqueFd fd(bpf_map_create(type, name.substr(0, 15).c_str(), key_size, value_size,
                               max_entries, nullptr));
    ASSERT_TRUE(fd.valid()) << strerror(errno);
    unlink((maps + "/" + name).c_str());
    ASSERT_EQ(bpf_obj_pin(fd.get(), (maps + "/" + name).c_str()), 0) << strerror(errno);
  };
  // What an older build left: a map this one does not have, and stats with fewer slots.
  pin_new_map("orig_dst_by_cookie", BPF_MAP_TYPE_HASH, 8, 96, 16);
  pin_new_map("stats", BPF_MAP_TYPE_ARRAY, 4, 8, 2);

  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  struct stat st {};
  EXPECT_NE(stat((maps + "/orig_dst_by_cookie").c_str(), &st), 0) << "stale pin kept";
  auto enrollments = dp_->ListEnrollments();
  ASSERT_TRUE(enrollments.ok());
  EXPECT_EQ(enrollments->size(), 1u);
  ExpectRedirected(w1_cg(), AF_INET, "127.0.0.42", engine4_.get(),
                   absl::StrCat("127.0.0.42:", resource_port_), AF_INET, 7, 11);
  EXPECT_EQ(Stats().redirected, 1u) << "a fresh stats map counts from zero";

  dp_.reset();
  pin_new_map("enrolled_cgroups", BPF_MAP_TYPE_HASH, 8, 16, 16);
  DatapathOptions options;
  options.pin_path = pin_path_;
  options.cgroup_dir = root_;
  options.settings = settings_;
  auto refused = Datapath::Open(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("enrolled_cgroups"));
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
      auto mid = LookupRendezvous(AgentTuple(conn.get()));
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
