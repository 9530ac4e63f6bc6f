#include "userspace/proxy/ssh/ssh_protocol.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/proxy/ssh/ssh_session.h"

namespace interlock::proxy::ssh {

absl::StatusOr<std::unique_ptr<SshProtocol>> SshProtocol::Create(
    const ProtocolEnv& env, const std::vector<config::ResourceConfig>& resources) {
  std::unique_ptr<SshProtocol> p(new SshProtocol(env));
  bool any = false;
  for (const config::ResourceConfig& r : resources) any |= r.protocol == config::Protocol::kSsh;
  if (!any) return p;
  auto key = HostKey::Load(env.state_dir);
  if (absl::IsNotFound(key.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("an SSH resource is configured and there is no SSH host key in ", env.state_dir,
                     ": run `interlock ca init`"));
  }
  if (!key.ok()) return key.status();
  p->host_key_ = *std::move(key);
  return p;
}

Started SshProtocol::Start(SessionStart start) {
  if (!host_key_.has_value()) return Started{nullptr, "ssh_host_key", "no SSH host key loaded"};
  SshSessionContext ctx;
  ctx.session_id = start.session_id;
  ctx.identity = start.identity;
  ctx.original_destination = start.original_destination;
  ctx.resource = start.resource;
  ctx.upstream = start.upstream;
  ctx.host_key = &*host_key_;
  ctx.token_verifier = start.token_verifier;
  ctx.bound_token = std::move(start.bound_token);
  auto s = SshSession::Start(env_, std::move(start.agent), std::move(ctx), std::move(start.recorder),
                             [done = std::move(start.done)](SshSession* session) { done(session); });
  if (!s.ok()) return Started{nullptr, "internal", std::string(s.status().message())};
  return Started{*std::move(s), "", ""};
}

}  // namespace interlock::proxy::ssh
