// interlock-probe: a plain TCP client, the "agent" of the tests, demo and benchmarks.
// It knows nothing of Interlock: it connects where it is told and reports, as one JSON
// line, what it saw. Exit 0 when the operation succeeded.
//
//   interlock-probe connect HOST PORT [--v6socket] [--message TEXT] [--bind IP]
//                               [--fastopen | --fastopen-connect | --io-uring]
//                                                  --bind: bind IP:0 first; --fastopen:
//                                                  sendto(MSG_FASTOPEN) instead of connect;
//                                                  --fastopen-connect: TCP_FASTOPEN_CONNECT;
//                                                  --io-uring: IORING_OP_CONNECT
//   interlock-probe sendto HOST PORT [--v6socket]  one unconnected UDP datagram
//   interlock-probe transfer HOST PORT BYTES [--no-half-close]
//                                                  send BYTES, read them echoed back
//   interlock-probe concurrent HOST PORT N          N sessions open at once
//   interlock-probe rtt HOST PORT COUNT SIZE        ping-pong latency
//   interlock-probe idle HOST PORT N [HOLD_S]       N sessions, one byte echoed each
//                                                   (connect-to-first-byte p50/p99), then
//                                                   held idle until SIGTERM or HOLD_S (600)
//   interlock-probe listen HOST PORT                bind and listen there (then exit)
//   interlock-probe whoami                          uid/gid/groups/capabilities/no_new_privs
//                                                   (from /proc/self/status) and open fds
//   interlock-probe move-cgroup DIR                 try to move itself into cgroup DIR
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <liburing.h>
#include <sys/resource.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

bool ParseAddr(const char* host, int port, bool force_v6, Addr* out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  if (!force_v6 && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof *v6;
    return true;
  }
  if (force_v6) {  // IPv4 text on an AF_INET6 socket: use the mapped form
    in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1) return false;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    v6->sin6_addr.s6_addr[10] = 0xff;
    v6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&v6->sin6_addr.s6_addr[12], &a, 4);
    out->len = sizeof *v6;
    return true;
  }
  return false;
}

std::string Format(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
}

int Fail(const char* what, int err) {
  std::printf("{\"ok\":false,\"op\":\"%s\",\"errno\":%d,\"error\":\"%s\"}\n", what, err,
              std::strerror(err));
  return 1;
}

// How the connection is opened (see the usage above).
struct ConnectOptions {
  const char* bind_ip = nullptr;
  bool fastopen = false;          // sendto(MSG_FASTOPEN) carries the first bytes
  bool fastopen_connect = false;  // TCP_FASTOPEN_CONNECT, then connect()
  bool io_uring = false;          // connect through an io_uring (IORING_OP_CONNECT)
};
ConnectOptions g_connect;

// Opens a socket to `a` as g_connect says. With --fastopen the connect happens inside the
// sendto() that carries `first` (which is then already sent); otherwise `first` is left
// to the caller. Returns the fd or -errno.
int Connect(const Addr& a, const std::string* first = nullptr, bool* first_sent = nullptr) {
  int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  auto fail = [fd] {
    int err = errno;
    close(fd);
    return -err;
  };
  if (g_connect.bind_ip != nullptr) {
    Addr b;
    bool v6 = a.ss.ss_family == AF_INET6;
    auto* b4 = reinterpret_cast<sockaddr_in*>(&b.ss);
    auto* b6 = reinterpret_cast<sockaddr_in6*>(&b.ss);
    if (!v6 && inet_pton(AF_INET, g_connect.bind_ip, &b4->sin_addr) == 1) {
      b4->sin_family = AF_INET;
      b.len = sizeof *b4;
    } else if (v6 && inet_pton(AF_INET6, g_connect.bind_ip, &b6->sin6_addr) == 1) {
      b6->sin6_family = AF_INET6;
      b.len = sizeof *b6;
    } else {
      close(fd);
      return -EINVAL;
    }
    if (bind(fd, reinterpret_cast<const sockaddr*>(&b.ss), b.len) != 0) return fail();
  }
  int one = 1;
  if (g_connect.fastopen && first != nullptr && first_sent != nullptr) {
    if (sendto(fd, first->data(), first->size(), MSG_FASTOPEN | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) {
      return fail();
    }
    *first_sent = true;
  } else {
    if (g_connect.fastopen_connect &&
        setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) != 0) {
      return fail();
    }
    if (g_connect.io_uring) {
      io_uring ring;
      int err = io_uring_queue_init(4, &ring, 0);
      if (err < 0) {
        errno = -err;
        return fail();
      }
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len);
      io_uring_submit(&ring);
      io_uring_cqe* cqe = nullptr;
      err = io_uring_wait_cqe(&ring, &cqe);
      int res = err < 0 ? err : cqe->res;
      if (err == 0) io_uring_cqe_seen(&ring, cqe);
      io_uring_queue_exit(&ring);
      if (res < 0) {
        errno = -res;
        return fail();
      }
    } else if (connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
      return fail();
    }
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Deterministic byte stream so the receiver can check every byte without a copy.
struct Pattern {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  uint8_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<uint8_t>(s >> 24);
  }
};

