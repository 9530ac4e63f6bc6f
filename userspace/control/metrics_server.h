// MetricsServer: the Prometheus scrape endpoint (config.proto MetricsConfig) on interlockd's
// event loop. Tiny on purpose: one HTTP/1.x request per connection, answered and closed.
// GET /metrics gets the text of `render` (Prometheus text format 0.0.4); other paths 404,
// other methods 405, a request head over kMaxRequestBytes 431, garbage 400. A connection
// that has not sent its whole request head within kTimeout, or not taken the response by
// then, is closed; beyond kMaxConnections at once new ones are closed at accept. So a slow
// or hostile scraper holds at most kMaxConnections descriptors and small buffers for at
// most kTimeout each, and never blocks the loop.
//
//   INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, net::ListenTcp(addr, 16));
//   INTERLOCK_ASSIGN_OR_RETURN(auto metrics, MetricsServer::Create(loop, std::move(fd),
//                                                                  [&] { return Text(); }));
//
// Not thread-safe: everything runs on the loop's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/event_loop.h"

namespace interlock::control {

// What a request head (bytes up to and including the blank line) gets: status code and
// whether it is a scrape. Pure.
struct MetricsRequest {
  int status = 400;  // 200, 400, 404, 405
};
MetricsRequest ParseMetricsRequest(absl::string_view head);

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr size_t kMaxConnections = 16;
  static constexpr absl::Duration kTimeout = absl::Seconds(5);

  // Serves connections accepted on `listen_fd` (a listening socket; made non-blocking).
  // `render` is called once per scrape. Errors: the loop's.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Create(net::EventLoop& loop, UniqueFd listen_fd,
                                                               Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  size_t connections() const { return conns_.size(); }
  uint64_t served() const { return served_; }

 private:
  struct Conn;
  class Listener;
  MetricsServer(net::EventLoop& loop, UniqueFd fd, Render render);
  void OnAccept();
  void OnConn(uint64_t id, uint32_t events);
  void Respond(Conn& c, int status);
  // Writes what is pending; closes when done or on error.
  void Send(uint64_t id);
  void Close(uint64_t id);

  net::EventLoop& loop_;
  UniqueFd fd_;
  Render render_;
  std::unique_ptr<Listener> listener_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
  uint64_t served_ = 0;
};

}  // namespace interlock::control
