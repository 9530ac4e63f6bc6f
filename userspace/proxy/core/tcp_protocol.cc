#include "userspace/proxy/core/tcp_protocol.h"

#include <utility>

#include "userspace/proxy/core/tcp_relay.h"

namespace interlock::proxy {

Started TcpProtocol::Start(SessionStart start) {
  RelayOptions opts;
  opts.connect_timeout = env_.connect_timeout;
  opts.memory = env_.memory;
  auto tcp = TcpRelay::Start(*env_.loop, std::move(start.agent), start.upstream, opts, std::move(start.recorder),
                             [done = std::move(start.done)](TcpRelay* r) { done(r); });
  if (!tcp.ok()) {
    return Started{nullptr, absl::IsResourceExhausted(tcp.status()) ? "memory_budget" : "upstream_unreachable",
                   std::string(tcp.status().message())};
  }
  return Started{std::move(*tcp), "", ""};
}

}  // namespace interlock::proxy
