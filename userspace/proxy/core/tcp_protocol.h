// TcpProtocol: the protocol-agnostic relay as a plug-in (resources with PROTOCOL_TCP, the
// default). Bytes both ways, recorded; no parsing, so no per-statement policy.
#pragma once

#include "userspace/proxy/core/protocol.h"

namespace interlock::proxy {

class TcpProtocol final : public Protocol {
 public:
  explicit TcpProtocol(const ProtocolEnv& env) : env_(env) {}
  absl::string_view name() const override { return "tcp"; }
  // Refusals: "memory_budget" when the budget cannot hold the relay's fixed buffers,
  // "upstream_unreachable" when the upstream socket cannot be made.
  Started Start(SessionStart start) override;

 private:
  ProtocolEnv env_;
};

}  // namespace interlock::proxy