int CmdListen(const Addr& a) {
  int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail("socket", errno);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) return Fail("bind", errno);
  if (listen(fd, 1) != 0) return Fail("listen", errno);
  std::printf("{\"ok\":true,\"op\":\"listen\",\"local\":\"%s\"}\n", Format(a.ss).c_str());
  close(fd);
  return 0;
}

int CmdSendto(const Addr& a) {
  int fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail("socket", errno);
  if (sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 1) {
    return Fail("sendto", errno);
  }
  close(fd);
  std::printf("{\"ok\":true,\"op\":\"sendto\",\"dst\":\"%s\"}\n", Format(a.ss).c_str());
  return 0;
}

int CmdConnect(const Addr& a, const std::string& message) {
  bool sent = false;
  int fd = Connect(a, &message, &sent);
  if (fd < 0) return Fail("connect", -fd);
  sockaddr_storage peer{}, local{};
  socklen_t pl = sizeof peer, ll = sizeof local;
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
  if (!sent && !WriteAll(fd, message.data(), message.size())) return Fail("write", errno);
  shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Fail("read", errno);
    if (r == 0) break;
    reply.append(buf, static_cast<size_t>(r));
  }
  close(fd);
  std::string escaped;
  for (unsigned char c : reply) {
    if (c == '"' || c == '\\') {
      escaped.push_back('\\');
      escaped.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      escaped += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", c);
      escaped += hex;
    } else {
      escaped.push_back(static_cast<char>(c));
    }
  }
  std::printf("{\"ok\":true,\"peer\":\"%s\",\"local\":\"%s\",\"reply\":\"%s\"}\n",
              Format(peer).c_str(), Format(local).c_str(), escaped.c_str());
  return 0;
}

int CmdTransfer(const Addr& a, uint64_t bytes, bool half_close) {
  int fd = Connect(a);
  if (fd < 0) return Fail("connect", -fd);
  auto start = std::chrono::steady_clock::now();
  bool write_ok = true;
  std::thread writer([&] {
    Pattern p;
    std::vector<char> buf(1 << 16);
    uint64_t left = bytes;
    while (left > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      for (size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(p.Next());
      if (!WriteAll(fd, buf.data(), n)) {
        write_ok = false;
        break;
      }
      left -= n;
    }
    if (half_close) shutdown(fd, SHUT_WR);
  });
  Pattern expect;
  uint64_t got = 0;
  bool match = true;
  std::vector<char> buf(1 << 16);
  int read_errno = 0;
  // Without a half-close the echo never ends the stream: stop after `bytes`.
  while (half_close || got < bytes) {
    ssize_t r = read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) read_errno = errno;
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; ++i) {
      if (static_cast<uint8_t>(buf[static_cast<size_t>(i)]) != expect.Next()) match = false;
    }
    got += static_cast<uint64_t>(r);
  }
  writer.join();
  close(fd);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bool ok = write_ok && match && got == bytes;
  std::printf("{\"ok\":%s,\"bytes_sent\":%llu,\"bytes_received\":%llu,\"match\":%s,"
              "\"read_errno\":%d,\"seconds\":%.6f,\"mb_per_s\":%.1f}\n",
              ok ? "true" : "false", static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(got), match ? "true" : "false", read_errno, secs,
              secs > 0 ? (2.0 * static_cast<double>(bytes) / 1e6) / secs : 0.0);
  return ok ? 0 : 1;
}

