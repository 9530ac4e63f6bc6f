// HttpProtocol: HTTP/1.1 as a protocol plug-in (resources with PROTOCOL_HTTP and
// PROTOCOL_HTTPS). It owns what only HTTP sessions share: the HTTPS interception CA (loaded
// from the state dir, `interlock ca init`), its cache of minted leaves and the agent-facing
// server context that mints them per SNI, and the upstream verify-full TLS contexts; each
// accepted connection becomes an HttpSession.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto http, HttpProtocol::Create(env, config.resources));
//   registry.Add(config::Protocol::kHttp, ...);  // one instance serves both kinds: see Register
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "userspace/auth/jwt/assertion_key.h"
#include "userspace/config/config.h"
#include "userspace/net/interception_ca.h"
#include "userspace/net/leaf_cache.h"
#include "userspace/net/tls.h"
#include "userspace/proxy/core/protocol.h"
#include "userspace/proxy/http/credential.h"

namespace interlock::proxy::http {

class HttpProtocol final : public Protocol {
 public:
  // With an HTTPS resource configured, loads the interception CA from env.state_dir:
  // FAILED_PRECONDITION naming `interlock ca init` when there is none, Load's errors for a
  // key with loose permissions or a broken pair. With a resource that sets
  // identity_headers, loads the assertion key likewise (FAILED_PRECONDITION naming
  // `interlock assertion-key init`). `resources` outlive the protocol.
  static absl::StatusOr<std::unique_ptr<HttpProtocol>> Create(const ProtocolEnv& env,
                                                              const std::vector<config::ResourceConfig>& resources);

  absl::string_view name() const override { return "http"; }
  // 503 problem+json: the agent's client can show it.
  std::string RefusalBytes(Refusal why) const override;
  // Refusals: "agent_tls_config" (no CA for an HTTPS resource), "internal".
  Started Start(SessionStart start) override;

 private:
  explicit HttpProtocol(const ProtocolEnv& env) : env_(env) {}
  absl::StatusOr<net::TlsClientContext*> UpstreamTls(const config::HttpConfig& http, const std::string& server_name);

  ProtocolEnv env_;
  std::unique_ptr<net::LocalCa> ca_;
  std::unique_ptr<net::LeafCache> leaves_;
  std::unique_ptr<net::TlsServerContext> agent_tls_;
  absl::flat_hash_map<std::string, std::unique_ptr<net::TlsClientContext>> upstream_tls_;
  // interlockd's identity assertion key (null: no resource sets identity_headers).
  std::unique_ptr<auth::jwt::AssertionKey> assertion_key_;
  // Per resource name: its credential, re-read when the file changes.
  absl::flat_hash_map<std::string, std::unique_ptr<CredentialSource>> credentials_;
};

}  // namespace interlock::proxy::http
