#include "tests/testing/privileged.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/file_util.h"

#ifndef INTERLOCK_BINARY_DIR
#error "INTERLOCK_BINARY_DIR must be defined by the build"
#endif

namespace interlock::testing {

std::string UniqueSuffix() {
  static std::atomic<int> counter{0};
  return absl::StrCat(::getpid(), "-", counter++);
}

uint16_t FreePort(const std::string& ip) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (ip.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM, 0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&ss), ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                                         : sizeof(sockaddr_in));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  ::close(fd);
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

UniqueFd DialLoopback(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = absl::StrCat("/tmp/", prefix, "XXXXXX");
  char* p = ::mkdtemp(tmpl.data());
  return p != nullptr ? std::string(p) : "";
}

std::string MakeAgentDir(const std::string& prefix) {
  std::string dir = MakeTempDir(prefix);
  if (!dir.empty() && ::chown(dir.c_str(), kAgentUid, kAgentGid) != 0) {
    ADD_FAILURE() << "chown " << dir << ": " << std::strerror(errno);
  }
  return dir;
}

void MakeReadableByAgent(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    ADD_FAILURE() << "stat " << path << ": " << std::strerror(errno);
    return;
  }
  ::chmod(path.c_str(), (st.st_mode & 07777) | (S_ISDIR(st.st_mode) ? 0005 : 0004));
  std::filesystem::path p = std::filesystem::path(path).parent_path();
  for (; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (::stat(p.c_str(), &st) == 0) ::chmod(p.c_str(), (st.st_mode & 07777) | 0001);
  }
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  if (!path.empty()) std::filesystem::remove_all(path, ec);
}

namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv_in, int timeout_s) {
  CommandResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = Argv(args);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open = 2;
  char buf[65536];
  bool killed = false;
  while (open > 0) {
    int left_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       deadline - std::chrono::steady_clock::now()).count());
    if (left_ms <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (::poll(fds, 2, left_ms) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = DecodeStatus(status);
  if (killed) result.err += "\n[killed: timeout]";
  return result;
}

pid_t Spawn(const std::vector<std::string>& argv_in, const std::string& log_path) {
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = Argv(args);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int StopProcess(pid_t pid, int grace_s) {
  if (pid <= 0) return -1;
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_s);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeStatus(status);
    ::usleep(20000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return DecodeStatus(status);
}

int WaitProcess(pid_t pid, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return DecodeStatus(status);
    ::usleep(20000);
  }
  return -1;
}

void KillProcess(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
}

std::string BinaryPath(const std::string& name) {
  static const char* kDirs[] = {"userspace/daemon", "tools/interlock", "tools/probe", "tools/echo"};
  for (const char* d : kDirs) {
    std::string p = absl::StrCat(INTERLOCK_BINARY_DIR, "/", d, "/", name);
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::StrCat(INTERLOCK_BINARY_DIR, "/", name);
}

int64_t ProcessMemoryKib(pid_t pid, const std::string& field) {
  auto status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, field)) continue;
    int64_t kib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(line), "kB")), &kib)) {
      return -1;
    }
    return kib;
  }
  return -1;
}

CommandResult RunInCgroup(const std::string& dir, uint32_t id, const std::vector<std::string>& argv,
                          int timeout_s) {
  std::vector<std::string> cmd = {
      "/bin/sh", "-c",
      absl::StrCat("echo $$ > '", dir, "/cgroup.procs' && exec setpriv --reuid=", id, " --regid=", id,
                   " --clear-groups --inh-caps=-all -- \"$@\""),
      "agent"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return RunCommand(cmd, timeout_s);
}

bool RemoveCgroupTree(const std::string& dir, std::string* error) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) dirs.push_back(it->path().string());
  }
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  dirs.push_back(dir);
  for (const std::string& d : dirs) {
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
      gone = ::rmdir(d.c_str()) == 0 || errno == ENOENT;
      if (!gone) ::usleep(50 * 1000);
    }
    if (!gone) {
      *error = absl::StrCat("cannot remove ", d, ": ", strerror(errno));
      return false;
    }
  }
  return true;
}

}  // namespace interlock::testing