int CmdConcurrent(const Addr& a, int n) {
  std::vector<int> fds;
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    int fd = Connect(a);
    if (fd < 0) {
      ++failed;
      continue;
    }
    fds.push_back(fd);
  }
  // All sessions are open at once before any data moves.
  int ok = 0;
  for (size_t i = 0; i < fds.size(); ++i) {
    std::string msg = "hello " + std::to_string(i) + "\n";
    if (!WriteAll(fds[i], msg.data(), msg.size())) continue;
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    std::string want = "hello " + std::to_string(i) + "\n";
    std::string got;
    char buf[256];
    pollfd pfd{fds[i], POLLIN, 0};
    while (got.size() < want.size() && poll(&pfd, 1, 10000) > 0) {
      ssize_t r = read(fds[i], buf, sizeof buf);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    if (got == want) ++ok;
  }
  for (int fd : fds) close(fd);
  std::printf("{\"ok\":%s,\"connections\":%d,\"connect_failed\":%d,\"succeeded\":%d}\n",
              ok == n ? "true" : "false", n, failed, ok);
  return ok == n ? 0 : 1;
}

// Opens N sessions one after another and keeps them all: each connects, sends one byte and
// waits for it to come back (connect-to-first-byte latency, measured under the load of the
// sessions already held), then stays idle. Prints one JSON line once all are open, then holds
// them until SIGTERM/SIGINT or `hold_s` seconds pass.
int CmdIdle(const Addr& a, int n, int hold_s) {
  std::vector<int> fds;
  fds.reserve(static_cast<size_t>(n));
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  int failed = 0;
  int first_errno = 0;
  auto note_failure = [&](int err) {
    ++failed;
    if (first_errno == 0) first_errno = err;
  };
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    int fd = Connect(a);
    if (fd < 0) {
      note_failure(-fd);
      continue;
    }
    const char b = static_cast<char>('a' + i % 26);
    char got = 0;
    pollfd pfd{fd, POLLIN, 0};
    errno = 0;
    if (!WriteAll(fd, &b, 1) || poll(&pfd, 1, 10000) != 1 || read(fd, &got, 1) != 1 || got != b) {
      note_failure(errno != 0 ? errno : EPROTO);
      close(fd);
      continue;
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    fds.push_back(fd);
  }
  const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us.empty() ? 0.0 : us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))];
  };
  const bool ok = failed == 0;
  std::printf("{\"ok\":%s,\"op\":\"idle\",\"connections\":%d,\"succeeded\":%zu,\"failed\":%d,"
              "\"first_error\":\"%s\",\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"open_s\":%.2f}\n",
              ok ? "true" : "false", n, fds.size(), failed, first_errno != 0 ? std::strerror(first_errno) : "",
              pct(0.50), pct(0.99), us.empty() ? 0.0 : us.back(), open_s);
  std::fflush(stdout);
  // Held until the caller is done measuring; SIGTERM/SIGINT (default action) or the alarm
  // ends the process and the kernel closes the sessions.
  alarm(static_cast<unsigned>(hold_s));
  for (;;) pause();
}

int CmdRtt(const Addr& a, int count, size_t size) {
  int fd = Connect(a);
  if (fd < 0) return Fail("connect", -fd);
  std::vector<char> msg(size, 'x'), buf(size);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!WriteAll(fd, msg.data(), size)) return Fail("write", errno);
    size_t got = 0;
    while (got < size) {
      ssize_t r = read(fd, buf.data() + got, size - got);
      if (r <= 0) return Fail("read", r < 0 ? errno : ECONNRESET);
      got += static_cast<size_t>(r);
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  close(fd);
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))]; };
  std::printf("{\"ok\":true,\"count\":%d,\"size\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", count, size,
              pct(0.50), pct(0.99));
  return 0;
}

