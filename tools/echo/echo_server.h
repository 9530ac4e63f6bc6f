// EchoServer: a small epoll TCP echo service used as a throwaway "protected resource" by
// the demo, the benchmarks and the integration tests. Echoes every byte back; on the
// client's half-close it flushes and half-closes too. Runs on its own thread.
//
//   EchoServer server;
//   INTERLOCK_RETURN_IF_ERROR(server.Start("127.0.0.42", 7000));
//   ... server.accepted() counts connections ...
//   server.Stop();
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "userspace/common/unique_fd.h"

namespace interlock::tools {

class EchoServer {
 public:
  EchoServer() = default;
  ~EchoServer() { Stop(); }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  // Binds ip:port (port 0 picks one; see port()) and starts serving.
  absl::Status Start(const std::string& ip, uint16_t port);
  void Stop();

  uint16_t port() const { return port_; }
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t bytes_echoed() const { return bytes_.load(); }

 private:
  void Loop();

  UniqueFd listen_fd_;
  UniqueFd epfd_;
  UniqueFd wake_fd_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace interlock::tools
