// Refusing a PostgreSQL agent so that it can read why (too many sessions, out of memory,
// disk full). libpq opens with an SSLRequest under its default sslmode=prefer (and a
// GSSENCRequest where GSSAPI is built in), and since the fix for CVE-2024-10977 it no
// longer shows an ErrorResponse that answers those requests: the user sees only "server
// sent an error response during SSL exchange". So a refused connection is answered as a
// server without TLS would answer it: 'N' to each encryption request, then the FATAL
// ErrorResponse after the StartupMessage, where every client prints its text.
//
//   RefusalAction a = NextRefusalAction(buffered, negotiations_so_far, error_bytes);
//   send(a.reply); buffered.erase(0, a.consume); if (a.done) close();
//
// RefusedAgents runs that for accepted sockets on the event loop, bounded in number and
// time: a refusal never holds a descriptor for more than kRefusalTimeout.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/event_loop.h"

namespace interlock::proxy::pg {

struct RefusalAction {
  size_t consume = 0;  // bytes of the buffer used up
  std::string reply;   // to send the agent now ("N", or the error)
  bool done = false;   // close after the reply
};

// Encryption requests answered 'N' before the agent is just told the error (SSL then
// GSSAPI, as libpq tries them).
inline constexpr int kMaxRefusalNegotiations = 2;

// What to do next with `buf`, what a refused agent sent so far, after `negotiations` 'N'
// answers. Pure.
RefusalAction NextRefusalAction(absl::string_view buf, int negotiations, const std::string& error_bytes);

class RefusedAgents {
 public:
  // At most this many refusals wait for an agent's startup packet at once; past it the
  // error is sent at once (what an SSL-negotiating client may not show) and the socket closed.
  static constexpr size_t kMaxWaiting = 256;
  static constexpr absl::Duration kRefusalTimeout = absl::Seconds(5);

  explicit RefusedAgents(net::EventLoop* loop);
  ~RefusedAgents();
  RefusedAgents(const RefusedAgents&) = delete;
  RefusedAgents& operator=(const RefusedAgents&) = delete;

  // Takes `agent` (non-blocking, nothing read yet) and refuses it with `error_bytes`.
  void Refuse(UniqueFd agent, std::string error_bytes);
  size_t waiting() const { return waiting_.size(); }

 private:
  class Waiting;
  void Finish(int fd);

  net::EventLoop* loop_;
  absl::flat_hash_map<int, std::unique_ptr<Waiting>> waiting_;
};

}  // namespace interlock::proxy::pg