// One JSON line: the credential lines of /proc/self/status, verbatim (tab-separated
// values as a string), and the fds open in this process (the /proc/self/fd listing's own
// fd excluded).
int CmdWhoami() {
  std::ifstream status("/proc/self/status");
  std::string line, out = "{\"ok\":true";
  while (std::getline(status, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    if (key != "Uid" && key != "Gid" && key != "Groups" && key != "CapInh" && key != "CapPrm" &&
        key != "CapEff" && key != "CapBnd" && key != "CapAmb" && key != "NoNewPrivs") {
      continue;
    }
    std::string value = line.substr(colon + 1);
    for (char& c : value) {
      if (c == '\t') c = ' ';
    }
    size_t b = value.find_first_not_of(' ');
    size_t e = value.find_last_not_of(' ');
    value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
    out += ",\"" + key + "\":\"" + value + "\"";
  }
  status.close();
  std::string fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return Fail("opendir", errno);
  std::vector<int> open_fds;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    int fd = std::atoi(ent->d_name);
    if (fd != dirfd(d)) open_fds.push_back(fd);
  }
  closedir(d);
  std::sort(open_fds.begin(), open_fds.end());
  for (int fd : open_fds) fds += (fds.empty() ? "" : " ") + std::to_string(fd);
  out += ",\"fds\":\"" + fds + "\",\"pid\":" + std::to_string(getpid()) +
         ",\"sid\":" + std::to_string(getsid(0)) + "}";
  std::printf("%s\n", out.c_str());
  return 0;
}

// Writes 0 (= this process) to DIR/cgroup.procs: how an agent would leave its cgroup.
int CmdMoveCgroup(const char* dir) {
  std::string procs = std::string(dir) + "/cgroup.procs";
  int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Fail("open", errno);
  if (write(fd, "0", 1) != 1) {
    int err = errno;
    close(fd);
    return Fail("write", err);
  }
  close(fd);
  std::printf("{\"ok\":true,\"op\":\"move-cgroup\"}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "whoami") == 0) return CmdWhoami();
  if (argc == 3 && std::strcmp(argv[1], "move-cgroup") == 0) return CmdMoveCgroup(argv[2]);
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: interlock-probe connect HOST PORT [--v6socket] [--message TEXT]\n"
                 "                       [--bind IP] [--fastopen | --fastopen-connect | --io-uring]\n"
                 "       interlock-probe sendto HOST PORT [--v6socket]\n"
                 "       interlock-probe transfer HOST PORT BYTES [--no-half-close]\n"
                 "       interlock-probe concurrent HOST PORT N\n"
                 "       interlock-probe rtt HOST PORT COUNT SIZE\n"
                 "       interlock-probe idle HOST PORT N [HOLD_S]\n"
                 "       interlock-probe listen HOST PORT\n"
                 "       interlock-probe whoami\n"
                 "       interlock-probe move-cgroup DIR\n");
    return 2;
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  std::string cmd = argv[1];
  bool v6socket = false;
  bool half_close = true;
  std::string message = "ping\n";
  for (int i = 4; i < argc; ++i) {
    if (std::strcmp(argv[i], "--v6socket") == 0) v6socket = true;
    if (std::strcmp(argv[i], "--no-half-close") == 0) half_close = false;
    if (std::strcmp(argv[i], "--message") == 0 && i + 1 < argc) message = argv[++i];
    if (std::strcmp(argv[i], "--bind") == 0 && i + 1 < argc) g_connect.bind_ip = argv[++i];
    if (std::strcmp(argv[i], "--fastopen") == 0) g_connect.fastopen = true;
    if (std::strcmp(argv[i], "--fastopen-connect") == 0) g_connect.fastopen_connect = true;
    if (std::strcmp(argv[i], "--io-uring") == 0) g_connect.io_uring = true;
  }
  Addr a;
  if (!ParseAddr(argv[2], std::atoi(argv[3]), v6socket, &a)) {
    std::fprintf(stderr, "interlock-probe: bad address %s\n", argv[2]);
    return 2;
  }
  if (cmd == "connect") return CmdConnect(a, message);
  if (cmd == "listen") return CmdListen(a);
  if (cmd == "sendto") return CmdSendto(a);
  if (cmd == "transfer" && argc >= 5) {
    return CmdTransfer(a, std::strtoull(argv[4], nullptr, 10), half_close);
  }
  if (cmd == "concurrent" && argc >= 5) return CmdConcurrent(a, std::atoi(argv[4]));
  if (cmd == "idle" && argc >= 5) {
    return CmdIdle(a, std::atoi(argv[4]), argc >= 6 ? std::atoi(argv[5]) : 600);
  }
  if (cmd == "rtt" && argc >= 6) {
    return CmdRtt(a, std::atoi(argv[4]), static_cast<size_t>(std::atoi(argv[5])));
  }
  std::fprintf(stderr, "interlock-probe: bad arguments\n");
  return 2;
}
