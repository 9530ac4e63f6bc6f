// SshProtocol: SSH as a protocol plug-in (resources with PROTOCOL_SSH). It owns what only
// SSH sessions share — interlockd's host key, loaded once from the state dir — and turns
// each accepted connection into an SshSession (ssh_session.h), which runs on a thread of
// its own.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto ssh, SshProtocol::Create(env, config.resources));
//   registry.Add(config::Protocol::kSsh, std::move(ssh));
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/config/config.h"
#include "userspace/proxy/core/protocol.h"
#include "userspace/proxy/ssh/host_keys.h"

namespace interlock::proxy::ssh {

class SshProtocol final : public Protocol {
 public:
  // With an SSH resource configured, loads the host key from env.state_dir:
  // FAILED_PRECONDITION naming `interlock ca init` when there is none.
  static absl::StatusOr<std::unique_ptr<SshProtocol>> Create(const ProtocolEnv& env,
                                                             const std::vector<config::ResourceConfig>& resources);

  absl::string_view name() const override { return "ssh"; }
  // An SSH identification line can carry no reason; the connection just closes (the agent's
  // ssh prints "Connection closed"), and the session_rejected event says why.
  Started Start(SessionStart start) override;

 private:
  explicit SshProtocol(const ProtocolEnv& env) : env_(env) {}

  ProtocolEnv env_;
  std::optional<HostKey> host_key_;
};

}  // namespace interlock::proxy::ssh
